package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// fedNode is one node of the federation test: a running serve with its
// admin key and organisation.
type fedNode struct {
	name, url, admin, org string
}

func startFedNode(t *testing.T, name, country string) *fedNode {
	t.Helper()
	dir := t.TempDir()
	code, out, errs := run(t, nil, nil, "init", "--data", dir, "--org", name, "--country", country)
	if code != 0 {
		t.Fatalf("init %s: %d %s", name, code, errs)
	}
	n := &fedNode{name: name, admin: strings.TrimSpace(out)}
	n.url = startNode(t, "--data", dir, "--sync-interval", "0")
	var who struct {
		Org string `json:"org"`
	}
	n.api(t, "GET", "/api/v1/whoami", &who)
	n.org = who.Org
	return n
}

// api GETs or POSTs (no body) a node API path as the node's admin.
func (n *fedNode) api(t *testing.T, method, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(method, n.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+n.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// cli runs an entente command against the node as its admin and fails
// the test unless it succeeds; it returns stdout.
func (n *fedNode) cli(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := run(t, map[string]string{"ENTENTE_SERVER": n.url, "ENTENTE_TOKEN": n.admin}, nil, args...)
	if code != 0 {
		t.Fatalf("%s: entente %s: exit %d: %s", n.name, strings.Join(args, " "), code, errs)
	}
	return out
}

// partnerKey records partner p on n and returns a partner key for it.
func (n *fedNode) partnerKey(t *testing.T, p *fedNode, country string) string {
	t.Helper()
	n.cli(t, "partner", "add", "--id", p.org, "--name", p.name, "--country", country)
	return strings.TrimSpace(n.cli(t, "key", "create", "--role", "partner", "--org", p.org, "--name", p.name))
}

// holdings returns "id@version" of every object version in the node's
// intel collection, sorted, with the objects by id.
func (n *fedNode) holdings(t *testing.T) ([]string, map[string]json.RawMessage) {
	t.Helper()
	c := &taxiiclient.Client{APIRoot: n.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: n.admin}}
	var held []string
	objs := map[string]json.RawMessage{}
	_, err := c.Pull(context.Background(), "intel", taxiiclient.Checkpoint{}, func(p *taxiiclient.Page) error {
		for _, raw := range p.Objects {
			o, err := stix.Decode(raw)
			if err != nil {
				return err
			}
			held = append(held, o.ID+"@"+stix.FormatTimestamp(o.Version()))
			objs[o.ID] = raw
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", n.name, err)
	}
	slices.Sort(held)
	return held, objs
}

// egress returns "id@version" of every object version n's audit says left
// for partner, sorted.
func (n *fedNode) egress(t *testing.T, partner string) []string {
	t.Helper()
	var out []string
	next := ""
	for {
		var page struct {
			Records []struct {
				ObjectID string    `json:"object_id"`
				Version  time.Time `json:"version"`
				Action   string    `json:"action"`
			} `json:"records"`
			Next string `json:"next"`
		}
		n.api(t, "GET", "/api/v1/audit?action=egress&partner="+partner+"&next="+next, &page)
		for _, r := range page.Records {
			out = append(out, r.ObjectID+"@"+stix.FormatTimestamp(r.Version))
		}
		if next = page.Next; next == "" {
			break
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func indicatorObj(n int, refs ...string) json.RawMessage {
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": fmt.Sprintf("indicator--a0000000-0000-4000-8000-%012d", n),
		"created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "pattern_type": "stix",
		"pattern": fmt.Sprintf("[ipv4-addr:value = '198.51.100.%d']", n), "valid_from": "2026-01-01T00:00:00Z"}
	if len(refs) > 0 {
		o["object_marking_refs"] = refs
	}
	b, _ := json.Marshal(o)
	return b
}

func idOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}

func without(held []string, ids ...string) []string {
	return slices.DeleteFunc(slices.Clone(held), func(h string) bool {
		id, _, _ := strings.Cut(h, "@")
		return slices.Contains(ids, id)
	})
}

func has(held []string, id string) bool {
	return slices.ContainsFunc(held, func(h string) bool { return strings.HasPrefix(h, id+"@") })
}

// TestFederationThreeNodes runs three nodes in three countries on
// loopback: A (FR) shares with B (DE) up to AMBER without re-sharing; B
// shares with C (US) up to AMBER with re-sharing. B pulls from A and C
// from B.
func TestFederationThreeNodes(t *testing.T) {
	a := startFedNode(t, "Node A", "FR")
	b := startFedNode(t, "Node B", "DE")
	c := startFedNode(t, "Node C", "US")
	const victim = "identity--0000aaaa-0000-4000-8000-000000000000"

	keyBatA := a.partnerKey(t, b, "DE")
	a.cli(t, "partner", "add", "--id", victim, "--name", "victim", "--country", "FR")
	a.cli(t, "agreement", "set", "--partner", b.org, "--collections", "intel", "--max-tlp", "amber", "--redact", "victims")
	keyCatB := b.partnerKey(t, c, "US")
	b.cli(t, "agreement", "set", "--partner", c.org, "--collections", "intel", "--max-tlp", "amber", "--reshare")

	residency := policy.ResidencyMarking("FR", "DE")
	red := indicatorObj(1, stix.TLPRed.MarkingID())
	amber := indicatorObj(2, stix.TLPAmber.MarkingID())
	green := indicatorObj(3, stix.TLPGreen.MarkingID())
	resident := indicatorObj(4, stix.TLPGreen.MarkingID(), policy.ResidencyMarkingID("FR", "DE"))
	sight := json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--a0000000-0000-4000-8000-000000000005",`+
		`"created":"2026-01-02T00:00:00.000Z","modified":"2026-01-02T00:00:00.000Z","sighting_of_ref":%q,"where_sighted_refs":[%q],`+
		`"object_marking_refs":[%q]}`, idOf(t, green), victim, stix.TLPGreen.MarkingID()))
	bOwn := indicatorObj(6, stix.TLPGreen.MarkingID())
	push := func(n *fedNode, objs ...json.RawMessage) {
		t.Helper()
		cl := &taxiiclient.Client{APIRoot: n.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: n.admin}}
		res, err := cl.Push(context.Background(), "intel", objs)
		if err != nil || res.Failure > 0 {
			t.Fatalf("push to %s: %v %+v", n.name, err, res)
		}
	}
	push(a, residency, red, amber, green, resident, sight)
	push(b, bOwn)

	// A bad peer (an HTML page) fails with a recorded error; the good
	// peer syncs all the same.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Login</body></html>")
	}))
	defer bad.Close()
	b.cli(t, "peer", "add", "--id", "bad", "--name", "bad", "--api-root", bad.URL+"/api1/", "--collection", "x", "--into", "intel", "--peer-token", "t")
	b.cli(t, "peer", "add", "--id", "a", "--name", "A", "--api-root", a.url+"/taxii2/api1/", "--collection", "intel", "--into", "intel",
		"--peer-token", keyBatA, "--org", a.org)
	code, out, errs := run(t, map[string]string{"ENTENTE_SERVER": b.url, "ENTENTE_TOKEN": b.admin}, nil, "peer", "sync")
	if code != 1 || !strings.Contains(errs, "peer bad") || !strings.Contains(out, "a\tpulled") {
		t.Fatalf("peer sync with a bad peer: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	list := b.cli(t, "peer", "list")
	if !strings.Contains(list, "unexpected media type") || strings.Contains(list, keyBatA) {
		t.Errorf("peer list must show the bad peer's error and never a token:\n%s", list)
	}
	// Syncing again is idempotent: nothing new is stored.
	if out := b.cli(t, "peer", "sync", "a"); !strings.Contains(out, "stored 0") {
		t.Errorf("second sync stored objects again: %s", out)
	}

	c.cli(t, "peer", "add", "--id", "b", "--name", "B", "--api-root", b.url+"/taxii2/api1/", "--collection", "intel", "--into", "intel",
		"--peer-token", keyCatB, "--org", b.org)
	c.cli(t, "peer", "sync", "b")

	heldB, objsB := b.holdings(t)
	heldC, _ := c.holdings(t)
	t.Logf("B holds %d object versions, C holds %d", len(heldB), len(heldC))
	fr, _ := policy.CountryLocation("FR")
	for _, tc := range []struct {
		what   string
		held   []string
		id     string
		wanted bool
	}{
		{"RED at B", heldB, idOf(t, red), false},
		{"RED at C", heldC, idOf(t, red), false},
		{"AMBER at B", heldB, idOf(t, amber), true},
		{"AMBER at C (through B)", heldC, idOf(t, amber), false},
		{"GREEN at C (re-shared by B)", heldC, idOf(t, green), true},
		{"residency FR,DE at B", heldB, idOf(t, resident), true},
		{"residency FR,DE at C (US)", heldC, idOf(t, resident), false},
		{"the sighting at B", heldB, idOf(t, sight), true},
		{"the victim's country at B", heldB, fr, true},
		{"B's own object at C", heldC, idOf(t, bOwn), true},
	} {
		if got := has(tc.held, tc.id); got != tc.wanted {
			t.Errorf("%s: held = %t, want %t", tc.what, got, tc.wanted)
		}
	}
	if s := string(objsB[idOf(t, sight)]); strings.Contains(s, victim) || !strings.Contains(s, fr) {
		t.Errorf("the sighting at B is not redacted to the victim's country: %s", s)
	}
	// Each sender's audit accounts for exactly what each receiver holds
	// from it.
	if diff := cmp.Diff(without(heldB, idOf(t, bOwn)), a.egress(t, b.org)); diff != "" {
		t.Errorf("A's audit of egress to B vs B's holdings from A (-held +audited):\n%s", diff)
	}
	if diff := cmp.Diff(heldC, b.egress(t, c.org)); diff != "" {
		t.Errorf("B's audit of egress to C vs C's holdings (-held +audited):\n%s", diff)
	}
	// Preview tells the same story, without egress.
	pv := a.cli(t, "agreement", "preview", "--partner", b.org)
	for _, want := range []string{"withhold  tlp.red", "release   agreement"} {
		if !strings.Contains(pv, want) {
			t.Errorf("preview lacks %q:\n%s", want, pv)
		}
	}
	if diff := cmp.Diff(without(heldB, idOf(t, bOwn)), a.egress(t, b.org)); diff != "" {
		t.Errorf("preview changed A's egress audit:\n%s", diff)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// apiPost POSTs a JSON body to a node API path as the node's admin.
func (n *fedNode) apiPost(t *testing.T, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", n.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+n.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %s: %s", path, resp.Status, msg)
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
	return n.holdingsOf(t, "intel")
}

// holdingsOf is holdings of any collection.
func (n *fedNode) holdingsOf(t *testing.T, coll string) ([]string, map[string]json.RawMessage) {
	t.Helper()
	c := &taxiiclient.Client{APIRoot: n.url + "/taxii2/api1/", Auth: taxiiclient.Auth{Token: n.admin}}
	var held []string
	objs := map[string]json.RawMessage{}
	_, err := c.Pull(context.Background(), coll, taxiiclient.Checkpoint{}, func(p *taxiiclient.Page) error {
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
	// peer add checks the peer first (issue 14, item 8a): the HTML page,
	// an address where nothing listens, a collection the key cannot see,
	// are refused, over the API and offline, unless --no-check.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	env := map[string]string{"ENTENTE_SERVER": b.url, "ENTENTE_TOKEN": b.admin}
	for _, tc := range []struct {
		apiRoot, coll, token, want string
	}{
		{bad.URL + "/api1/", "x", "t", "does not answer as a TAXII 2.1 server"},
		{gone.URL + "/taxii2/api1/", "intel", keyBatA, "connection refused"},
		{a.url + "/taxii2/api1/", "intel", "ent_000000000000_nope", "the peer refused the key"},
		{a.url + "/taxii2/api1/", "no-such-collection", keyBatA, `collection "no-such-collection": not found at ` + a.url + "/taxii2/api1/"},
	} {
		args := []string{"peer", "add", "--name", "x", "--api-root", tc.apiRoot, "--collection", tc.coll, "--into", "intel", "--peer-token", tc.token}
		code, _, errs := run(t, env, nil, args...)
		if code != 1 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--no-check") {
			t.Errorf("peer add %s %s over the API: exit %d, %q; want 1 and %q", tc.apiRoot, tc.coll, code, errs, tc.want)
		}
	}
	if strings.Contains(b.cli(t, "peer", "list"), "\nx ") {
		t.Fatalf("a peer that failed its check was added")
	}
	b.cli(t, "peer", "add", "--id", "bad", "--name", "bad", "--api-root", bad.URL+"/api1/", "--collection", "x", "--into", "intel", "--peer-token", "t", "--no-check")
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

	// The checkpoint is kept: a later sync pulls only what is new.
	push(a, indicatorObj(7, stix.TLPGreen.MarkingID()))
	if out := b.cli(t, "peer", "sync", "a"); !strings.Contains(out, "pulled 1\tstored 1") {
		t.Errorf("incremental sync: %s", out)
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
	// Pushing: A pushes to B's inbox what its gate releases to B, and B
	// records that it came from A (so B never passes A's AMBER on).
	// (Through the API: "entente collection create --server" sends a body
	// the API refuses, see the report.)
	b.apiPost(t, "/api/v1/collections", map[string]any{"title": "Inbox", "alias": "inbox", "default_marking": stix.TLPAmber.MarkingID(),
		"read_roles": []string{"analyst", "partner"}, "write_roles": []string{"analyst", "partner"}})
	keyAatB := b.partnerKey(t, a, "FR")
	a.cli(t, "peer", "add", "--id", "b-push", "--name", "B inbox", "--api-root", b.url+"/taxii2/api1/", "--collection", "inbox", "--into", "intel",
		"--peer-token", keyAatB, "--org", b.org, "--direction", "push")
	a.cli(t, "peer", "sync", "b-push")
	inbox, _ := b.holdingsOf(t, "inbox")
	if diff := cmp.Diff(without(heldB, idOf(t, bOwn)), inbox); diff != "" {
		t.Errorf("pushed to B vs pulled by B (-pulled +pushed):\n%s", diff)
	}
	b.cli(t, "agreement", "set", "--partner", c.org, "--collections", "intel,inbox", "--max-tlp", "amber", "--reshare")
	pv := b.cli(t, "agreement", "preview", "--partner", c.org, "--objects")
	if !slices.ContainsFunc(strings.Split(pv, "\n"), func(l string) bool {
		return strings.Contains(l, "reshare.third-party-amber") && strings.Contains(l, idOf(t, amber)) && strings.HasPrefix(l, "withhold")
	}) {
		t.Errorf("B would pass A's pushed AMBER on to C:\n%s", pv)
	}

	// Preview tells the same story, without egress.
	pv = a.cli(t, "agreement", "preview", "--partner", b.org, "--objects")
	for _, want := range []string{"withhold  tlp.red", "release   agreement"} {
		if !strings.Contains(pv, want) {
			t.Errorf("preview lacks %q:\n%s", want, pv)
		}
	}
	// Without --objects, a summary: counts per rule, type and TLP.
	sum := a.cli(t, "agreement", "preview", "--partner", b.org)
	for _, want := range []string{"RULE", "tlp.red", "TYPE", "indicator", "TLP:RED    0         1"} {
		if !strings.Contains(sum, want) {
			t.Errorf("preview summary lacks %q:\n%s", want, sum)
		}
	}
	if strings.Contains(sum, idOf(t, amber)) {
		t.Errorf("the preview summary lists objects:\n%s", sum)
	}
	if diff := cmp.Diff(without(heldB, idOf(t, bOwn)), a.egress(t, b.org)); diff != "" {
		t.Errorf("preview changed A's egress audit:\n%s", diff)
	}
}

// TestPolicyCommandsBadInput checks that agreements naming an unknown
// collection or country, and partners in no country, are refused with an
// error naming the field, and recorded in the audit log.
func TestPolicyCommandsBadInput(t *testing.T) {
	n := startFedNode(t, "Node", "FR")
	env := map[string]string{"ENTENTE_SERVER": n.url, "ENTENTE_TOKEN": n.admin}
	const p = "identity--0000000b-0000-4000-8000-000000000000"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"partner", "add", "--id", p, "--name", "B", "--country", "XX"}, 1, `country: "XX" is not an ISO 3166-1 alpha-2 code`},
		{[]string{"agreement", "set", "--partner", p, "--collections", "intel"}, 1, "is not a known partner"},
		{[]string{"partner", "add", "--id", p, "--name", "B", "--country", "DE"}, 0, "Recorded partner"},
		{[]string{"agreement", "set", "--partner", p, "--collections", "intel,nope"}, 1, `collections[1]: unknown collection "nope"`},
		{[]string{"agreement", "set", "--partner", p, "--collections", "intel", "--max-tlp", "purple"}, 2, "--max-tlp"},
		{[]string{"agreement", "set", "--partner", p, "--collections", "intel", "--redact", "everything"}, 2, "--redact"},
		{[]string{"agreement", "set", "--partner", p, "--collections", "intel", "--from", "2027-01-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"}, 1, "valid_until"},
		{[]string{"agreement", "set", "--partner", p, "--collections", "intel", "--max-tlp", "amber"}, 0, "Recorded agreement"},
		{[]string{"peer", "add", "--name", "x", "--api-root", "ftp://x", "--collection", "c", "--into", "nope"}, 1, "api_root"},
		{[]string{"partner", "remove", p}, 1, "has an agreement: delete it first"},
		{[]string{"partner", "remove"}, 2, "partner remove takes 1 argument (ID), got 0"},
		{[]string{"agreement", "delete", "--partner", p}, 0, "Deleted"},
		{[]string{"agreement", "show", "--partner", p}, 1, "no agreement"},
		{[]string{"partner", "remove", p}, 0, "Removed partner " + p},
		{[]string{"partner", "remove", p}, 1, "no partner"},
	} {
		code, _, errs := run(t, env, nil, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("entente %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.want)
		}
	}
	out := n.cli(t, "audit", "--action", "admin")
	for _, want := range []string{"partner.put.refused", "agreement.put.refused", "agreement.put ", "agreement.delete", "peer.add.refused", "unknown collection", "partner.remove.refused", "partner.remove "} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, out)
		}
	}
}

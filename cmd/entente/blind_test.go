package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"

	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/testutil"
)

// blindNode is a running node with its data directory.
type blindNode struct {
	*fedNode
	dir string
}

func startBlindNode(t *testing.T, name, country string) *blindNode {
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
	return &blindNode{fedNode: n, dir: dir}
}

// marker is in the name of every indicator A withholds from B: no file
// of B's data directory may hold it.
const marker = "WITHHELD-FROM-B-7f3a"

type planted struct {
	name, pattern string
	kind          observable.Kind
	value         string
	tlp           stix.TLP
	residency     bool
	coll          string // red or intel
}

func (p planted) indicator(i int) json.RawMessage {
	id := fmt.Sprintf("indicator--b11dcafe-0000-4000-8000-%012x", i)
	marks := []string{p.tlp.MarkingID()}
	if p.residency {
		marks = append(marks, policy.ResidencyMarkingID("FR"))
	}
	name := p.name
	if p.coll == "red" {
		name += " " + marker
	}
	b, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": "2026-05-01T00:00:00.000Z",
		"modified": "2026-05-01T00:00:00.000Z", "name": name, "pattern": p.pattern, "pattern_type": "stix",
		"valid_from": "2026-05-01T00:00:00Z", "object_marking_refs": marks})
	return b
}

func writeBundle(t *testing.T, path string, objs []json.RawMessage) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "bundle", "id": stix.NewID("bundle"), "objects": objs})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

type hitKey struct {
	file     string
	line     int64
	observed string
}

func readHitFile(t *testing.T, path string) map[hitKey]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readHitLines(t, f)
}

func readHitLines(t *testing.T, r io.Reader) map[hitKey]bool {
	t.Helper()
	out := map[hitKey]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var h match.HitRecord
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			t.Fatalf("hit %q: %v", sc.Text(), err)
		}
		out[hitKey{filepath.Base(h.File), h.Line, h.Observed}] = true
	}
	return out
}

// TestBlindMatchTwoNodes: node A (FR) holds RED and AMBER+STRICT
// indicators and a residency-bound one (FR only), and gives B (DE) blind
// access to them; B matches real Zeek logs against A's blinded set with
// entente match --blind, through the peer it configured, and finds
// exactly the hits that plain matching of the planted values it may test
// finds; no withheld object reaches B (B's data directory holds no
// trace of them, A's audit log records no release of them); past its
// budget, B is refused.
func TestBlindMatchTwoNodes(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek", "slips-test9-mixed")
	logNames := []string{"conn.log", "dns.log", "http.log"}
	var logs []sensor.Input
	var logPaths []string
	for _, n := range logNames {
		p := filepath.Join(dir, n)
		logPaths = append(logPaths, p)
		logs = append(logs, sensor.Input{Name: p, Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	inputs, _, err := blind.Collect(context.Background(), blind.DefaultParams(), logs, sensor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(inputs)
	byTag := map[string][]string{}
	for _, in := range inputs {
		tag, v, _ := strings.Cut(in, "\x00")
		byTag[tag] = append(byTag[tag], v)
	}
	ips, domains := byTag["ipv4"], byTag["domain"]
	if len(ips) < 20 || len(domains) < 10 {
		t.Fatalf("the logs hold %d addresses and %d names", len(ips), len(domains))
	}
	var parent string
	for _, d := range domains {
		if strings.Count(d, ".") >= 2 {
			parent = d[strings.IndexByte(d, '.')+1:]
			break
		}
	}
	netAddr := ips[2*len(ips)/3]
	a4 := mustParseAddr(t, netAddr)
	network, _ := a4.Prefix(22)
	plants := []planted{
		{name: "red address", kind: observable.IPv4, value: ips[len(ips)/3], tlp: stix.TLPRed, coll: "red"},
		{name: "strict network", kind: observable.CIDR4, value: network.String(), tlp: stix.TLPAmberStrict, coll: "red"},
		{name: "red name", kind: observable.Domain, value: parent, tlp: stix.TLPRed, coll: "red"},
		{name: "residency address", kind: observable.IPv4, value: ips[len(ips)/5], tlp: stix.TLPAmber, residency: true, coll: "red"},
		{name: "green address", kind: observable.IPv4, value: ips[len(ips)/7], tlp: stix.TLPGreen, coll: "intel"},
		{name: "red decoy", kind: observable.IPv4, value: "198.51.100.77", tlp: stix.TLPRed, coll: "red"},
		{name: "red decoy name", kind: observable.Domain, value: "never-seen.example.net", tlp: stix.TLPRed, coll: "red"},
	}
	for i := range plants {
		switch p := &plants[i]; p.kind {
		case observable.CIDR4:
			p.pattern = "[ipv4-addr:value ISSUBSET '" + p.value + "']"
		case observable.IPv4:
			p.pattern = "[ipv4-addr:value = '" + p.value + "']"
		case observable.Domain:
			p.pattern = "[domain-name:value = '" + p.value + "']"
		}
	}
	t.Logf("planted: %+v", plants)

	a := startBlindNode(t, "Node A", "FR")
	b := startBlindNode(t, "Node B", "DE")
	a.cli(t, "collection", "create", "--title", "RED intelligence", "--alias", "red", "--read", "analyst", "--tlp", "red")
	var red, intel []json.RawMessage
	ids := map[string]string{}
	for i, p := range plants {
		raw := p.indicator(i + 1)
		o, _ := stix.Decode(raw)
		ids[p.name] = o.ID
		if p.coll == "red" {
			red = append(red, raw)
		} else {
			intel = append(intel, raw)
		}
	}
	red = append(red, policy.ResidencyMarking("FR"))
	tmp := t.TempDir()
	writeBundle(t, filepath.Join(tmp, "red.json"), red)
	writeBundle(t, filepath.Join(tmp, "intel.json"), intel)
	a.cli(t, "ingest", "--quiet", "--collection", "red", filepath.Join(tmp, "red.json"))
	a.cli(t, "ingest", "--quiet", "--collection", "intel", filepath.Join(tmp, "intel.json"))
	keyB := a.partnerKey(t, b.fedNode, "DE")
	a.cli(t, "agreement", "set", "--partner", b.org, "--collections", "intel", "--max-tlp", "green",
		"--blind", "red,intel", "--blind-budget", "100000/day")
	preview := a.cli(t, "agreement", "preview", "--partner", b.org)
	if !strings.Contains(preview, "blind: 6 indicators, no values released.") {
		t.Fatalf("preview:\n%s", preview)
	}
	b.cli(t, "peer", "add", "--id", "a", "--name", "A", "--api-root", a.url+"/taxii2/api1/", "--collection", "intel", "--into", "intel",
		"--peer-token", keyB, "--org", a.org)

	// B matches its logs against A's blinded set, through its peer.
	hitsPath, sightingsPath := filepath.Join(tmp, "hits.jsonl"), filepath.Join(tmp, "sightings.json")
	env := map[string]string{"ENTENTE_SERVER": b.url, "ENTENTE_TOKEN": b.admin}
	args := append([]string{"match", "--blind", "a", "--data", b.dir, "--resolve", "--out", hitsPath, "--sightings", sightingsPath, "--report"}, logPaths...)
	code, _, errs := run(t, env, nil, args...)
	if code != 0 {
		t.Fatalf("match --blind: exit %d: %s", code, errs)
	}
	t.Log(errs)
	got := readHitFile(t, hitsPath)

	// What plain matching of the values B may test finds.
	pb := match.NewBuilder()
	for _, p := range plants {
		if p.residency {
			continue // B is in DE: residency-bound values are not in its set
		}
		r, _ := pb.Indicator(ids[p.name])
		if err := pb.Add(p.kind, p.value, r); err != nil {
			t.Fatal(err)
		}
	}
	var plainOut bytes.Buffer
	if _, err := match.Run(context.Background(), match.Options{Snapshot: pb.Snapshot(), Logs: logs, Hits: &plainOut}); err != nil {
		t.Fatal(err)
	}
	want := readHitLines(t, &plainOut)
	if len(want) < 4 {
		t.Fatalf("plain matching finds only %d hits", len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missed %v", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("extra hit %v", k)
		}
	}
	resAddr := plants[3].value
	for k := range got {
		if k.observed == resAddr {
			t.Errorf("a hit on the residency-bound address %s", resAddr)
		}
	}

	// The sightings: the GREEN indicator by its id (A released it), the
	// others by blinded references on stubs of B's own.
	data, err := os.ReadFile(sightingsPath)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct{ Objects []map[string]any }
	if err := json.Unmarshal(data, &bundle); err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, o := range bundle.Objects {
		byID[o["id"].(string)] = o
	}
	var ofGreen, stubs int
	for _, o := range bundle.Objects {
		if o["type"] != "sighting" {
			continue
		}
		of := o["sighting_of_ref"].(string)
		if !strings.HasPrefix(of, "indicator--") || byID[of] == nil {
			t.Errorf("sighting of %q, not an indicator of the bundle", of)
			continue
		}
		if _, err := blind.ParseRef(o[blind.BlindRefProperty].(string)); err != nil {
			t.Errorf("sighting without a blinded reference: %v", err)
		}
		switch ind := byID[of]; {
		case of == ids["green address"]:
			ofGreen++
		case ind["created_by_ref"] == b.org && ind[blind.BlindRefProperty] != nil:
			stubs++
		default:
			t.Errorf("sighting of %s, neither released nor a stub", of)
		}
	}
	if ofGreen != 1 || stubs < 3 {
		t.Errorf("%d sightings of the released indicator, %d of stubs", ofGreen, stubs)
	}
	// Reported to B's own node, every object of the bundle is stored
	// there (B's validation accepts the stubs and their sightings).
	if err := waitFor(10*time.Second, func() bool {
		held, _ := b.holdingsOf(t, "sightings")
		n := 0
		for _, h := range held {
			id, _, _ := strings.Cut(h, "@")
			if byID[id] != nil {
				n++
			}
		}
		return n == len(bundle.Objects)
	}); err != nil {
		held, _ := b.holdingsOf(t, "sightings")
		t.Errorf("B's sightings collection holds %v, the report had %d objects", held, len(bundle.Objects))
	}

	// Nothing withheld is anywhere in B's data directory, nor in any
	// object B holds; A's audit log records releases of the GREEN
	// indicator only, and the blind traffic.
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := os.ReadFile(filepath.Join(b.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{marker, ids["red address"], ids["strict network"], ids["red name"], ids["residency address"]} {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("B's %s holds %q", e.Name(), s)
			}
		}
	}
	for _, coll := range []string{"intel", "sightings", "node", "alerts"} {
		held, _ := b.holdingsOf(t, coll)
		for _, h := range held {
			for _, name := range []string{"red address", "strict network", "red name", "residency address", "red decoy"} {
				if strings.HasPrefix(h, ids[name]+"@") {
					t.Errorf("B's %s holds %s (%s)", coll, h, name)
				}
			}
		}
	}
	var audit struct {
		Records []struct {
			Action, Rule, Detail string
			ObjectID             string `json:"object_id"`
		}
	}
	a.api(t, "GET", "/api/v1/audit?partner="+b.org, &audit)
	rules := map[string]int{}
	for _, r := range audit.Records {
		rules[r.Action+" "+r.Rule]++
		if r.Action == "egress" && r.ObjectID != ids["green address"] {
			t.Errorf("A's audit: egress of %s to B: %+v", r.ObjectID, r)
		}
	}
	if rules["blind blind.set"] < 1 || rules["blind blind.evaluate"] < 1 || rules["blind blind.resolve"] != 1 || rules["egress agreement"] != 1 {
		t.Errorf("A's audit of B: %v", rules)
	}

	// Past the budget, B is refused: the next run stops with the budget's
	// refusal, and the node answers 429 with Retry-After.
	a.cli(t, "agreement", "set", "--partner", b.org, "--collections", "intel", "--max-tlp", "green",
		"--blind", "red,intel", "--blind-budget", "50/hour")
	code, _, errs = run(t, env, nil, append([]string{"match", "--blind", "a", "--data", b.dir, "--quiet", "--out", filepath.Join(tmp, "h2")}, logPaths...)...)
	if code == 0 || !strings.Contains(errs, "budget") {
		t.Fatalf("match past the budget: exit %d: %s", code, errs)
	}
	req, _ := http.NewRequest("POST", a.url+"/api/v1/blind/evaluate", strings.NewReader(`{"epoch":0,"elements":["AA=="]}`))
	req.Header.Set("Authorization", "Bearer "+keyB)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 409 { // an old epoch is refused before the budget is looked at
		t.Fatalf("an old epoch: %s", resp.Status)
	}
	var info blind.EpochInfo
	a.apiAs(t, keyB, "/api/v1/blind/epoch", &info)
	if info.Budget.Used < 50-int64(blind.DefaultMaxBatch) || info.Budget.Limit != 50 {
		t.Fatalf("budget after the refused run: %+v", info.Budget)
	}
	el, _ := json.Marshal(blind.EvalRequest{Epoch: info.Epoch, Elements: freshElements(t, 51)})
	req, _ = http.NewRequest("POST", a.url+"/api/v1/blind/evaluate", bytes.NewReader(el))
	req.Header.Set("Authorization", "Bearer "+keyB)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the budget: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
}

// apiAs GETs a path with key into v.
func (n *fedNode) apiAs(t *testing.T, key, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", n.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// freshElements returns n blinded elements of distinct inputs.
func freshElements(t *testing.T, n int) [][]byte {
	t.Helper()
	in := make([][]byte, n)
	for i := range in {
		in[i] = fmt.Appendf(nil, "ipv4\x0010.0.%d.%d", i/250, i%250)
	}
	_, req, err := oprf.NewClient(oprf.SuiteRistretto255).Blind(in)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i, e := range req.Elements {
		if out[i], err = e.MarshalBinaryCompress(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func mustParseAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAgreementBlindFlags: agreement set --blind needs --blind-budget
// and the reverse, a malformed budget is refused naming the flag, and an
// agreement may grant blind access only; show and list print it.
func TestAgreementBlindFlags(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	const partner = "identity--0b1e0b1e-0000-4000-8000-0000000000aa"
	if code, _, errs := run(t, nil, nil, "partner", "add", "--data", dir, "--id", partner, "--name", "P", "--country", "DE"); code != 0 {
		t.Fatal(errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--blind", "intel"}, "--blind needs --blind-budget"},
		{[]string{"--blind-budget", "10/day"}, "--blind-budget needs --blind"},
		{[]string{"--blind", "intel", "--blind-budget", "ten/day"}, "--blind-budget: blind budget \"ten/day\""},
		{[]string{"--blind", "intel", "--blind-budget", "10/second"}, "period must be"},
		{[]string{"--blind", "nosuch", "--blind-budget", "10/day"}, `blind.collections[0]: unknown collection "nosuch"`},
		{nil, "needs --collections, or --blind and --blind-budget"},
	} {
		args := append([]string{"agreement", "set", "--data", dir, "--partner", partner}, tc.args...)
		if code, _, errs := run(t, nil, nil, args...); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want an error saying %q", tc.args, code, errs, tc.want)
		}
	}
	if code, _, errs := run(t, nil, nil, "agreement", "set", "--data", dir, "--partner", partner, "--blind", "intel", "--blind-budget", "100000/day"); code != 0 {
		t.Fatalf("a blind-only agreement: %s", errs)
	}
	_, out, _ := run(t, nil, nil, "agreement", "show", "--data", dir, "--partner", partner)
	var a policy.Agreement
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.Blind == nil || a.Blind.Budget.String() != "100000/day" || len(a.Blind.Collections) != 1 || len(a.Collections) != 0 {
		t.Fatalf("agreement show: %v\n%s", err, out)
	}
	_, out, _ = run(t, nil, nil, "agreement", "list", "--data", dir)
	if !strings.Contains(out, "100000/day") {
		t.Fatalf("agreement list:\n%s", out)
	}
	_, out, _ = run(t, nil, nil, "audit", "list", "--data", dir, "--action", "admin")
	if !strings.Contains(out, "blind") {
		t.Fatalf("the grant is not audited:\n%s", out)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// TestAgreementDryRun: agreement set --dry-run prints what the changed
// agreement would release against the agreement on record, and the
// objects whose release it turns around, and records nothing.
func TestAgreementDryRun(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	const partner = "identity--0b1e0b1e-0000-4000-8000-0000000000bb"
	list := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(list, []byte("198.51.100.7\n203.0.113.9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"partner", "add", "--data", dir, "--id", partner, "--name", "P", "--country", "DE"},
		{"import", "--data", dir, "--format", "plain", "--tlp", "amber", list},
		{"agreement", "set", "--data", dir, "--partner", partner, "--collections", "intel", "--max-tlp", "green"},
	} {
		if code, _, errs := run(t, nil, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, errs)
		}
	}
	code, out, errs := run(t, nil, nil, "agreement", "set", "--data", dir, "--partner", partner, "--collections", "intel", "--max-tlp", "amber", "--dry-run")
	if code != 0 || !strings.Contains(errs, "Dry run: nothing recorded.") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	// The two AMBER indicators, their observables and the import's
	// source marking: GREEN withholds them, AMBER releases them.
	if !strings.Contains(out, "5 objects would change.") || strings.Count(out, "withhold  release") != 5 || strings.Count(out, "indicator--") != 2 {
		t.Errorf("dry run output:\n%s", out)
	}
	_, out, _ = run(t, nil, nil, "agreement", "show", "--data", dir, "--partner", partner)
	if !strings.Contains(out, `"max_tlp": "TLP:GREEN"`) {
		t.Errorf("the dry run recorded the agreement:\n%s", out)
	}
}

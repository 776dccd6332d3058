package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/blind/blindhttp"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/postgres"
	"github.com/entente-cti/entente/internal/testutil"
)

const (
	blindPartner = "identity--0b1e0b1e-0000-4000-8000-00000000000b"
	otherPartner = "identity--0b1e0b1e-0000-4000-8000-00000000000c"
)

// blindEnv is a node whose partner B has blind access to a collection of
// RED and AMBER+STRICT indicators it may not read, and releases GREEN
// indicators of the shared collection to it.
type blindEnv struct {
	*env
	red    string // the blind collection's id
	keyB   string // B's partner key
	keyC   string // C's: an agreement without blind access
	ids    map[string]string
	values map[string]string // name -> value, of what must never reach B
	budget blind.Budget
}

// blindIndicator returns an indicator of pattern with markings.
func blindIndicator(n int, pattern string, markings ...string) json.RawMessage {
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": fmt.Sprintf("indicator--b11d0000-0000-4000-8000-%012x", n),
		"created": "2026-05-01T00:00:00.000Z", "modified": "2026-05-01T00:00:00.000Z", "pattern": pattern, "pattern_type": "stix",
		"valid_from": "2026-05-01T00:00:00Z", "name": fmt.Sprintf("blind test %d", n)}
	if len(markings) > 0 {
		o["object_marking_refs"] = markings
	}
	b, _ := json.Marshal(o)
	return b
}

func newBlindEnv(t *testing.T, budget string) *blindEnv {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	admin := node.LocalAdmin(org)
	b, err := blind.ParseBudget(budget)
	if err != nil {
		t.Fatal(err)
	}
	be := &blindEnv{env: e, ids: map[string]string{}, values: map[string]string{}, budget: b}
	c, err := e.svc.CreateCollection(ctx, admin, entente.Collection{Alias: "red", Title: "RED intelligence", DefaultMarking: stix.TLPRed.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}})
	if err != nil {
		t.Fatal(err)
	}
	be.red = c.ID
	for _, p := range []policy.Party{{ID: blindPartner, Name: "B", Country: "DE"}, {ID: otherPartner, Name: "C", Country: "US"}} {
		if err := e.svc.PutPartner(ctx, admin, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: blindPartner}, Collections: []string{"shared"},
		MaxTLP: stix.TLPGreen, Blind: &policy.BlindAccess{Collections: []string{"red", "shared"}, Budget: b}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: otherPartner}, Collections: []string{"shared"},
		MaxTLP: stix.TLPAmber}); err != nil {
		t.Fatal(err)
	}
	red := []struct{ name, pattern, value string }{
		{"red-ip", "[ipv4-addr:value = '198.51.100.7']", "198.51.100.7"},
		{"red-net", "[ipv4-addr:value ISSUBSET '203.0.113.0/25']", "203.0.113.0/25"},
		{"strict-domain", "[domain-name:value = 'evil.example.org']", "evil.example.org"},
		{"residency", "[ipv4-addr:value = '192.0.2.55']", "192.0.2.55"},
	}
	var objs []json.RawMessage
	for i, r := range red {
		var marks []string
		switch r.name {
		case "strict-domain":
			marks = []string{stix.TLPAmberStrict.MarkingID()}
		case "residency":
			marks = []string{stix.TLPAmber.MarkingID(), policy.ResidencyMarkingID("FR")}
		}
		raw := blindIndicator(i+1, r.pattern, marks...)
		o, _ := stix.Decode(raw)
		be.ids[r.name], be.values[r.name] = o.ID, r.value
		objs = append(objs, raw)
	}
	objs = append(objs, policy.ResidencyMarking("FR"))
	if st, err := e.svc.AddObjects(ctx, admin, c.ID, objs); err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st)
	}
	green := blindIndicator(10, "[ipv4-addr:value = '100.64.7.7']", stix.TLPGreen.MarkingID())
	o, _ := stix.Decode(green)
	be.ids["green"] = o.ID
	if st, err := e.svc.AddObjects(ctx, admin, e.colls.shared, []json.RawMessage{green}); err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st)
	}
	be.keyB, _ = partnerKey(t, e.svc, blindPartner)
	be.keyC, _ = partnerKey(t, e.svc, otherPartner)
	return be
}

func partnerKey(t *testing.T, s *node.Service, org string) (string, entente.Principal) {
	t.Helper()
	secret, k, err := s.CreateKey(context.Background(), node.LocalAdmin(org), node.NewKey{Name: "partner", Role: entente.RolePartner, Org: org})
	if err != nil {
		t.Fatal(err)
	}
	return secret, entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
}

// client returns a blind client with key, and a recorder of every
// response body it received.
func (be *blindEnv) client(key string) (*blindhttp.Client, *bodies) {
	rec := &bodies{rt: http.DefaultTransport}
	return &blindhttp.Client{Base: be.srv.URL + httpapi.BlindPath + "/", Token: key, HTTP: &http.Client{Transport: rec}}, rec
}

// bodies records the response bodies a client received.
type bodies struct {
	rt  http.RoundTripper
	all [][]byte
}

func (b *bodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	data, err := readAll(resp)
	if err != nil {
		return nil, err
	}
	b.all = append(b.all, data)
	return resp, nil
}

func readAll(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(resp.Body)
	resp.Body.Close()
	resp.Body = nopCloser{bytes.NewReader(buf.Bytes())}
	return buf.Bytes(), err
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// queries returns the inputs to look up for observed values.
func queries(p blind.Params, vals ...string) []string {
	var out []string
	for _, v := range vals {
		k, n, err := observable.Detect(v)
		if err != nil {
			panic(err)
		}
		out = p.Queries(k, n, out)
	}
	return out
}

// TestBlindAccessEndToEnd: partner B translates values through the
// node's endpoint and finds exactly those of the indicators it has blind
// access to, RED and AMBER+STRICT included, the residency-marked one
// (FR only; B is in DE) excluded; resolving its hits releases only the
// GREEN indicator its agreement releases; no response body holds a
// withheld value or id; the node's audit log records the set, every
// batch and the resolution, and no release of a withheld indicator.
func TestBlindAccessEndToEnd(t *testing.T) {
	be := newBlindEnv(t, "1000/hour")
	ctx := context.Background()
	c, rec := be.client(be.keyB)
	tr := blind.NewTranslator(c)
	info, err := tr.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.SetLen == 0 || info.Budget.Limit != 1000 || info.Budget.Used != 0 {
		t.Fatalf("epoch info %+v", info)
	}
	observed := []string{"198.51.100.7", "203.0.113.77", "203.0.113.200", "www.evil.example.org", "192.0.2.55", "100.64.7.7", "192.0.2.1", "good.example.com"}
	inputs := queries(info.Params, observed...)
	st, err := tr.Translate(ctx, inputs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Evaluated != len(slices.Compact(slices.Sorted(slices.Values(inputs)))) {
		t.Fatalf("translate: %+v for %d inputs", st, len(inputs))
	}
	hits, refs := tr.Hits()
	want := []string{"domain\x00evil.example.org", "ipv4\x00100.64.7.7", "ipv4\x00198.51.100.7", "ipv4\x00203.0.113.77"}
	if !slices.Equal(hits, want) {
		t.Fatalf("hits %q, want %q", hits, want)
	}
	// Resolving: only the GREEN indicator of the shared collection is
	// released.
	var refStrings []string
	for _, r := range refs {
		refStrings = append(refStrings, r.String())
	}
	refStrings = append(refStrings, blind.Ref{Epoch: info.Epoch, Key: 12345}.String())
	res, err := c.Resolve(ctx, refStrings)
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[string]string{}
	for i, r := range res.Results {
		statuses[hits0(hits, i)] = r.Status
		if r.Status == blind.ResolveReleased {
			if len(r.Objects) != 1 || !bytes.Contains(r.Objects[0], []byte(be.ids["green"])) {
				t.Errorf("released %s", r.Objects)
			}
		} else if len(r.Objects) != 0 {
			t.Errorf("%s %s with objects", r.Ref, r.Status)
		}
	}
	wantStatus := map[string]string{"domain\x00evil.example.org": "withheld", "ipv4\x00100.64.7.7": "released",
		"ipv4\x00198.51.100.7": "withheld", "ipv4\x00203.0.113.77": "withheld", "unknown": "unknown"}
	if fmt.Sprint(statuses) != fmt.Sprint(wantStatus) {
		t.Fatalf("resolutions %v, want %v", statuses, wantStatus)
	}
	// Nothing withheld ever reached B.
	for _, body := range rec.all {
		for _, name := range []string{"red-ip", "red-net", "strict-domain", "residency"} {
			for _, s := range []string{be.ids[name], be.values[name]} {
				if bytes.Contains(body, []byte(s)) {
					t.Errorf("a response to B holds %s of %s", s, name)
				}
			}
		}
	}
	// The audit log: the set served, each batch, the resolution; the
	// only egress is the GREEN indicator's release.
	page, err := be.svc.QueryAudit(ctx, node.LocalAdmin(org), node.AuditQuery{Partner: blindPartner})
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	var elements int
	for _, r := range page.Records {
		rules[r.Action+" "+r.Rule]++
		if r.Action == audit.Egress && r.ObjectID != be.ids["green"] {
			t.Errorf("audited egress of %s to B", r.ObjectID)
		}
		if r.Rule == "blind.evaluate" {
			var n int
			if _, err := fmt.Sscanf(r.Detail[strings.Index(r.Detail, ": ")+2:], "%d elements", &n); err != nil {
				t.Errorf("batch record %q: %v", r.Detail, err)
			}
			elements += n
		}
		for _, name := range []string{"red-ip", "red-net", "strict-domain", "residency"} {
			if strings.Contains(r.Detail, be.values[name]) {
				t.Errorf("audit record %+v names the value of %s", r, name)
			}
		}
	}
	if rules["blind blind.set"] != 1 || rules["blind blind.evaluate"] != st.Batches || rules["blind blind.resolve"] != 1 || rules["egress agreement"] != 1 || elements != st.Evaluated {
		t.Fatalf("audit records %v (%d elements), want one set, %d batches of %d elements, one resolution, one release", rules, elements, st.Batches, st.Evaluated)
	}
}

func hits0(hits []string, i int) string {
	if i < len(hits) {
		return hits[i]
	}
	return "unknown"
}

// TestBlindSetKeptUpToDate: an indicator added after the set was served
// is in the next one, and leaves it when it is revoked; a change of the
// agreement that removes the collection empties the set.
func TestBlindSetKeptUpToDate(t *testing.T) {
	be := newBlindEnv(t, "1000/hour")
	ctx := context.Background()
	c, _ := be.client(be.keyB)
	hit := func(v string) bool {
		t.Helper()
		tr := blind.NewTranslator(c)
		info, err := tr.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Translate(ctx, queries(info.Params, v)); err != nil {
			t.Fatal(err)
		}
		hits, _ := tr.Hits()
		return len(hits) > 0
	}
	if hit("198.18.0.9") {
		t.Fatal("a hit before the indicator exists")
	}
	admin := node.LocalAdmin(org)
	ind := blindIndicator(50, "[ipv4-addr:value = '198.18.0.9']")
	if _, err := be.svc.AddObjects(ctx, admin, be.red, []json.RawMessage{ind}); err != nil {
		t.Fatal(err)
	}
	if !hit("198.18.0.9") {
		t.Fatal("an indicator added since the last set is not in the next")
	}
	var o map[string]any
	json.Unmarshal(ind, &o)
	o["modified"], o["revoked"] = "2026-05-02T00:00:00.000Z", true
	revoked, _ := json.Marshal(o)
	if _, err := be.svc.AddObjects(ctx, admin, be.red, []json.RawMessage{revoked}); err != nil {
		t.Fatal(err)
	}
	if hit("198.18.0.9") {
		t.Fatal("a revoked indicator is still in the set")
	}
	if !hit("198.51.100.7") {
		t.Fatal("the RED address left the set")
	}
	if _, err := be.svc.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: blindPartner}, Collections: []string{"shared"},
		MaxTLP: stix.TLPGreen, Blind: &policy.BlindAccess{Collections: []string{"shared"}, Budget: be.budget}}); err != nil {
		t.Fatal(err)
	}
	if hit("198.51.100.7") {
		t.Fatal("the RED address is in the set after the agreement removed its collection")
	}
	if !hit("100.64.7.7") {
		t.Fatal("the GREEN address of the collection still granted left the set")
	}
}

// blindPost posts a raw evaluation request.
func (be *blindEnv) blindPost(key, path string, body []byte) response {
	return be.do(req{method: "POST", path: httpapi.BlindPath + path, key: key, body: body, header: map[string]string{"Content-Type": "application/json", "Accept": "application/json"}})
}

func (be *blindEnv) used(t *testing.T) int64 {
	t.Helper()
	c, _ := be.client(be.keyB)
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.Budget.Used
}

func element(t *testing.T, in string) []byte {
	t.Helper()
	_, req, err := oprf.NewClient(oprf.SuiteRistretto255).Blind([][]byte{[]byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := req.Elements[0].MarshalBinaryCompress()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBlindBadInput: each malformed request gets a 4xx naming its fault
// and costs at most what budget accounting says (nothing before the
// elements are decoded; the elements of a batch refused after that).
func TestBlindBadInput(t *testing.T) {
	be := newBlindEnv(t, "100/hour")
	c, _ := be.client(be.keyB)
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := element(t, "ipv4\x001.2.3.4")
	body := func(epoch uint64, els ...[]byte) []byte {
		b, _ := json.Marshal(blind.EvalRequest{Epoch: epoch, Elements: els})
		return b
	}
	notOnCurve := bytes.Repeat([]byte{0xff}, 32)
	identity := make([]byte, 32)
	many := make([][]byte, blind.DefaultMaxBatch+1)
	for i := range many {
		many[i] = element(t, "x"+strconv.Itoa(i))
	}
	replayed := body(info.Epoch, element(t, "replayed"))
	if r := be.blindPost(be.keyB, "/evaluate", replayed); r.status != 200 {
		t.Fatalf("first batch: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		reason blind.Reason
		cost   int64
	}{
		{"wrong length", body(info.Epoch, good, good[:31]), 400, blind.ReasonLength, 0},
		{"not JSON", []byte(`{"epoch":1,"elements":[`), 400, blind.ReasonLength, 0},
		{"unknown field", []byte(`{"epoch":1,"elements":[],"x":1}`), 400, blind.ReasonLength, 0},
		{"empty batch", body(info.Epoch), 400, blind.ReasonEmpty, 0},
		{"the same element twice", body(info.Epoch, good, good), 409, blind.ReasonReplay, 0},
		{"a replayed batch", replayed, 409, blind.ReasonReplay, 0},
		// Two epochs back: the one before is still accepted in the first
		// minutes of an epoch (its grace), which failed this at midnight.
		{"an expired epoch", body(info.Epoch-2, good), 409, blind.ReasonEpochExpired, 0},
		{"an epoch to come", body(info.Epoch+1, good), 409, blind.ReasonEpochExpired, 0},
		{"an oversized batch", body(info.Epoch, many...), 413, blind.ReasonBatchTooLarge, 0},
		{"not on the curve", body(info.Epoch, good, notOnCurve), 400, blind.ReasonElement, 2},
		{"the identity", body(info.Epoch, identity), 400, blind.ReasonIdentity, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := be.used(t)
			r := be.blindPost(be.keyB, "/evaluate", tc.body)
			var eb blind.ErrorBody
			r.json(t, &eb)
			if r.status != tc.status || eb.Reason != tc.reason || eb.Message == "" {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tc.status, tc.reason)
			}
			if got := be.used(t) - before; got != tc.cost {
				t.Fatalf("cost %d evaluations, want %d", got, tc.cost)
			}
		})
	}
	// Refusals are audited like batches.
	page, err := be.svc.QueryAudit(context.Background(), node.LocalAdmin(org), node.AuditQuery{Partner: blindPartner, Action: audit.Blind})
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, r := range page.Records {
		if r.Rule == "blind.evaluate.refused" {
			refused++
		}
	}
	if refused < 8 { // the JSON faults are refused before the service
		t.Fatalf("%d refusals audited", refused)
	}
	// A query parameter the route does not take, and a bad epoch.
	if r := be.do(req{path: httpapi.BlindPath + "/set?epoch=1&x=2", key: be.keyB}); r.status != 400 || !strings.Contains(string(r.body), "x") {
		t.Fatalf("unknown parameter: %d %s", r.status, r.body)
	}
	if r := be.do(req{path: httpapi.BlindPath + "/set?epoch=soon", key: be.keyB}); r.status != 400 {
		t.Fatalf("bad epoch: %d %s", r.status, r.body)
	}
	// Resolve: a malformed reference names its index.
	if r := be.blindPost(be.keyB, "/resolve", []byte(`{"refs":["blind:1:00000000000000aa","blind:x"]}`)); r.status != 400 || !strings.Contains(string(r.body), "refs[1]") {
		t.Fatalf("bad reference: %d %s", r.status, r.body)
	}
	// A body past the node API's limit.
	big := append([]byte(`{"refs":["`), bytes.Repeat([]byte("a"), 2<<20)...)
	if r := be.blindPost(be.keyB, "/resolve", big); r.status < 400 || r.status >= 500 {
		t.Fatalf("oversized body: %d %s", r.status, r.body[:min(len(r.body), 200)])
	}
}

// TestBlindAuthorisation: only partner keys whose agreement grants blind
// access are served.
func TestBlindAuthorisation(t *testing.T) {
	be := newBlindEnv(t, "100/hour")
	for _, tc := range []struct {
		name, key string
		status    int
	}{
		{"no key", "", 401},
		{"an analyst", be.keys[entente.RoleAnalyst], 403},
		{"an admin", be.keys[entente.RoleAdmin], 403},
		{"a partner without blind access", be.keyC, 403},
		{"the node's own partner key, without an agreement", be.keys[entente.RolePartner], 403},
		{"B", be.keyB, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := be.do(req{path: httpapi.BlindPath + "/epoch", key: tc.key})
			if r.status != tc.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tc.status)
			}
		})
	}
}

// TestBlindBudget: past the budget, 429 with Retry-After until the
// period ends; the refused batch costs nothing; a translation stops
// there and keeps what it translated.
func TestBlindBudget(t *testing.T) {
	be := newBlindEnv(t, "10/hour")
	ctx := context.Background()
	c, _ := be.client(be.keyB)
	tr := blind.NewTranslator(c)
	tr.BatchSize = 4
	tr.Workers = 1
	info, err := tr.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for i := range 16 {
		inputs = append(inputs, blind.Input(observable.IPv4, fmt.Sprintf("198.51.100.%d", i)))
	}
	st, err := tr.Translate(ctx, inputs)
	e, ok := err.(*blind.Error)
	if !ok || e.Reason != blind.ReasonBudget || e.RetryAfter <= 0 || e.RetryAfter > time.Hour {
		t.Fatalf("translate past the budget: %v (%T)", err, err)
	}
	if st.Evaluated != 8 || st.Left != 8 {
		t.Fatalf("translate: %+v, want 8 evaluated (two batches of 4 within 10) and 8 left", st)
	}
	if hits, _ := tr.Hits(); !slices.Contains(hits, "ipv4\x00198.51.100.7") {
		t.Fatalf("hits %q", hits)
	}
	b, _ := json.Marshal(blind.EvalRequest{Epoch: info.Epoch, Elements: [][]byte{element(t, "a"), element(t, "b"), element(t, "c")}})
	r := be.blindPost(be.keyB, "/evaluate", b)
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != 429 || err != nil || ra <= 0 || ra > 3600 {
		t.Fatalf("past the budget: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if used := be.used(t); used != 8 {
		t.Fatalf("used %d, want 8", used)
	}
}

// TestBlindVectorsThroughNode posts the RFC 9497 vectors' blinded
// elements to the node's endpoint with the vectors' key pinned for the
// partner: the node answers the RFC's evaluated elements.
func TestBlindVectorsThroughNode(t *testing.T) {
	be := newBlindEnv(t, "100/hour")
	data, err := os.ReadFile("../blind/testdata/rfc9497-ristretto255-oprf.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Seed, KeyInfo string
		Vectors       []struct{ BlindedElement, EvaluationElement string }
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	seed, _ := hex.DecodeString(v.Seed)
	kinfo, _ := hex.DecodeString(v.KeyInfo)
	key, err := oprf.DeriveKey(oprf.SuiteRistretto255, oprf.BaseMode, seed, kinfo)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := be.client(be.keyB)
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := be.svc.BlindKeys(context.Background(), node.LocalAdmin(org))
	if err != nil {
		t.Fatal(err)
	}
	keys.Pin(blindPartner, info.Epoch, key)
	var els []string
	for _, tv := range v.Vectors {
		b, _ := hex.DecodeString(tv.BlindedElement)
		els = append(els, base64.StdEncoding.EncodeToString(b))
	}
	body, _ := json.Marshal(map[string]any{"epoch": info.Epoch, "elements": els})
	r := be.blindPost(be.keyB, "/evaluate", body)
	var resp blind.EvalResponse
	r.json(t, &resp)
	if r.status != 200 || len(resp.Elements) != len(v.Vectors) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for i, tv := range v.Vectors {
		if got := hex.EncodeToString(resp.Elements[i]); got != tv.EvaluationElement {
			t.Errorf("vector %d: evaluated %s, want %s", i, got, tv.EvaluationElement)
		}
	}
}

// TestBlindReplicasOnPostgres: two replicas of a node share one
// PostgreSQL store. They derive the same keys from the secret kept in
// it, publish the same set (a partner may read the epoch's info from one
// and the set from the other), share the partner's budget and refuse on
// one a batch evaluated on the other.
func TestBlindReplicasOnPostgres(t *testing.T) {
	url := testutil.PostgresSchemaURL(t)
	ctx := context.Background()
	var replicas []*httptest.Server
	var svcs []*node.Service
	for range 2 {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svc := node.New(st, node.Config{Org: org}, nil)
		t.Cleanup(svc.Close)
		srv := httptest.NewServer(httpapi.New(svc, httpapi.Options{}, nil, nil))
		t.Cleanup(srv.Close)
		replicas, svcs = append(replicas, srv), append(svcs, svc)
	}
	admin := node.LocalAdmin(org)
	s0 := svcs[0]
	c, err := s0.CreateCollection(ctx, admin, entente.Collection{Alias: "red", Title: "RED", DefaultMarking: stix.TLPRed.MarkingID()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s0.PutPartner(ctx, admin, policy.Party{ID: blindPartner, Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	budget, _ := blind.ParseBudget("12/hour")
	if _, err := s0.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: blindPartner}, MaxTLP: stix.TLPGreen,
		Blind: &policy.BlindAccess{Collections: []string{"red"}, Budget: budget}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s0.AddObjects(ctx, admin, c.ID, []json.RawMessage{blindIndicator(1, "[ipv4-addr:value = '198.51.100.7']")}); err != nil {
		t.Fatal(err)
	}
	key, _ := partnerKey(t, s0, blindPartner)
	client := func(i int) *blindhttp.Client {
		return &blindhttp.Client{Base: replicas[i].URL + httpapi.BlindPath + "/", Token: key}
	}
	i0, err := client(0).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i1, err := client(1).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i0.SetDigest != i1.SetDigest || !bytes.Equal(i0.PublicKey, i1.PublicKey) || i0.SetLen != 1 {
		t.Fatalf("the replicas publish different sets or keys: %+v / %+v", i0, i1)
	}
	data, err := client(1).Set(ctx, i0.Epoch)
	if err != nil || blind.Digest(data) != i0.SetDigest {
		t.Fatalf("set from the other replica: %v", err)
	}
	// The budget is shared: 5 on one, 5 on the other, then 5 is too many.
	batch := func(n int) *blind.EvalRequest {
		req := &blind.EvalRequest{Epoch: i0.Epoch}
		for i := range n {
			req.Elements = append(req.Elements, element(t, fmt.Sprintf("x%d-%d", n, i)+strconv.Itoa(len(req.Elements))))
		}
		return req
	}
	first := batch(5)
	if _, err := client(0).Evaluate(ctx, first); err != nil {
		t.Fatal(err)
	}
	if r, err := client(1).Evaluate(ctx, batch(5)); err != nil || r.Budget.Used != 10 {
		t.Fatalf("second replica: %v, %+v", err, r)
	}
	if _, err := client(0).Evaluate(ctx, batch(3)); err == nil || err.(*blind.Error).Reason != blind.ReasonBudget {
		t.Fatalf("past the shared budget: %v", err)
	}
	// A batch evaluated on one replica is a replay on the other.
	if _, err := client(1).Evaluate(ctx, first); err == nil || err.(*blind.Error).Reason != blind.ReasonReplay {
		t.Fatalf("a replay on the other replica: %v", err)
	}
	// A whole translation through both replicas finds the indicator.
	tr := blind.NewTranslator(client(1))
	if _, err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Translate(ctx, []string{blind.Input(observable.IPv4, "198.51.100.7")}); err != nil {
		t.Fatal(err)
	}
	if hits, _ := tr.Hits(); len(hits) != 1 {
		t.Fatalf("hits %q", hits)
	}
}

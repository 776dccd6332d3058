package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

const (
	partnerB = "identity--0000000b-0000-4000-8000-000000000000"
	partnerC = "identity--0000000c-0000-4000-8000-000000000000"
	victim   = "identity--000000aa-0000-4000-8000-000000000000"
)

// marked returns indicator n with the given marking refs.
func marked(n int, refs ...string) json.RawMessage {
	var o map[string]any
	if err := json.Unmarshal(indicator(n, "2024-01-01T00:00:00.000Z"), &o); err != nil {
		panic(err)
	}
	if len(refs) > 0 {
		o["object_marking_refs"] = refs
	}
	b, _ := json.Marshal(o)
	return b
}

func sighting(of string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--5e0fd07c-0000-4000-8000-000000000001",`+
		`"created":"2024-01-02T00:00:00.000Z","modified":"2024-01-02T00:00:00.000Z","sighting_of_ref":%q,"where_sighted_refs":[%q]}`, of, victim))
}

// gatedNode is a node holding objects of every marking in a partner-
// readable collection, with partner B (DE) under an AMBER agreement that
// reduces sighting victims to their country.
type gatedNode struct {
	s     *node.Service
	st    *sqlite.Store
	coll  entente.Collection
	ids   map[string]string // role of an object in the test -> its id
	keyB  entente.Principal
	keyC  entente.Principal
	anal  entente.Principal
	agree policy.Agreement
}

func newGatedNode(t *testing.T) *gatedNode {
	t.Helper()
	s, db, _ := newService(t)
	ctx := context.Background()
	c, err := s.CreateCollection(ctx, admin, entente.Collection{Alias: "intel", Title: "Intel", DefaultMarking: stix.TLPAmber.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []policy.Party{{ID: partnerB, Name: "B", Country: "DE"}, {ID: partnerC, Name: "C", Country: "US"}, {ID: victim, Name: "victim", Country: "FR"}} {
		if err := s.PutPartner(ctx, admin, p); err != nil {
			t.Fatal(err)
		}
	}
	a, err := s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partnerB}, Collections: []string{"intel"}, MaxTLP: stix.TLPAmber,
		Redact: policy.Redaction{SightingVictimsToCountry: true}})
	if err != nil {
		t.Fatal(err)
	}
	residency := policy.ResidencyMarking("FR")
	g := &gatedNode{s: s, st: db, coll: c, agree: a, ids: map[string]string{}}
	objs := map[string]json.RawMessage{
		"red":       marked(1, stix.TLPRed.MarkingID()),
		"amber":     marked(2, stix.TLPAmber.MarkingID()),
		"green":     marked(3, stix.TLPGreen.MarkingID()),
		"clear":     marked(4, stix.TLPClear.MarkingID()),
		"unmarked":  marked(5),
		"residency": marked(6, stix.TLPGreen.MarkingID(), policy.ResidencyMarkingID("FR")),
		"sighting":  sighting(fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", 2)),
		"marking":   residency,
	}
	var raws []json.RawMessage
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range objs {
			if !yield(k) {
				return
			}
		}
	}) {
		o, err := stix.Decode(objs[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g.ids[name] = o.ID
		raws = append(raws, objs[name])
	}
	st, err := s.AddObjects(ctx, admin, c.ID, raws)
	if err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st.Failures)
	}
	_, g.keyB = keyFor(t, s, entente.RolePartner, partnerB)
	_, g.keyC = keyFor(t, s, entente.RolePartner, partnerC)
	_, g.anal = key(t, s, entente.RoleAnalyst)
	return g
}

func keyFor(t *testing.T, s *node.Service, role entente.Role, org string) (string, entente.Principal) {
	t.Helper()
	secret, k, err := s.CreateKey(context.Background(), admin, node.NewKey{Name: "k", Role: role, Org: org})
	if err != nil {
		t.Fatal(err)
	}
	return secret, entente.Principal{KeyID: k.ID, Org: k.Org, Role: k.Role}
}

func entryIDs(p entente.Page) []string {
	var ids []string
	for _, e := range p.Entries {
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	return ids
}

func (g *gatedNode) want(names ...string) []string {
	var ids []string
	for _, n := range names {
		if id, ok := g.ids[n]; ok {
			ids = append(ids, id)
		} else {
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestGateReleasesWhatTheAgreementAllows(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	fr, _ := policy.CountryLocation("FR")

	page, err := g.s.Objects(ctx, g.keyB, "intel", entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// RED never; residency FR-only not to DE; everything else up to AMBER,
	// the sighting with its victim reduced to a country location.
	want := g.want("amber", "green", "clear", "unmarked", "sighting", "marking", fr)
	if diff := cmp.Diff(want, entryIDs(page)); diff != "" {
		t.Fatalf("partner B received (-want +got):\n%s", diff)
	}
	for _, e := range page.Entries {
		if e.ID != g.ids["sighting"] {
			continue
		}
		o, err := stix.Decode(e.Raw)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := o.Sighting()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{fr}, sg.WhereSightedRefs); diff != "" {
			t.Errorf("sighting victims (-want +got):\n%s", diff)
		}
		if strings.Contains(string(e.Raw), victim) {
			t.Errorf("released sighting still names the victim: %s", e.Raw)
		}
	}

	// Each released version has exactly one egress record, for B.
	audit, err := g.s.QueryAudit(ctx, admin, node.AuditQuery{Action: node.AuditEgress})
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, r := range audit.Records {
		if r.Partner != partnerB || r.Actor != g.keyB.KeyID || r.Rule == "" {
			t.Errorf("audit record %+v: want partner %s by key %s with a rule", r, partnerB, g.keyB.KeyID)
		}
		audited = append(audited, r.ObjectID)
	}
	slices.Sort(audited)
	if diff := cmp.Diff(want, audited); diff != "" {
		t.Errorf("audited egress (-want +got):\n%s", diff)
	}

	// A partner without an agreement receives only the node's own CLEAR.
	page, err = g.s.Objects(ctx, g.keyC, "intel", entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(g.want("clear"), entryIDs(page)); diff != "" {
		t.Errorf("partner C received (-want +got):\n%s", diff)
	}
	// Withheld objects do not exist for the partner.
	_, err = g.s.Object(ctx, g.keyB, "intel", g.ids["red"], entente.ObjectQuery{})
	wantCode(t, err, entente.ENOTFOUND)
	// Manifests are gated too.
	page, err = g.s.Manifest(ctx, g.keyB, "intel", entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, entryIDs(page)); diff != "" {
		t.Errorf("manifest for B (-want +got):\n%s", diff)
	}
	if page.Entries[0].Raw != nil {
		t.Error("manifest entries carry the objects' JSON")
	}
}

func TestOwnRolesAreNotEgress(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	page, err := g.s.Objects(ctx, g.anal, "intel", entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != len(g.ids) {
		t.Errorf("analyst read %d objects, want all %d", len(page.Entries), len(g.ids))
	}
	audit, err := g.s.QueryAudit(ctx, admin, node.AuditQuery{Action: node.AuditEgress})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit.Records) != 0 {
		t.Errorf("an analyst's read was audited as egress: %+v", audit.Records)
	}
	// The audit log is the admins' (the README's role table).
	_, err = g.s.QueryAudit(ctx, g.anal, node.AuditQuery{})
	wantCode(t, err, entente.EFORBIDDEN)
	_, err = g.s.QueryAudit(ctx, g.keyB, node.AuditQuery{})
	wantCode(t, err, entente.EFORBIDDEN)
}

func TestPreviewExplainsEachObject(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	ex, err := g.s.Preview(ctx, admin, partnerB, 0)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, e := range ex {
		rules[e.Object.ID] = e.Decision.Rule
		if e.Decision.Reason == "" {
			t.Errorf("%s: no reason", e.Object.ID)
		}
	}
	want := map[string]string{
		g.ids["red"]: policy.RuleRed, g.ids["residency"]: policy.RuleResidency, g.ids["amber"]: policy.RuleAgreement,
		g.ids["green"]: policy.RuleAgreement, g.ids["clear"]: policy.RuleAgreement, g.ids["unmarked"]: policy.RuleAgreement,
		g.ids["sighting"]: policy.RuleAgreement, g.ids["marking"]: policy.RuleAgreement,
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("preview rules (-want +got):\n%s", diff)
	}
	// Preview is not egress.
	audit, err := g.s.QueryAudit(ctx, admin, node.AuditQuery{Action: node.AuditEgress})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit.Records) != 0 {
		t.Errorf("preview was audited as egress: %+v", audit.Records)
	}
}

func TestAgreementValidationIsRecorded(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	_, err := g.s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partnerB}, Collections: []string{"nope"}, MaxTLP: stix.TLPGreen})
	wantCode(t, err, entente.EINVALID)
	if !strings.Contains(err.Error(), `collections[0]: unknown collection "nope"`) {
		t.Errorf("error %q does not name the unknown collection", err)
	}
	_, err = g.s.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: "identity--99999999-0000-4000-8000-000000000000"}, Collections: []string{"intel"}})
	wantCode(t, err, entente.EINVALID)
	err = g.s.PutPartner(ctx, admin, policy.Party{ID: partnerB, Country: "XX"})
	wantCode(t, err, entente.EINVALID)
	if !strings.Contains(err.Error(), `country: "XX"`) {
		t.Errorf("error %q does not name the country", err)
	}
	audit, err := g.s.QueryAudit(ctx, admin, node.AuditQuery{Action: node.AuditAdmin})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, r := range audit.Records {
		rules = append(rules, r.Rule)
	}
	want := []string{"collection.create", "partner.put", "partner.put", "partner.put", "agreement.put", "key.create", "key.create", "key.create",
		"agreement.put.refused", "agreement.put.refused", "partner.put.refused"}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("admin audit (-want +got):\n%s", diff)
	}
	// The refused agreement did not replace the one in force.
	a, err := g.s.Agreement(ctx, admin, partnerB)
	if err != nil || a.MaxTLP != stix.TLPAmber {
		t.Errorf("agreement after refused change = %+v, %v", a, err)
	}
}

// TestLargePartnerReadMatchesSmallPages checks that a partner's read of a
// large page releases exactly what reads of small pages of the same
// entries release, in the same order with the same cursor, and that each
// read audits each version it releases once.
func TestLargePartnerReadMatchesSmallPages(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	var objs []json.RawMessage
	for i := 100; i < 4600; i++ {
		switch i % 3 {
		case 0:
			objs = append(objs, marked(i, stix.TLPRed.MarkingID())) // withheld
		case 1:
			objs = append(objs, marked(i, stix.TLPGreen.MarkingID()))
		default:
			objs = append(objs, marked(i))
		}
	}
	if st, err := g.s.AddObjects(ctx, admin, g.coll.ID, objs); err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st)
	}
	before, err := g.s.QueryAudit(ctx, admin, node.AuditQuery{Partner: partnerB})
	if err != nil {
		t.Fatal(err)
	}
	big, err := g.s.Objects(ctx, g.keyB, "intel", entente.ObjectQuery{Limit: 4000})
	if err != nil {
		t.Fatal(err)
	}
	var small []entente.ObjectEntry
	f := entente.ObjectQuery{Limit: 500}
	for read := 0; read < 4000; {
		// Small pages of the same 4,000 stored entries.
		f.Limit = min(500, 4000-read)
		page, err := g.s.Objects(ctx, g.keyB, "intel", f)
		if err != nil {
			t.Fatal(err)
		}
		small = append(small, page.Entries...)
		read += f.Limit
		f.Next = page.Next
		if read == 4000 && (page.Next != big.Next || page.More != big.More) {
			t.Errorf("cursor after the large page %q (more %v), after the small ones %q (more %v)", big.Next, big.More, page.Next, page.More)
		}
	}
	ids := func(es []entente.ObjectEntry) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.ID
		}
		return out
	}
	if len(big.Entries) < 2000 || !slices.Equal(ids(big.Entries), ids(small)) {
		t.Fatalf("large page released %d objects, small pages %d; differ: %v", len(big.Entries), len(small), !slices.Equal(ids(big.Entries), ids(small)))
	}
	for _, e := range big.Entries {
		if strings.Contains(string(e.Raw), stix.TLPRed.MarkingID()) {
			t.Fatalf("a RED object left: %s", e.ID)
		}
	}
	var audited []string
	q := node.AuditQuery{Partner: partnerB, Action: node.AuditEgress}
	for {
		page, err := g.s.QueryAudit(ctx, admin, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if r.Seq > lastSeq(before) {
				audited = append(audited, r.ObjectID)
			}
		}
		if page.Next == "" {
			break
		}
		q.Next = page.Next
	}
	if want := append(ids(big.Entries), ids(small)...); !slices.Equal(audited, want) {
		t.Errorf("audited %d versions, released %d (twice)", len(audited), len(want))
	}
}

// TestRedactionAddsWithoutLoss checks that the location a redaction
// adds does not take the place of an entry the gate has not read yet
// (the gate writes what it releases over what it read): a sighting first
// in the page, everything after it released too.
func TestRedactionAddsWithoutLoss(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	c, err := g.s.CreateCollection(ctx, admin, entente.Collection{Alias: "sightings", Title: "Sightings", DefaultMarking: stix.TLPGreen.MarkingID(),
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}})
	if err != nil {
		t.Fatal(err)
	}
	a := g.agree
	a.Collections = append(a.Collections, "sightings")
	if _, err := g.s.PutAgreement(ctx, admin, a); err != nil {
		t.Fatal(err)
	}
	objs := []json.RawMessage{sighting(fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", 2))}
	for i := 10; i < 15; i++ {
		objs = append(objs, marked(i))
	}
	if st, err := g.s.AddObjects(ctx, admin, c.ID, objs); err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st)
	}
	fr, _ := policy.CountryLocation("FR")
	want := []string{fr}
	for _, raw := range objs {
		o, _ := stix.Decode(raw)
		want = append(want, o.ID)
	}
	slices.Sort(want)
	page, err := g.s.Objects(ctx, g.keyB, "sightings", entente.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, entryIDs(page)); diff != "" {
		t.Errorf("partner B received (-want +got):\n%s", diff)
	}
}

// failingAudit is a store whose failAt-th append of a release fails.
type failingAudit struct {
	*sqlite.Store
	failAt int32
	calls  atomic.Int32
}

func (f *failingAudit) AppendRelease(ctx context.Context, r audit.Release) error {
	if f.calls.Add(1) == f.failAt {
		return errors.New("disk full")
	}
	return f.Store.AppendRelease(ctx, r)
}

// TestLargePartnerReadNeedsEveryRecord checks that a partner's read of a
// large page, audited as several records appended while it is read,
// returns nothing when any one of them cannot be appended.
func TestLargePartnerReadNeedsEveryRecord(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	var objs []json.RawMessage
	for i := 100; i < 4600; i++ {
		objs = append(objs, marked(i, stix.TLPGreen.MarkingID()))
	}
	if st, err := g.s.AddObjects(ctx, admin, g.coll.ID, objs); err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st)
	}
	whole, err := g.s.Objects(ctx, g.keyB, "intel", entente.ObjectQuery{Limit: 4000})
	if err != nil || len(whole.Entries) < 3900 {
		t.Fatalf("read: %d entries, %v", len(whole.Entries), err)
	}
	appends := 0
	for failAt := int32(1); ; failAt++ {
		st := &failingAudit{Store: g.st, failAt: failAt}
		s := node.New(st, node.Config{Org: org}, nil)
		page, err := s.Objects(ctx, g.keyB, "intel", entente.ObjectQuery{Limit: 4000})
		if st.calls.Load() < failAt {
			// Every append succeeded: the read is whole.
			if err != nil || len(page.Entries) != len(whole.Entries) {
				t.Fatalf("read with every record appended: %d entries, %v", len(page.Entries), err)
			}
			appends = int(failAt) - 1
			break
		}
		if err == nil || len(page.Entries) != 0 {
			t.Fatalf("append %d of the read failed, yet it returned %d entries (%v)", failAt, len(page.Entries), err)
		}
	}
	if appends < 2 {
		t.Errorf("a read of 4,000 entries was audited in %d records; the test wants several", appends)
	}
}

func lastSeq(p node.AuditPage) int64 {
	if len(p.Records) == 0 {
		return -1
	}
	return p.Records[len(p.Records)-1].Seq
}

// TestLargePartnerReadsKeepTheirPages checks that the pages of partners'
// large reads are their own: the gate reads their parts into entries it
// reuses from read to read, and a page that kept any of them would
// change under the next read. Pages read four at a time, and again, must
// stay what each was when it was returned, and equal what the same read
// returned alone.
func TestLargePartnerReadsKeepTheirPages(t *testing.T) {
	g := newGatedNode(t)
	ctx := context.Background()
	var objs []json.RawMessage
	for i := 100; i < 8600; i++ {
		objs = append(objs, marked(i, stix.TLPGreen.MarkingID()))
	}
	if st, err := g.s.AddObjects(ctx, admin, g.coll.ID, objs); err != nil || st.FailureCount > 0 {
		t.Fatalf("add: %v %+v", err, st)
	}
	type entry struct{ id, raw string }
	snapshot := func(p entente.Page) []entry {
		var out []entry
		for _, e := range p.Entries {
			out = append(out, entry{e.ID, string(e.Raw)})
		}
		return out
	}
	// Four windows of 2,000 entries (a read in parts), read one by one.
	var cursors []string
	var want [][]entry
	next := ""
	for range 4 {
		page, err := g.s.Objects(ctx, g.keyB, "intel", entente.ObjectQuery{Limit: 2000, Next: next})
		if err != nil || len(page.Entries) < 1900 {
			t.Fatalf("read: %d entries, %v", len(page.Entries), err)
		}
		cursors = append(cursors, next)
		want = append(want, snapshot(page))
		next = page.Next
	}
	for round := range 2 {
		pages := make([]entente.Page, len(cursors))
		errs := make(chan error, len(cursors))
		for i, cur := range cursors {
			go func() {
				var err error
				pages[i], err = g.s.Objects(ctx, g.keyB, "intel", entente.ObjectQuery{Limit: 2000, Next: cur})
				errs <- err
			}()
		}
		for range cursors {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		// More reads, which reuse the entries the reads above were read
		// into, before the pages are looked at.
		for _, cur := range cursors {
			if _, err := g.s.Objects(ctx, g.keyB, "intel", entente.ObjectQuery{Limit: 2000, Next: cur}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range pages {
			if diff := cmp.Diff(want[i], snapshot(pages[i]), cmp.AllowUnexported(entry{})); diff != "" {
				t.Fatalf("round %d, window %d changed after later reads (-want +got):\n%.2000s", round, i, diff)
			}
		}
	}
}

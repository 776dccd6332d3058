package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// RunPolicy checks that the stores open returns implement
// [store.PolicyStore] as its documentation says. Each subtest opens a
// fresh, empty store.
func RunPolicy(t *testing.T, open Opener) {
	ps := func(t *testing.T) store.PolicyStore {
		t.Helper()
		s, ok := open(t).(store.PolicyStore)
		if !ok {
			t.Fatalf("%T does not implement store.PolicyStore", s)
		}
		return s
	}
	t.Run("Parties", func(t *testing.T) { testParties(t, ps(t)) })
	t.Run("Agreements", func(t *testing.T) { testAgreements(t, ps(t)) })
	t.Run("Peers", func(t *testing.T) { testPeers(t, ps(t)) })
	t.Run("Provenance", func(t *testing.T) { testProvenance(t, ps(t)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, ps(t)) })
	t.Run("Release", func(t *testing.T) { testRelease(t, ps(t)) })
	t.Run("Received", func(t *testing.T) { testReceived(t, open) })
}

func policyCode(t *testing.T, err error, code entente.Code) {
	t.Helper()
	if got := entente.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func testParties(t *testing.T, s store.PolicyStore) {
	_, err := s.Party(ctx(t), "identity--00000000-0000-4000-8000-000000000001")
	policyCode(t, err, entente.ENOTFOUND)
	b := policy.Party{ID: "identity--00000000-0000-4000-8000-00000000000b", Name: "B", Country: "DE", Sector: "energy"}
	a := policy.Party{ID: "identity--00000000-0000-4000-8000-00000000000a", Name: "A", Country: "FR"}
	for _, p := range []policy.Party{b, a} {
		if err := s.PutParty(ctx(t), p); err != nil {
			t.Fatal(err)
		}
	}
	a.Name = "A renamed"
	if err := s.PutParty(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Party(ctx(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("party (-want +got):\n%s", diff)
	}
	list, err := s.Parties(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]policy.Party{a, b}, list); diff != "" {
		t.Errorf("parties (-want +got):\n%s", diff)
	}
	if err := s.DeleteParty(ctx(t), a.ID); err != nil {
		t.Fatal(err)
	}
	policyCode(t, s.DeleteParty(ctx(t), a.ID), entente.ENOTFOUND)
}

func testAgreements(t *testing.T, s store.PolicyStore) {
	partner := policy.Party{ID: "identity--00000000-0000-4000-8000-00000000000b", Country: "DE"}
	a := policy.Agreement{
		ID: "a-b", Partner: partner, Collections: []string{"intel"}, ObjectTypes: []string{"indicator"},
		MaxTLP: stix.TLPAmber, AllowReshare: true,
		Redact:    policy.Redaction{SightingVictimsToCountry: true, StripFreeText: true},
		ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ValidUntil: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		Blind: &policy.BlindAccess{Collections: []string{"red"}, Budget: blind.Budget{Limit: 100000, Period: 24 * time.Hour}},
	}
	_, err := s.Agreement(ctx(t), partner.ID)
	policyCode(t, err, entente.ENOTFOUND)
	if err := s.PutAgreement(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	a.MaxTLP = stix.TLPGreen // replacing keeps one agreement per partner
	if err := s.PutAgreement(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Agreement(ctx(t), partner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("agreement (-want +got):\n%s", diff)
	}
	list, err := s.Agreements(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]policy.Agreement{a}, list); diff != "" {
		t.Errorf("agreements (-want +got):\n%s", diff)
	}
	if err := s.DeleteAgreement(ctx(t), partner.ID); err != nil {
		t.Fatal(err)
	}
	policyCode(t, s.DeleteAgreement(ctx(t), partner.ID), entente.ENOTFOUND)
}

func testPeers(t *testing.T, s store.PolicyStore) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p1 := store.Peer{ID: "p1", Name: "Peer one", Org: "identity--00000000-0000-4000-8000-00000000000a",
		APIRoot: "http://127.0.0.1:1/api1/", Collection: "remote", LocalCollection: "intel",
		Token: "secret-of-the-peer", Direction: store.DirectionPull, Created: created,
		Pin: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"}
	p2 := p1
	p2.ID, p2.Name, p2.Direction, p2.Pin = "p2", "Peer two", store.DirectionPush, ""
	for _, p := range []store.Peer{p1, p2} {
		if err := s.PutPeer(ctx(t), p); err != nil {
			t.Fatal(err)
		}
	}
	cp := json.RawMessage(`{"added_after":"2026-01-01T00:00:00Z","next":"abc"}`)
	synced := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if err := s.UpdatePeerSync(ctx(t), "p1", cp, synced, ""); err != nil {
		t.Fatal(err)
	}
	// A failed attempt keeps the checkpoint when none is given.
	if err := s.UpdatePeerSync(ctx(t), "p1", nil, synced.Add(time.Minute), "pull: unexpected media type"); err != nil {
		t.Fatal(err)
	}
	policyCode(t, s.UpdatePeerSync(ctx(t), "nope", nil, synced, ""), entente.ENOTFOUND)
	// Replacing the configuration keeps the sync state.
	p1.Name = "Peer one renamed"
	if err := s.PutPeer(ctx(t), p1); err != nil {
		t.Fatal(err)
	}
	got, err := s.Peer(ctx(t), "p1")
	if err != nil {
		t.Fatal(err)
	}
	want := p1
	want.Checkpoint, want.LastSync, want.LastError = cp, synced.Add(time.Minute), "pull: unexpected media type"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("peer (-want +got):\n%s", diff)
	}
	list, err := s.Peers(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "p1" || list[1].ID != "p2" {
		t.Errorf("peers = %+v, want p1 then p2", list)
	}
	if list[0].Pin != p1.Pin || list[1].Pin != "" {
		t.Errorf("pins %q and %q, want %q and none", list[0].Pin, list[1].Pin, p1.Pin)
	}
	testPeerSyncConcurrent(t, s)
	if err := s.DeletePeer(ctx(t), "p2"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Peer(ctx(t), "p2")
	policyCode(t, err, entente.ENOTFOUND)
	policyCode(t, s.DeletePeer(ctx(t), "p2"), entente.ENOTFOUND)
}

// testPeerSyncConcurrent saves the sync state of many peers at once, as
// a node does after every page and push (a store may commit them
// together): each is durable when its call returns, and one call naming
// no peer fails alone.
func testPeerSyncConcurrent(t *testing.T, s store.PolicyStore) {
	const n = 40
	for i := range n {
		if err := s.PutPeer(ctx(t), store.Peer{ID: fmt.Sprintf("c%02d", i), APIRoot: "http://127.0.0.1:1/api1/", Collection: "r", LocalCollection: "l", Direction: store.DirectionPush}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for round := range 3 {
		for i := range n + 1 {
			wg.Go(func() {
				id := fmt.Sprintf("c%02d", i)
				if i == n {
					id = "missing"
				}
				cp := json.RawMessage(fmt.Sprintf(`{"round":%d,"peer":%d}`, round, i))
				if err := s.UpdatePeerSync(ctx(t), id, cp, at.Add(time.Duration(round)*time.Second), ""); err != nil {
					errs[i] = err
				}
			})
		}
		wg.Wait()
	}
	for i, err := range errs[:n] {
		if err != nil {
			t.Errorf("peer c%02d: %v", i, err)
		}
	}
	policyCode(t, errs[n], entente.ENOTFOUND)
	for i := range n {
		p, err := s.Peer(ctx(t), fmt.Sprintf("c%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"round":2,"peer":%d}`, i); string(p.Checkpoint) != want || !p.LastSync.Equal(at.Add(2*time.Second)) {
			t.Errorf("peer c%02d: checkpoint %s at %s, want %s at %s", i, p.Checkpoint, p.LastSync, want, at.Add(2*time.Second))
		}
	}
}

func testProvenance(t *testing.T, s store.PolicyStore) {
	rcv := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.Provenance
	for i := range 700 { // more than one chunk of SQL parameters
		recs = append(recs, store.Provenance{Collection: "c1", ObjectID: indicatorID(i), Version: v(i),
			Origin: "identity--00000000-0000-4000-8000-00000000000a", Peer: "p1", ReceivedAt: rcv})
	}
	// The same object in another collection has its own provenance.
	recs = append(recs, store.Provenance{Collection: "c2", ObjectID: indicatorID(0), Version: v(0), Origin: "identity--00000000-0000-4000-8000-00000000000c", Peer: "p9", ReceivedAt: rcv})
	if err := s.SetProvenance(ctx(t), recs); err != nil {
		t.Fatal(err)
	}
	// Recording again replaces.
	again := recs[1]
	again.Peer = "p2"
	if err := s.SetProvenance(ctx(t), []store.Provenance{again}); err != nil {
		t.Fatal(err)
	}
	ids := []string{indicatorID(0), indicatorID(1), indicatorID(699), "indicator--00000000-0000-4000-8000-ffffffffffff"}
	for i := 2; i < 650; i++ {
		ids = append(ids, indicatorID(i))
	}
	got, err := s.Provenance(ctx(t), "c1", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 651 { // ids 0 to 649 and 699
		t.Fatalf("got %d provenance records, want 651", len(got))
	}
	key := func(p store.Provenance) store.VersionKey {
		n, _ := store.UnixNano(p.Version)
		return store.VersionKey{ID: p.ObjectID, Version: n}
	}
	for _, want := range []store.Provenance{recs[0], again, recs[699]} {
		if diff := cmp.Diff(want, got[key(want)]); diff != "" {
			t.Errorf("provenance of %s (-want +got):\n%s", want.ObjectID, diff)
		}
	}
	other, err := s.Provenance(ctx(t), "c2", ids[:1])
	if err != nil {
		t.Fatal(err)
	}
	if p := other[key(recs[700])]; p.Origin != recs[700].Origin || len(other) != 1 {
		t.Errorf("provenance in c2 = %+v, want only %+v", other, recs[700])
	}
	// By origin, in every collection, the most recently received first.
	later := store.Provenance{Collection: "c2", ObjectID: indicatorID(1), Version: v(1), Origin: recs[700].Origin, Peer: "p9", ReceivedAt: rcv.Add(time.Hour)}
	if err := s.SetProvenance(ctx(t), []store.Provenance{later}); err != nil {
		t.Fatal(err)
	}
	from, err := s.ProvenanceFrom(ctx(t), recs[700].Origin, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Provenance{later, recs[700]}, from); diff != "" {
		t.Errorf("provenance from %s (-want +got):\n%s", recs[700].Origin, diff)
	}
	if from, err := s.ProvenanceFrom(ctx(t), recs[0].Origin, 5); err != nil || len(from) != 5 {
		t.Errorf("provenance from %s, limit 5: %d records, %v", recs[0].Origin, len(from), err)
	}
	if from, err := s.ProvenanceFrom(ctx(t), "identity--00000000-0000-4000-8000-0000000000ff", 5); err != nil || len(from) != 0 {
		t.Errorf("provenance from an unknown origin: %+v, %v", from, err)
	}
}

func testAudit(t *testing.T, s store.PolicyStore) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recs []audit.Record
	for i := range 25 {
		partner := "identity--00000000-0000-4000-8000-00000000000b"
		if i%5 == 0 {
			partner = "identity--00000000-0000-4000-8000-00000000000c"
		}
		recs = append(recs, audit.Record{Time: t0.Add(time.Duration(i) * time.Second), Actor: "key-1", Action: audit.Egress,
			Partner: partner, ObjectID: indicatorID(i % 10), Version: v(i), Rule: policy.RuleAgreement, Detail: "taxii"})
	}
	recs = append(recs, audit.Record{Time: t0.Add(time.Hour), Actor: "local", Action: audit.Admin, Rule: "agreement.put", Detail: "partner X"})
	if err := s.AppendAudit(ctx(t), recs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx(t), recs[10:]); err != nil {
		t.Fatal(err)
	}
	policyCode(t, s.AppendAudit(ctx(t), []audit.Record{{Action: audit.Egress}}), entente.EINVALID)

	all := func(q audit.Query) []audit.Record {
		t.Helper()
		var out []audit.Record
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatal("audit paging does not end")
			}
			p, err := s.QueryAudit(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p.Records...)
			if p.Next == "" {
				return out
			}
			q.Next = p.Next
		}
	}
	strip := func(rs []audit.Record) []audit.Record {
		out := make([]audit.Record, len(rs))
		for i, r := range rs {
			r.Seq = 0
			out[i] = r
		}
		return out
	}
	filter := func(keep func(audit.Record) bool) []audit.Record {
		var out []audit.Record
		for _, r := range recs {
			if keep(r) {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		name string
		q    audit.Query
		want []audit.Record
	}{
		{"all in pages of 4", audit.Query{Limit: 4}, recs},
		{"by partner", audit.Query{Partner: "identity--00000000-0000-4000-8000-00000000000c", Limit: 2},
			filter(func(r audit.Record) bool { return r.Partner == "identity--00000000-0000-4000-8000-00000000000c" })},
		{"by object", audit.Query{ObjectID: indicatorID(3)}, filter(func(r audit.Record) bool { return r.ObjectID == indicatorID(3) })},
		{"by time", audit.Query{From: t0.Add(5 * time.Second), To: t0.Add(8 * time.Second)}, recs[5:8]},
		{"by action", audit.Query{Action: audit.Admin}, recs[25:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := all(tt.q)
			for i := 1; i < len(got); i++ {
				if got[i].Seq <= got[i-1].Seq {
					t.Fatalf("records out of order: seq %d after %d", got[i].Seq, got[i-1].Seq)
				}
			}
			if diff := cmp.Diff(tt.want, strip(got)); diff != "" {
				t.Errorf("audit (-want +got):\n%s", diff)
			}
		})
	}
	_, err := s.QueryAudit(ctx(t), audit.Query{Next: "bogus"})
	policyCode(t, err, entente.EINVALID)
}

// testRelease checks that releases (many versions in one audit row) read
// back as one record per version, interleaved in log order with single
// records, and are found by partner, object, action and time, in pages
// that may end inside a release.
func testRelease(t *testing.T, s store.PolicyStore) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	pB, pC := "identity--00000000-0000-4000-8000-00000000000b", "identity--00000000-0000-4000-8000-00000000000c"
	// The ids cover what packing must restore exactly: STIX ids, an
	// upper-case UUID, a non-UUID id; a zero version.
	odd := []string{"indicator--00000000-0000-4000-8000-0000000000AA", "x-custom--not-a-uuid", "location--" + "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"}
	rel := func(at time.Duration, partner string, first, n int) audit.Release {
		r := audit.Release{Time: t0.Add(at), Actor: "key-1", Partner: partner, Detail: "objects intel"}
		for i := first; i < first+n; i++ {
			r.Versions = append(r.Versions, audit.ReleasedVersion{ObjectID: indicatorID(i), Version: v(i), Rule: policy.RuleAgreement})
		}
		return r
	}
	r1 := rel(0, pB, 0, 700) // larger than a page below
	for i, id := range odd {
		r1.Versions = append(r1.Versions, audit.ReleasedVersion{ObjectID: id, Version: v(i), Rule: "tlp:clear", Detail: "objects intel redaction of " + indicatorID(i)})
	}
	r1.Versions = append(r1.Versions, audit.ReleasedVersion{ObjectID: indicatorID(3), Rule: policy.RuleAgreement}) // a second version, zero
	admin := audit.Record{Time: t0.Add(time.Second), Actor: "local", Action: audit.Admin, Partner: pC, Rule: "agreement.put", Detail: "agreement a-c"}
	single := audit.Record{Time: t0.Add(2 * time.Second), Actor: "peer p1", Action: audit.Egress, Partner: pC, ObjectID: indicatorID(3), Version: v(3), Rule: policy.RuleAgreement, Detail: "push"}
	r2 := rel(3*time.Second, pC, 3, 5)
	if err := s.AppendRelease(ctx(t), r1); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx(t), []audit.Record{admin, single}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRelease(ctx(t), r2); err != nil {
		t.Fatal(err)
	}
	// A release packed in parts as they were gated.
	r3 := rel(4*time.Second, pB, 10, 30)
	var pk audit.Packer
	for _, part := range [][]audit.ReleasedVersion{r3.Versions[:12], r3.Versions[12:]} {
		if err := pk.Add(r3, part); err != nil {
			t.Fatal(err)
		}
	}
	if pk.Len() != 30 {
		t.Fatalf("packer holds %d versions, want 30", pk.Len())
	}
	if err := s.AppendRelease(ctx(t), pk.Seal(r3)); err != nil {
		t.Fatal(err)
	}
	var bad audit.Packer
	if err := bad.Add(r3, []audit.ReleasedVersion{{Rule: "no id"}}); entente.ErrorCode(err) != entente.EINVALID {
		t.Errorf("packer took a version without an id: %v", err)
	}
	policyCode(t, s.AppendRelease(ctx(t), bad.Seal(r3)), entente.EINVALID)
	for _, bad := range []audit.Release{{Partner: pB, Actor: "k", Versions: r2.Versions}, {Time: t0, Partner: pB}, {Time: t0, Versions: []audit.ReleasedVersion{{}}}} {
		policyCode(t, s.AppendRelease(ctx(t), bad), entente.EINVALID)
	}
	log := append(append(append(r1.Records(), admin, single), r2.Records()...), r3.Records()...)

	all := func(q audit.Query) []audit.Record {
		t.Helper()
		var out []audit.Record
		for pages := 0; ; pages++ {
			if pages > 1000 {
				t.Fatal("audit paging does not end")
			}
			p, err := s.QueryAudit(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			if q.Limit > 0 && len(p.Records) > q.Limit {
				t.Fatalf("page of %d records, limit %d", len(p.Records), q.Limit)
			}
			out = append(out, p.Records...)
			if p.Next == "" {
				return out
			}
			q.Next = p.Next
		}
	}
	filter := func(keep func(audit.Record) bool) []audit.Record {
		var out []audit.Record
		for _, r := range log {
			if keep(r) {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		name string
		q    audit.Query
		want []audit.Record
	}{
		{"all", audit.Query{}, log},
		{"all in pages of 300", audit.Query{Limit: 300}, log},
		{"by partner", audit.Query{Partner: pC, Limit: 2}, filter(func(r audit.Record) bool { return r.Partner == pC })},
		{"by object in releases and alone", audit.Query{ObjectID: indicatorID(3), Limit: 1}, filter(func(r audit.Record) bool { return r.ObjectID == indicatorID(3) })},
		{"by object with another id", audit.Query{ObjectID: odd[1]}, filter(func(r audit.Record) bool { return r.ObjectID == odd[1] })},
		{"by object and partner", audit.Query{ObjectID: indicatorID(4), Partner: pC}, r2.Records()[1:2]},
		{"by unknown object", audit.Query{ObjectID: indicatorID(9999)}, nil},
		{"by action", audit.Query{Action: audit.Egress, Limit: 500}, filter(func(r audit.Record) bool { return r.Action == audit.Egress })},
		{"by time", audit.Query{From: t0.Add(time.Second), To: t0.Add(3 * time.Second)}, []audit.Record{admin, single}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := all(tt.q)
			for i := 1; i < len(got); i++ {
				if got[i].Seq <= got[i-1].Seq {
					t.Fatalf("records out of order: seq %d after %d", got[i].Seq, got[i-1].Seq)
				}
			}
			stripped := make([]audit.Record, len(got))
			for i, r := range got {
				r.Seq = 0
				stripped[i] = r
			}
			if diff := cmp.Diff(tt.want, stripped, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("audit (-want +got):\n%s", diff)
			}
		})
	}
}

// AppendOneRelease appends one release of two versions to s (which must
// implement [store.PolicyStore]), for backend tests that then try to
// change it or its index behind the store's back.
func AppendOneRelease(t *testing.T, s store.Store) {
	t.Helper()
	ps, ok := s.(store.PolicyStore)
	if !ok {
		t.Fatalf("%T does not implement store.PolicyStore", s)
	}
	r := audit.Release{Time: time.Now(), Actor: "test", Partner: "identity--00000000-0000-4000-8000-00000000000b",
		Versions: []audit.ReleasedVersion{{ObjectID: indicatorID(1), Version: v(1), Rule: "test"}, {ObjectID: indicatorID(2), Version: v(2), Rule: "test"}}}
	if err := ps.AppendRelease(t.Context(), r); err != nil {
		t.Fatal(err)
	}
}

// AppendOneAudit appends one audit record to s (which must implement
// [store.PolicyStore]), for backend tests that then try to change it
// behind the store's back.
func AppendOneAudit(t *testing.T, s store.Store) {
	t.Helper()
	ps, ok := s.(store.PolicyStore)
	if !ok {
		t.Fatalf("%T does not implement store.PolicyStore", s)
	}
	rec := audit.Record{Time: time.Now(), Actor: "test", Action: audit.Admin, Rule: "test"}
	if err := ps.AppendAudit(t.Context(), []audit.Record{rec}); err != nil {
		t.Fatal(err)
	}
}

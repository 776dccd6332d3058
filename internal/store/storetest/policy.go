package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
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
		Token: "secret-of-the-peer", Direction: store.DirectionPull, Created: created}
	p2 := p1
	p2.ID, p2.Name, p2.Direction = "p2", "Peer two", store.DirectionPush
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
	if err := s.DeletePeer(ctx(t), "p2"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Peer(ctx(t), "p2")
	policyCode(t, err, entente.ENOTFOUND)
	policyCode(t, s.DeletePeer(ctx(t), "p2"), entente.ENOTFOUND)
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
}

func testAudit(t *testing.T, s store.PolicyStore) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.AuditRecord
	for i := range 25 {
		partner := "identity--00000000-0000-4000-8000-00000000000b"
		if i%5 == 0 {
			partner = "identity--00000000-0000-4000-8000-00000000000c"
		}
		recs = append(recs, store.AuditRecord{Time: t0.Add(time.Duration(i) * time.Second), Actor: "key-1", Action: store.AuditEgress,
			Partner: partner, ObjectID: indicatorID(i % 10), Version: v(i), Rule: policy.RuleAgreement, Detail: "taxii"})
	}
	recs = append(recs, store.AuditRecord{Time: t0.Add(time.Hour), Actor: "local", Action: store.AuditAdmin, Rule: "agreement.put", Detail: "partner X"})
	if err := s.AppendAudit(ctx(t), recs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx(t), recs[10:]); err != nil {
		t.Fatal(err)
	}
	policyCode(t, s.AppendAudit(ctx(t), []store.AuditRecord{{Action: store.AuditEgress}}), entente.EINVALID)

	all := func(q store.AuditQuery) []store.AuditRecord {
		t.Helper()
		var out []store.AuditRecord
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
	strip := func(rs []store.AuditRecord) []store.AuditRecord {
		out := make([]store.AuditRecord, len(rs))
		for i, r := range rs {
			r.Seq = 0
			out[i] = r
		}
		return out
	}
	filter := func(keep func(store.AuditRecord) bool) []store.AuditRecord {
		var out []store.AuditRecord
		for _, r := range recs {
			if keep(r) {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		name string
		q    store.AuditQuery
		want []store.AuditRecord
	}{
		{"all in pages of 4", store.AuditQuery{Limit: 4}, recs},
		{"by partner", store.AuditQuery{Partner: "identity--00000000-0000-4000-8000-00000000000c", Limit: 2},
			filter(func(r store.AuditRecord) bool { return r.Partner == "identity--00000000-0000-4000-8000-00000000000c" })},
		{"by object", store.AuditQuery{ObjectID: indicatorID(3)}, filter(func(r store.AuditRecord) bool { return r.ObjectID == indicatorID(3) })},
		{"by time", store.AuditQuery{From: t0.Add(5 * time.Second), To: t0.Add(8 * time.Second)}, recs[5:8]},
		{"by action", store.AuditQuery{Action: store.AuditAdmin}, recs[25:]},
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
	_, err := s.QueryAudit(ctx(t), store.AuditQuery{Next: "bogus"})
	policyCode(t, err, entente.EINVALID)
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
	rec := store.AuditRecord{Time: time.Now(), Actor: "test", Action: store.AuditAdmin, Rule: "test"}
	if err := ps.AppendAudit(t.Context(), []store.AuditRecord{rec}); err != nil {
		t.Fatal(err)
	}
}

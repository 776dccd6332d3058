package egress

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// termsStore is a SQLite store that counts its reads of agreements, can
// hold a write of an agreement after it is committed (held), and can
// lose the writes of the terms version (dropVersion).
type termsStore struct {
	*sqlite.Store
	agreementReads atomic.Int32
	dropVersion    atomic.Bool
	// held, when set, receives a value once an agreement is written and
	// the write returns when release is closed.
	held    chan struct{}
	release chan struct{}
}

func (s *termsStore) Agreement(ctx context.Context, partner string) (policy.Agreement, error) {
	s.agreementReads.Add(1)
	return s.Store.Agreement(ctx, partner)
}

func (s *termsStore) PutAgreement(ctx context.Context, a policy.Agreement) error {
	err := s.Store.PutAgreement(ctx, a)
	if s.held != nil {
		s.held <- struct{}{}
		<-s.release
	}
	return err
}

func (s *termsStore) PutSetting(ctx context.Context, name string, value []byte) error {
	if name == settingTerms && s.dropVersion.Load() {
		return nil
	}
	return s.Store.PutSetting(ctx, name, value)
}

// termsFixture is a gate with one partner whose agreement releases one
// GREEN indicator.
type termsFixture struct {
	st      *termsStore
	g       *Gate
	admin   entente.Principal
	partner entente.Principal
	coll    string
}

const (
	termsSelf    = "identity--7e1f0000-0000-4000-8000-000000000001"
	termsPartner = "identity--7e1f0000-0000-4000-8000-0000000000b1"
)

func newTermsFixture(t *testing.T) *termsFixture {
	t.Helper()
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	f := &termsFixture{st: &termsStore{Store: sq}, coll: "7e1e0000-0000-4000-8000-0000000000c1"}
	f.g = newTermsGate(f.st)
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	if err := sq.CreateCollection(ctx, entente.Collection{ID: f.coll, Alias: "intel", Title: "intel",
		DefaultMarking: stix.TLPGreen.MarkingID(), ReadRoles: []entente.Role{entente.RolePartner}, Created: now}); err != nil {
		t.Fatal(err)
	}
	f.admin = entente.Principal{KeyID: "local", Org: termsSelf, Role: entente.RoleAdmin}
	f.partner = entente.Principal{KeyID: "kDE", Org: termsPartner, Role: entente.RolePartner}
	if err := f.g.PutPartner(ctx, f.admin, policy.Party{ID: termsPartner, Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	f.agree(t, f.g, stix.TLPGreen)
	raw := json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--7e1f0000-0000-4000-8000-000000000061","created":"2026-06-01T09:00:00.000Z","modified":"2026-06-01T09:00:00.000Z",` +
		`"pattern":"[ipv4-addr:value = '198.51.100.7']","pattern_type":"stix","valid_from":"2026-06-01T09:00:00Z"}`)
	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sq.AddObjects(ctx, f.coll, []*stix.Object{o}); err != nil {
		t.Fatal(err)
	}
	return f
}

// newTermsGate returns a gate on st (another replica, when st is shared).
func newTermsGate(st *termsStore) *Gate {
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	return New(st, Config{Now: func() time.Time { return now }, Self: func(context.Context) (policy.Party, error) {
		return policy.Party{ID: termsSelf, Country: "FR"}, nil
	}})
}

// agree records, through g, the partner's agreement with its highest TLP.
func (f *termsFixture) agree(t *testing.T, g *Gate, max stix.TLP) {
	t.Helper()
	if _, err := g.PutAgreement(context.Background(), f.admin, policy.Agreement{Partner: policy.Party{ID: termsPartner},
		Collections: []string{f.coll}, MaxTLP: max}); err != nil {
		t.Fatal(err)
	}
}

// released is how many objects a push page to the partner releases.
func (f *termsFixture) released(t *testing.T) int {
	t.Helper()
	rel, err := f.g.Release(context.Background(), f.partner, Query{Channel: "push", Collection: f.coll})
	if err != nil {
		t.Fatal(err)
	}
	return len(rel.Page.Entries)
}

// TestPartnerTermsCached: the partner's terms are read once for many
// pushes, and a change of its agreement is applied at the very next
// push — made through this gate, through another replica's sharing the
// store, or through this gate when the version write is lost.
func TestPartnerTermsCached(t *testing.T) {
	for _, tc := range []struct {
		name string
		// narrow narrows the agreement to CLEAR, then widen widens it
		// back to GREEN.
		narrow, widen func(t *testing.T, f *termsFixture)
	}{
		{"this gate",
			func(t *testing.T, f *termsFixture) { f.agree(t, f.g, stix.TLPClear) },
			func(t *testing.T, f *termsFixture) { f.agree(t, f.g, stix.TLPGreen) }},
		{"another replica",
			func(t *testing.T, f *termsFixture) { f.agree(t, newTermsGate(f.st), stix.TLPClear) },
			func(t *testing.T, f *termsFixture) { f.agree(t, newTermsGate(f.st), stix.TLPGreen) }},
		{"this gate, version lost", // the generation alone invalidates
			func(t *testing.T, f *termsFixture) {
				f.st.dropVersion.Store(true)
				f.agree(t, f.g, stix.TLPClear)
			},
			func(t *testing.T, f *termsFixture) { f.agree(t, f.g, stix.TLPGreen) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTermsFixture(t)
			before := f.st.agreementReads.Load()
			for i := range 5 {
				if n := f.released(t); n != 1 {
					t.Fatalf("push %d released %d objects under a GREEN agreement, want 1", i, n)
				}
			}
			if n := f.st.agreementReads.Load() - before; n != 1 {
				t.Errorf("the agreement was read %d times for 5 pushes, want 1", n)
			}
			tc.narrow(t, f)
			if n := f.released(t); n != 0 {
				t.Fatalf("after the agreement was narrowed to CLEAR, a push released %d GREEN objects: stale terms", n)
			}
			tc.widen(t, f)
			if n := f.released(t); n != 1 {
				t.Fatalf("after the agreement was widened to GREEN again, a push released %d objects, want 1", n)
			}
		})
	}
}

// TestPartnerTermsNotCachedDuringWrite: while a write of an agreement is
// in progress (committed, not yet returned, the version not yet
// written), a push reads the terms from the store, and what it reads is
// not kept: after the write returns, the narrowed agreement applies.
func TestPartnerTermsNotCachedDuringWrite(t *testing.T) {
	f := newTermsFixture(t)
	if n := f.released(t); n != 1 { // cached under GREEN
		t.Fatalf("released %d objects under a GREEN agreement, want 1", n)
	}
	f.st.held, f.st.release = make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { f.agree(t, f.g, stix.TLPClear) })
	<-f.st.held // the narrowed agreement is in the store; the version is not written yet
	if n := f.released(t); n != 0 {
		t.Errorf("during the write of a narrowed agreement, a push released %d objects under the cached terms", n)
	}
	close(f.st.release)
	wg.Wait()
	f.st.held = nil
	if n := f.released(t); n != 0 {
		t.Errorf("after the write of a narrowed agreement, a push released %d objects", n)
	}
	// The first push (nothing cached), the one during the write and the
	// one after it each read the terms.
	if hits, misses := f.g.termsCacheStats(); hits != 0 || misses != 3 {
		t.Errorf("terms cache: %d hits, %d misses; want 0 and 3", hits, misses)
	}
}

// TestPageGatedUnderTermsInForce: a request's terms are read when it
// starts, and each of its pages is gated under the terms in force when
// the page is: a page gated after the agreement was narrowed (a later
// page of a push, a pipelined read or an export already running)
// releases nothing the narrowed agreement forbids.
func TestPageGatedUnderTermsInForce(t *testing.T) {
	f := newTermsFixture(t)
	ctx := context.Background()
	terms, err := f.g.partnerTerms(ctx, f.partner)
	if err != nil {
		t.Fatal(err)
	}
	page, err := f.st.QueryObjects(ctx, entente.ObjectQuery{Collection: f.coll})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("query: %d entries, %v", len(page.Entries), err)
	}
	gate := func() int {
		t.Helper()
		p := page
		p.Entries = append([]entente.ObjectEntry(nil), page.Entries...)
		sink := audit.Release{Time: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), Actor: f.partner.KeyID, Partner: termsPartner, Detail: "test"}
		out, err := f.g.gatePage(ctx, terms, entente.Collection{ID: f.coll, DefaultMarking: stix.TLPGreen.MarkingID()}, p, false, &sink, "test", true)
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Entries)
	}
	if n := gate(); n != 1 {
		t.Fatalf("a page under a GREEN agreement released %d objects, want 1", n)
	}
	f.agree(t, f.g, stix.TLPClear) // while the request runs
	if n := gate(); n != 0 {
		t.Errorf("a page gated after the agreement was narrowed to CLEAR, under the request's first terms, released %d GREEN objects", n)
	}
}

package egress

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// readCountingStore is a SQLite store that counts the gate's reads of
// the terms: the version in force, partners and agreements.
type readCountingStore struct {
	*sqlite.Store
	reads atomic.Int64
}

func (s *readCountingStore) Setting(ctx context.Context, name string) ([]byte, error) {
	s.reads.Add(1)
	return s.Store.Setting(ctx, name)
}

func (s *readCountingStore) Party(ctx context.Context, id string) (policy.Party, error) {
	s.reads.Add(1)
	return s.Store.Party(ctx, id)
}

func (s *readCountingStore) Agreement(ctx context.Context, partner string) (policy.Agreement, error) {
	s.reads.Add(1)
	return s.Store.Agreement(ctx, partner)
}

// BenchmarkPushPage is a national CERT's push of one new sighting to
// another CERT, as in the WAN drill's outbreak: a page of one sighting
// whose victim is redacted to its country, released to a partner and
// audited (one durable record). It reports the reads of the terms per
// push (terms-reads/op) beside the time and allocations.
func BenchmarkPushPage(b *testing.B) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sq.Close() })
	st := &readCountingStore{Store: sq}
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	const self = "identity--8e1f0000-0000-4000-8000-000000000001"
	const victim = "identity--8e1f0000-0000-4000-8000-0000000000a1"
	g := New(st, Config{Self: func(context.Context) (policy.Party, error) {
		return policy.Party{ID: self, Country: "US"}, nil
	}})
	const coll = "8e1e0000-0000-4000-8000-0000000000c1"
	if err := sq.CreateCollection(ctx, entente.Collection{ID: coll, Alias: "federation", Title: "federation",
		DefaultMarking: stix.TLPGreen.MarkingID(), ReadRoles: []entente.Role{entente.RolePartner}, Created: now}); err != nil {
		b.Fatal(err)
	}
	admin := entente.Principal{KeyID: "local", Org: self, Role: entente.RoleAdmin}
	if err := g.PutPartner(ctx, admin, policy.Party{ID: victim, Country: "US"}); err != nil {
		b.Fatal(err)
	}
	var partners []entente.Principal
	for i, cc := range []string{"DE", "FR", "IT", "ES", "NL", "BE", "PL", "SE"} {
		id := fmt.Sprintf("identity--8e1f0000-0000-4000-8000-0000000000b%d", i)
		if err := g.PutPartner(ctx, admin, policy.Party{ID: id, Country: cc}); err != nil {
			b.Fatal(err)
		}
		if _, err := g.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: id}, Collections: []string{coll}, MaxTLP: stix.TLPGreen,
			Redact: policy.Redaction{SightingVictimsToCountry: true}}); err != nil {
			b.Fatal(err)
		}
		partners = append(partners, entente.Principal{KeyID: "peer:" + id, Org: id, Role: entente.RolePartner})
	}
	raw := json.RawMessage(`{"type":"sighting","spec_version":"2.1","id":"sighting--8e1f0000-0000-4000-8000-000000000051","created":"2026-06-01T09:00:00.000Z","modified":"2026-06-01T09:00:00.000Z",` +
		`"sighting_of_ref":"indicator--8e1f0000-0000-4000-8000-000000000061","where_sighted_refs":["` + victim + `"]}`)
	o, err := stix.Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sq.AddObjects(ctx, coll, []*stix.Object{o}); err != nil {
		b.Fatal(err)
	}
	// Every partner once, so that each is read at least once before.
	push := func(p entente.Principal) {
		rel, err := g.Release(ctx, p, Query{Channel: "push", Collection: coll, Objects: entente.ObjectQuery{Limit: 1000}})
		if err != nil {
			b.Fatal(err)
		}
		if len(rel.Page.Entries) == 0 {
			b.Fatal("nothing released")
		}
	}
	for _, p := range partners {
		push(p)
	}
	before := st.reads.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		push(partners[i%len(partners)])
	}
	b.StopTimer()
	b.ReportMetric(float64(st.reads.Load()-before)/float64(b.N), "terms-reads/op")
}

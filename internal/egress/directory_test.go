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

// partiesCountingStore is a SQLite store that counts its reads of every
// partner.
type partiesCountingStore struct {
	*sqlite.Store
	reads atomic.Int32
}

func (p *partiesCountingStore) Parties(ctx context.Context) ([]policy.Party, error) {
	p.reads.Add(1)
	return p.Store.Parties(ctx)
}

// TestRedactionReadsPartnersOnce pushes a sighting whose victim is
// redacted to its country to two partners, twice: the partners'
// countries are read once, not at every page; a partner recorded again
// (a change of terms) has them read again, and the victim's new country
// is the one released.
func TestRedactionReadsPartnersOnce(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &partiesCountingStore{Store: sq}
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	const self = "identity--5e1f0000-0000-4000-8000-000000000001"
	const victim = "identity--5e1f0000-0000-4000-8000-0000000000a1"
	g := New(st, Config{Now: func() time.Time { return now }, Self: func(context.Context) (policy.Party, error) {
		return policy.Party{ID: self, Country: "FR"}, nil
	}})
	const coll = "4b1e0000-0000-4000-8000-0000000000c1"
	if err := sq.CreateCollection(ctx, entente.Collection{ID: coll, Alias: "sightings", Title: "sightings",
		DefaultMarking: stix.TLPGreen.MarkingID(), ReadRoles: []entente.Role{entente.RolePartner}, Created: now}); err != nil {
		t.Fatal(err)
	}
	admin := entente.Principal{KeyID: "local", Org: self, Role: entente.RoleAdmin}
	if err := g.PutPartner(ctx, admin, policy.Party{ID: victim, Country: "BE"}); err != nil {
		t.Fatal(err)
	}
	var partners []entente.Principal
	for i, cc := range []string{"DE", "IT"} {
		id := fmt.Sprintf("identity--5e1f0000-0000-4000-8000-0000000000b%d", i)
		if err := g.PutPartner(ctx, admin, policy.Party{ID: id, Country: cc}); err != nil {
			t.Fatal(err)
		}
		if _, err := g.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: id}, Collections: []string{coll}, MaxTLP: stix.TLPGreen,
			Redact: policy.Redaction{SightingVictimsToCountry: true}}); err != nil {
			t.Fatal(err)
		}
		partners = append(partners, entente.Principal{KeyID: "k" + cc, Org: id, Role: entente.RolePartner})
	}
	raw := json.RawMessage(`{"type":"sighting","spec_version":"2.1","id":"sighting--5e1f0000-0000-4000-8000-000000000051","created":"2026-06-01T09:00:00.000Z","modified":"2026-06-01T09:00:00.000Z",` +
		`"sighting_of_ref":"indicator--5e1f0000-0000-4000-8000-000000000061","where_sighted_refs":["` + victim + `"]}`)
	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sq.AddObjects(ctx, coll, []*stix.Object{o}); err != nil {
		t.Fatal(err)
	}
	// country returns the country the sighting released to p names.
	country := func(p entente.Principal) string {
		t.Helper()
		rel, err := g.Release(ctx, p, Query{Channel: "push", Collection: coll})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rel.Page.Entries {
			var l struct {
				Type    string `json:"type"`
				Country string `json:"country"`
			}
			if json.Unmarshal(e.Raw, &l) == nil && l.Type == "location" {
				return l.Country
			}
		}
		t.Fatalf("no location in the page released to %s: %d entries", p.Org, len(rel.Page.Entries))
		return ""
	}
	before := st.reads.Load()
	for round := range 2 {
		for _, p := range partners {
			if cc := country(p); cc != "BE" {
				t.Errorf("round %d: the victim's country released to %s is %q, want BE", round, p.Org, cc)
			}
		}
	}
	// One for the withheld set (who is quarantined), one for the
	// countries.
	if n := st.reads.Load() - before; n != 2 {
		t.Errorf("%d reads of every partner for 4 pages, want 2", n)
	}
	if err := g.PutPartner(ctx, admin, policy.Party{ID: victim, Country: "NL"}); err != nil {
		t.Fatal(err)
	}
	if cc := country(partners[0]); cc != "NL" {
		t.Errorf("after the victim's country changed, %q is released, want NL", cc)
	}
}

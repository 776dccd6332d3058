package egress

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/retraction"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// TestRetractionReadOnceForEveryPartner pushes a retraction naming three
// indicators to two partners: what it names is read and classified once,
// not once per partner, and each partner's copy still names what it may
// receive. A new version of one of them (now RED) is read again at the
// next push, which then no longer names it; so is everything after a
// change of terms.
func TestRetractionReadOnceForEveryPartner(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	const self = "identity--5e1f0000-0000-4000-8000-000000000001"
	g := New(st, Config{Now: clock, Self: func(context.Context) (policy.Party, error) {
		return policy.Party{ID: self, Country: "FR"}, nil
	}})
	const coll = "4b1e0000-0000-4000-8000-0000000000c1"
	if err := st.CreateCollection(ctx, entente.Collection{ID: coll, Alias: "intel", Title: "intel",
		DefaultMarking: stix.TLPGreen.MarkingID(), ReadRoles: []entente.Role{entente.RolePartner}, Created: clock()}); err != nil {
		t.Fatal(err)
	}
	admin := entente.Principal{KeyID: "local", Org: self, Role: entente.RoleAdmin}
	var partners []entente.Principal
	for i, cc := range []string{"DE", "IT"} {
		id := fmt.Sprintf("identity--5e1f0000-0000-4000-8000-0000000000b%d", i)
		if err := g.PutPartner(ctx, admin, policy.Party{ID: id, Country: cc}); err != nil {
			t.Fatal(err)
		}
		if _, err := g.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: id}, Collections: []string{coll}, MaxTLP: stix.TLPGreen}); err != nil {
			t.Fatal(err)
		}
		partners = append(partners, entente.Principal{KeyID: "k" + cc, Org: id, Role: entente.RolePartner})
	}
	add := func(raws ...json.RawMessage) {
		t.Helper()
		objs := make([]*stix.Object, len(raws))
		for i, raw := range raws {
			if objs[i], err = stix.Decode(raw); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.AddObjects(ctx, coll, objs); err != nil {
			t.Fatal(err)
		}
	}
	indicator := func(i int, modified string, marking string) json.RawMessage {
		o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": fmt.Sprintf("indicator--5e1f0000-0000-4000-8000-%012x", i),
			"created": "2026-05-01T00:00:00.000Z", "modified": modified, "pattern": fmt.Sprintf("[ipv4-addr:value = '198.51.100.%d']", i),
			"pattern_type": "stix", "valid_from": "2026-05-01T00:00:00Z"}
		if marking != "" {
			o["object_marking_refs"] = []string{marking}
		}
		raw, _ := json.Marshal(o)
		return raw
	}
	var refs []retraction.Ref
	var ids []string
	for i := range 3 {
		add(indicator(i, "2026-05-01T00:00:00.000Z", ""))
		id := fmt.Sprintf("indicator--5e1f0000-0000-4000-8000-%012x", i)
		refs = append(refs, retraction.Ref{ID: id})
		ids = append(ids, id)
	}
	op, err := retraction.NewForQuarantine(self, "identity--5e1f0000-0000-4000-8000-0000000000ee", refs, "quarantined", clock())
	if err != nil {
		t.Fatal(err)
	}
	add(op)
	r, _ := retraction.Parse(op)
	// named returns what the retraction names in the push to p.
	named := func(p entente.Principal) []string {
		t.Helper()
		rel, err := g.Release(ctx, p, Query{Channel: "push", Collection: coll})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rel.Page.Entries {
			if e.ID == r.ID {
				got, ok := retraction.Parse(e.Raw)
				if !ok {
					t.Fatalf("the retraction released to %s does not parse", p.Org)
				}
				return got.Refs
			}
		}
		t.Fatalf("the retraction was not released to %s", p.Org)
		return nil
	}
	for _, tc := range []struct {
		name        string
		before      func()
		names       []string
		reads, hits int
	}{
		{"first partner", func() {}, ids, 1, 0},
		{"second partner", func() {}, ids, 1, 1},
		{"first partner again", func() {}, ids, 1, 2},
		{"a new version, RED", func() { add(indicator(2, "2026-05-02T00:00:00.000Z", stix.TLPRed.MarkingID())) }, ids[:2], 2, 2},
		{"second partner after it", func() {}, ids[:2], 2, 3},
		{"terms changed", func() {
			if err := g.TermsChanged(ctx, "test"); err != nil {
				t.Fatal(err)
			}
		}, ids[:2], 3, 3},
	} {
		tc.before()
		p := partners[0]
		if tc.name == "second partner" || tc.name == "second partner after it" {
			p = partners[1]
		}
		if got := named(p); !slices.Equal(got, tc.names) {
			t.Errorf("%s: the retraction names %q, want %q", tc.name, got, tc.names)
		}
		g.retracted.mu.Lock()
		reads, hits := g.retracted.reads, g.retracted.hits
		g.retracted.mu.Unlock()
		if reads != tc.reads || hits != tc.hits {
			t.Errorf("%s: %d reads and %d hits of what the retraction names, want %d and %d", tc.name, reads, hits, tc.reads, tc.hits)
		}
	}
}

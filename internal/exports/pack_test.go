package exports

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
)

// TestPackedItems checks that packed items read back as the items put,
// latest version only, across batches, updates within a batch and the
// compaction that follows many updates.
func TestPackedItems(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123000000, time.UTC)
	itemsOf := func(n, round int) []export.Item {
		if n%7 == 0 {
			return nil // an indicator without exportable values
		}
		it := export.Item{Kind: observable.IPv4, Value: fmt.Sprintf("198.51.%d.%d", n/256%256, n%256), IndicatorID: fmt.Sprintf("indicator--%d", n),
			Confidence: n % 100, TLP: stix.TLP(n % 4), Sources: []string{"feed-a", fmt.Sprintf("feed-%d", n%3)}, Collection: "intel",
			Country: []string{"", "DE", "NL"}[n%3], ValidFrom: at, Modified: at.Add(time.Duration(round) * time.Second), Revoked: n%11 == 0}
		if n%5 == 0 {
			it.ValidUntil, it.Warning, it.Labels = at.Add(time.Hour), []string{"resolvers"}, []string{"c2", "botnet"}
		}
		if n%13 == 0 {
			dom := it
			dom.Kind, dom.Value = observable.Domain, fmt.Sprintf("d%d.example.org", n)
			return []export.Item{it, dom}
		}
		return []export.Item{it}
	}
	p := newPackedItems()
	const n = 3000
	want := map[string][]export.Item{}
	for round := range 3 {
		for batch := 0; batch < n; batch += 1000 {
			for i := batch; i < batch+1000; i++ {
				id := fmt.Sprintf("indicator--%d", i)
				its := itemsOf(i, round)
				p.put(id, int64(round), its)
				want[id] = its
				if round == 2 && i%2 == 0 {
					// The same object twice in one batch: the later wins.
					its = itemsOf(i, round+1)
					p.put(id, int64(round+1), its)
					want[id] = its
				}
			}
			p.seal()
		}
	}
	if len(p.entries) != n {
		t.Fatalf("%d entries, want %d", len(p.entries), n)
	}
	if p.dead > len(p.items)/2 {
		t.Errorf("%d of %d items dead after sealing: not compacted", p.dead, len(p.items))
	}
	for i := range p.entries {
		e := &p.entries[i]
		id := p.str(e.id)
		var got []export.Item
		for j := e.first; j < e.first+e.n; j++ {
			got = append(got, p.item(&p.items[j], "intel"))
		}
		if diff := cmp.Diff(want[id], got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("items of %s (-want +got):\n%s", id, diff)
		}
		if !p.has(id, e.version) || p.has(id, e.version+1) {
			t.Fatalf("has(%s) disagrees with version %d", id, e.version)
		}
	}
	if p.has("indicator--unknown", 0) {
		t.Error("an unknown id is indexed")
	}
}

// TestPackedItemsHashCollision checks that two ids whose hashes collide
// keep their own entries.
func TestPackedItemsHashCollision(t *testing.T) {
	p := newPackedItems()
	a := []export.Item{{Kind: observable.IPv4, Value: "192.0.2.1"}}
	b := []export.Item{{Kind: observable.IPv4, Value: "192.0.2.2"}}
	p.put("indicator--a", 1, a)
	p.seal()
	p.byHash[hashID("indicator--b")] = p.byHash[hashID("indicator--a")] // as if they collided
	p.put("indicator--b", 2, b)
	p.seal()
	for id, want := range map[string]string{"indicator--a": "192.0.2.1", "indicator--b": "192.0.2.2"} {
		e, ok := p.lookup(id)
		if !ok || e.n != 1 || p.str(p.items[e.first].value) != want {
			t.Errorf("%s: entry %+v, want value %s", id, e, want)
		}
	}
}

package node_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// relQueryStore is a SQLite store that counts, per collection, the
// queries of relationships and the lookups of objects by id.
type relQueryStore struct {
	*sqlite.Store
	mu               sync.Mutex
	queries, lookups map[string]int
}

func (r *relQueryStore) QueryObjects(ctx context.Context, q entente.ObjectQuery) (entente.Page, error) {
	r.mu.Lock()
	if slices.Equal(q.Types, []string{"relationship"}) {
		r.queries[q.Collection]++
	} else if len(q.IDs) > 0 && len(q.Types) == 0 {
		r.lookups[q.Collection]++
	}
	r.mu.Unlock()
	return r.Store.QueryObjects(ctx, q)
}

func (r *relQueryStore) count(collection string) (queries, lookups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queries[collection], r.lookups[collection]
}

// TestCorrelationReadsOnlyChangedRelationships checks that a correlation
// pass reads the relationships of the collections that changed since the
// last one, not of every collection (each pass of a partner's push of a
// few sightings queried every collection twice), and looks up what its
// sightings sight only where something was added since; and that it
// still takes what was added later: a sighting of a second indicator of
// the threat, which a relationship stored after the first passes links
// to it, counts towards the same alert, with its value.
func TestCorrelationReadsOnlyChangedRelationships(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs := &relQueryStore{Store: st, queries: map[string]int{}, lookups: map[string]int{}}
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	s := node.New(rs, node.Config{Now: clk.now, Dial: dial}, nil)
	t.Cleanup(s.Close)
	id, _, err := s.Init(ctx, "Alerting node", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := node.LocalAdmin(id.ID)
	if stat, err := s.AddObjects(ctx, admin, node.CollectionIntel, alertFixture()); err != nil || stat.FailureCount > 0 {
		t.Fatalf("store threat and identities: %v %+v", err, stat)
	}
	intel, err := st.Collection(ctx, node.CollectionIntel)
	if err != nil {
		t.Fatal(err)
	}
	analyst := sensorOf(t, s, id, entente.RoleAnalyst)
	now := clk.now()
	report(t, s, id, 0, alertSighting(0, now))
	before, looked := rs.count(intel.ID)
	report(t, s, id, 1, alertSighting(1, now))
	if n, l := rs.count(intel.ID); n != before || l != looked {
		t.Errorf("a pass after nothing changed in the intel collection read its relationships %d times and looked objects up there %d times, want 0 and 0", n-before, l-looked)
	}
	// A second indicator of the threat, linked after those passes.
	const second = "indicator--0a1b2c3d-0000-4000-8000-0000000000a2"
	objs := []json.RawMessage{
		json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"` + second + `","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.8']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}`),
		json.RawMessage(`{"type":"relationship","spec_version":"2.1","id":"relationship--0a1b2c3d-0000-4000-8000-0000000000a3","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","relationship_type":"indicates","source_ref":"` + second + `","target_ref":"` + alertMalware + `"}`),
	}
	if stat, err := s.AddObjects(ctx, admin, node.CollectionIntel, objs); err != nil || stat.FailureCount > 0 {
		t.Fatalf("store the second indicator: %v %+v", err, stat)
	}
	report(t, s, id, 2, json.RawMessage(strings.Replace(string(alertSighting(2, now)), alertIndicator, second, 1)))
	if n, _ := rs.count(intel.ID); n == before {
		t.Error("the pass after the intel collection changed did not read its relationships")
	}
	if got := onlyAlert(t, s, analyst); got.Sources != 3 || !slices.Contains(got.Values, "ipv4 198.51.100.8") {
		t.Errorf("after a sighting of the second indicator: %+v, want one alert from 3 sources, with its value", got)
	}
}

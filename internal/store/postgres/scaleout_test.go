package postgres_test

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store/postgres"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestReplicasStartTogether opens several stores on one empty schema at
// once: the migration lock lets exactly one apply the schema.
func TestReplicasStartTogether(t *testing.T) {
	url := schemaURL(t)
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: open: %v", i, err)
		}
		defer stores[i].Close()
	}
	if err := stores[0].CreateCollection(t.Context(), entente.Collection{ID: "c", Title: "C"}); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if _, err := s.Collection(t.Context(), "c"); err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}

// TestReplicasAgree runs two stores on one schema: one writes, both answer
// the same queries identically page by page, and each accepts the other's
// cursors.
func TestReplicasAgree(t *testing.T) {
	url := schemaURL(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	if err := a.CreateCollection(ctx, entente.Collection{ID: "c", Alias: "shared", Title: "Shared"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := a.AddObjects(ctx, "c", storetest.Indicators(t, i*40, 40)); err != nil {
			t.Fatal(err)
		}
	}
	// Writers on both replicas into one collection: their entries
	// interleave in one order that both replicas see.
	var wg sync.WaitGroup
	for r, s := range []*postgres.Store{a, b} {
		wg.Go(func() {
			for i := range 10 {
				if _, err := s.AddObjects(ctx, "shared", storetest.Indicators(t, 1000+r*1000+i*10, 10)); err != nil {
					t.Errorf("replica %d: add: %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	queries := []entente.ObjectQuery{
		{Collection: "c", Limit: 7},
		{Collection: "shared", Limit: 50, MetadataOnly: true},
		{Collection: "c", Limit: 13, Types: []string{"indicator"}, Versions: entente.VersionFilter{All: true}},
	}
	for _, q := range queries {
		var total int
		for page := 0; ; page++ {
			pa, err := a.QueryObjects(ctx, q)
			if err != nil {
				t.Fatalf("replica a, page %d: %v", page, err)
			}
			pb, err := b.QueryObjects(ctx, q)
			if err != nil {
				t.Fatalf("replica b, page %d: %v", page, err)
			}
			if d := cmp.Diff(pa, pb); d != "" {
				t.Fatalf("page %d of %+v differs between replicas (-a +b):\n%s", page, q, d)
			}
			total += len(pa.Entries)
			if !pa.More {
				break
			}
			// Alternate which replica's cursor is followed.
			q.Next = pa.Next
			if page%2 == 1 {
				q.Next = pb.Next
			}
		}
		if total != 400 {
			t.Errorf("query %+v: %d entries in all, want 400", q, total)
		}
	}
}

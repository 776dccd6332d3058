package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"

	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/postgres"
	"github.com/entente-cti/entente/internal/store/storetest"
	"github.com/entente-cti/entente/internal/testutil"
)

// schemaURL returns a connection URL selecting a fresh schema, dropped
// when the test ends.
func schemaURL(tb testing.TB) string { return testutil.PostgresSchemaURL(tb) }

func open(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}

func TestSearchConformance(t *testing.T) {
	storetest.RunSearch(t, func(t *testing.T) store.Store {
		return open(t, schemaURL(t))
	})
}

// TestSearchBackfill checks that the migration that creates the search
// index indexes the objects stored before it: it is undone by hand on a
// store holding objects, and applied again by opening the store.
func TestSearchBackfill(t *testing.T) {
	ctx := t.Context()
	url := schemaURL(t)
	s := open(t, url)
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c1", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}}); err != nil {
		t.Fatal(err)
	}
	objs := append(storetest.Indicators(t, 0, 30), storetest.ATTACKSubset(t)[:50]...)
	if _, err := s.AddObjects(ctx, "c1", objs); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`DROP TABLE search_docs`, `DELETE FROM schema_migrations WHERE name = '1710_search.sql'`} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	conn.Close(ctx)
	s = open(t, url)
	p, err := s.SearchObjects(ctx, store.SearchQuery{Limit: 1000})
	if err != nil || len(p.Hits) != 80 {
		t.Fatalf("browse after the migration ran again: %d hits, %v", len(p.Hits), err)
	}
	name := stix.Title(objs[30].Raw)
	if p, err := s.SearchObjects(ctx, store.SearchQuery{Text: name}); err != nil || len(p.Hits) == 0 || p.Hits[0].ID != objs[30].ID {
		t.Errorf("full-text search for %q after the backfill: %+v, %v", name, p.Hits, err)
	}
}

package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func open(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := open(t, t.TempDir())
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// TestReopen checks that everything acknowledged survives closing and
// reopening the database, and that migrations are applied only once.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir() + "/nested/data"
	s := open(t, dir)
	c := entente.Collection{ID: "c1", Alias: "one", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	objs := storetest.Indicators(t, 0, 250)
	if _, err := s.AddObjects(ctx, "c1", objs); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(ctx, "name", []byte("node")); err != nil {
		t.Fatal(err)
	}
	want, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	defer s.Close()
	got, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "one"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("after reopen (-before +after):\n%s", d)
	}
	if len(got.Entries) != len(objs) {
		t.Errorf("after reopen: %d entries, want %d", len(got.Entries), len(objs))
	}
	if v, err := s.Setting(ctx, "name"); err != nil || string(v) != "node" {
		t.Errorf("setting after reopen: %q, %v", v, err)
	}
	// New additions after reopening still get later date_added values.
	out, err := s.AddObjects(ctx, "c1", storetest.Indicators(t, 1000, 1))
	if err != nil {
		t.Fatal(err)
	}
	if last := got.Entries[len(got.Entries)-1].DateAdded; !out[0].DateAdded.After(last) {
		t.Errorf("date_added after reopen %v, not after %v", out[0].DateAdded, last)
	}
}

// TestPageSize: a new store's objects file has 8 KiB pages; a file made
// with another page size keeps it when the store opens it.
func TestPageSize(t *testing.T) {
	ctx := t.Context()
	pageSizeOf := func(path string) int {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pageSizeOf(filepath.Join(dir, sqlite.FileName)); got != 8192 {
		t.Errorf("new store: page size %d, want 8192", got)
	}
	old := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(old, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = open(t, old)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pageSizeOf(filepath.Join(old, sqlite.FileName)); got != 4096 {
		t.Errorf("existing store: page size %d, want its 4096 kept", got)
	}
}

func TestSearchConformance(t *testing.T) {
	storetest.RunSearch(t, func(t *testing.T) store.Store {
		s := open(t, t.TempDir())
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// TestSearchBackfill checks that the migration that creates the search
// index indexes the objects stored before it: it is undone by hand on a
// store holding objects, and applied again by reopening it.
func TestSearchBackfill(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	c := entente.Collection{ID: "c1", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	objs := storetest.Indicators(t, 0, 30)
	objs = append(objs, storetest.ATTACKSubset(t)[:50]...)
	if _, err := s.AddObjects(ctx, "c1", objs); err != nil {
		t.Fatal(err)
	}
	count := func(s *sqlite.Store) int {
		t.Helper()
		n := 0
		q := store.SearchQuery{Limit: 1000}
		for {
			p, err := s.SearchObjects(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			n += len(p.Hits)
			if p.Next == "" {
				return n
			}
			q.Next = p.Next
		}
	}
	if n := count(s); n != 80 {
		t.Fatalf("before: %d objects browsed, want 80", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`DROP TRIGGER objects_search_latest`, `DROP TRIGGER objects_search_superseded`, `DROP TRIGGER objects_search_delete`,
		`DROP TABLE search_fts`, `DROP TABLE search_docs`, `DROP TABLE search_keys`, `DROP TABLE search_state`,
		`DELETE FROM schema_migrations WHERE name IN ('1710_search.sql', '1720_search_deferred.sql')`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	s = open(t, dir)
	defer s.Close()
	if n := count(s); n != 80 {
		t.Errorf("after the migration ran again: %d objects browsed, want 80", n)
	}
	name := stix.Title(objs[30].Raw)
	p, err := s.SearchObjects(ctx, store.SearchQuery{Text: name})
	if err != nil || len(p.Hits) == 0 || p.Hits[0].ID != objs[30].ID {
		t.Errorf("full-text search for %q after the backfill: %+v, %v", name, p.Hits, err)
	}
}

// TestSearchIndexedWhenIdle checks that the writer indexes new objects for
// search when no addition waits, without a search asking for it, and that
// a search right after an addition sees it (it indexes what is left).
func TestSearchIndexedWhenIdle(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	c := entente.Collection{ID: "c1", Title: "One", ReadRoles: []entente.Role{entente.RoleAnalyst}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lag := func() (indexed, stored int64) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT (SELECT seq FROM search_state), (SELECT coalesce(max(seq), 0) FROM objects)`).Scan(&indexed, &stored); err != nil {
			t.Fatal(err)
		}
		return indexed, stored
	}
	objs := storetest.ATTACKSubset(t)[:40]
	if _, err := s.AddObjects(ctx, "c1", objs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		indexed, stored := lag()
		if indexed == stored && stored > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after an addition the search index reflects objects up to %d of %d", indexed, stored)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Added and searched at once: the search indexes what is left.
	more := storetest.Indicators(t, 0, 5)
	if _, err := s.AddObjects(ctx, "c1", more); err != nil {
		t.Fatal(err)
	}
	name := stix.Title(more[4].Raw)
	p, err := s.SearchObjects(ctx, store.SearchQuery{Text: name})
	if err != nil || len(p.Hits) == 0 || p.Hits[0].ID != more[4].ID {
		t.Errorf("search for %q right after its addition: %+v, %v", name, p.Hits, err)
	}
}

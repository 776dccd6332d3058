package sqlite

import (
	"database/sql"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestConformanceHashCollisions runs the conformance suite with every id
// hashing to one of two values, so that every look-up, query and delete by
// id meets other ids with the same hash and must tell them apart.
func TestConformanceHashCollisions(t *testing.T) {
	hashID = func(id string) int64 { return int64(len(id) % 2) }
	t.Cleanup(func() { hashID = fnv1a })
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// TestMigrateIDHash takes a store back to the schema before migration
// 0400 (the id text index, no id_hash column), reopens it, and checks that
// the migration hashes the stored ids: objects are found by id, and
// adding them again finds them stored.
func TestMigrateIDHash(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	objs := storetest.Indicators(t, 0, 300)
	if _, err := s.AddObjects(ctx, "c", objs); err != nil {
		t.Fatal(err)
	}
	s = reopenAtOldSchema(t, s, dir,
		`DROP INDEX objects_id_hash`,
		`ALTER TABLE objects DROP COLUMN id_hash`,
		`CREATE UNIQUE INDEX objects_id_version ON objects (collection, id, version)`,
		`DELETE FROM schema_migrations WHERE name LIKE '0400%'`,
	)
	for _, o := range []int{0, 150, 299} {
		id := objs[o].ID
		page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c", IDs: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 1 || page.Entries[0].ID != id {
			t.Errorf("query by id %s after the migration: %+v", id, page.Entries)
		}
	}
	out, err := s.AddObjects(ctx, "c", objs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if !o.Duplicate {
			t.Fatalf("object %d (%s) added again after the migration: not found stored", i, o.ID)
		}
	}
	if n, err := s.DeleteObjects(ctx, "c", objs[7].ID, entente.VersionFilter{All: true}, nil); err != nil || n != 1 {
		t.Errorf("delete after the migration: %d, %v", n, err)
	}
}

// reopenAtOldSchema closes s, runs stmts on its file (taking it back to
// an older schema, and forgetting the migrations that made the newer
// one) and opens it again, which migrates it; the store is closed at the
// test's end.
func reopenAtOldSchema(t *testing.T, s *Store, dir string, stmts ...string) *Store {
	t.Helper()
	ctx := t.Context()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+dir+"/"+FileName)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

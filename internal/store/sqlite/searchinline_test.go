package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/store/storetest"
)

// TestSmallAdditionIndexedInItsCommit checks that a small addition is
// indexed for search in its own commit once the index holds every object
// before it, rather than in a second commit (a second fsync) when the
// writer falls idle; and that a large addition is still indexed later,
// by the idle writer.
func TestSmallAdditionIndexedInItsCommit(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c",
		ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName)+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	indexed := func() (bool, int64) {
		t.Helper()
		var from, upto int64
		if err := db.QueryRowContext(ctx, `SELECT (SELECT seq FROM search_state WHERE id = 1), (SELECT coalesce(max(seq), 0) FROM objects)`).Scan(&from, &upto); err != nil {
			t.Fatal(err)
		}
		return from == upto, upto
	}
	// A large addition: indexed when the writer falls idle.
	if _, err := s.AddObjects(ctx, "c", storetest.Indicators(t, 0, 200)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := indexed(); ok {
		t.Fatalf("200 objects indexed in their own commit, want them indexed by the idle writer")
	}
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := indexed(); !ok; ok, _ = indexed() {
		if time.Now().After(deadline) {
			t.Fatalf("200 objects not indexed by the idle writer within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Small additions: indexed in their commit, visible as soon as the
	// call returns.
	for i := range 3 {
		if _, err := s.AddObjects(ctx, "c", storetest.Indicators(t, 1000+10*i, 3)); err != nil {
			t.Fatal(err)
		}
		if ok, upto := indexed(); !ok || upto != int64(203+3*i) {
			t.Fatalf("addition %d of 3 objects: indexed with its commit %v (%d objects), want true", i, ok, upto)
		}
	}
}

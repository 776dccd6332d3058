package sqlite_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente"
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

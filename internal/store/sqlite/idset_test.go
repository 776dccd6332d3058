package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/storetest"
)

func newIDSetStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func duplicates(t *testing.T, s *Store, objs []*stix.Object) int {
	t.Helper()
	out, err := s.AddObjects(t.Context(), "c", objs)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range out {
		if o.Duplicate {
			n++
		}
	}
	return n
}

// TestIDSetLargeAdditions checks additions large enough for the writer to
// keep the set of a collection's id hashes: an object already stored is
// still found (a duplicate, or an older version of a new one), after a
// deletion too, and after another connection added objects the set never
// saw. It runs with real hashes and with every id colliding.
func TestIDSetLargeAdditions(t *testing.T) {
	for _, collide := range []bool{false, true} {
		name := "fnv1a"
		if collide {
			name = "colliding"
		}
		t.Run(name, func(t *testing.T) {
			if collide {
				hashID = func(id string) int64 { return int64(len(id) % 2) }
				t.Cleanup(func() { hashID = fnv1a })
			}
			ctx := t.Context()
			dir := t.TempDir()
			s := newIDSetStore(t, dir)
			if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c", ReadRoles: []entente.Role{entente.RoleAnalyst}, WriteRoles: []entente.Role{entente.RoleAnalyst}, Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			n := idSetFrom + 500
			first := storetest.Indicators(t, 0, n)
			if d := duplicates(t, s, first); d != 0 {
				t.Fatalf("first addition: %d duplicates", d)
			}
			if !collide && s.ids.byColl == nil {
				t.Fatal("no id set kept after a large addition")
			}
			if d := duplicates(t, s, first); d != n {
				t.Fatalf("same objects again: %d duplicates, want %d", d, n)
			}
			// New versions of half of them and as many new objects.
			var mixed []*stix.Object
			later := first[0].Modified.Add(time.Hour)
			for i := range n / 2 {
				mixed = append(mixed, storetest.Object(t, "indicator", first[i].ID, later))
			}
			mixed = append(mixed, storetest.Indicators(t, n, n/2)...)
			if d := duplicates(t, s, mixed); d != 0 {
				t.Fatalf("new versions: %d duplicates", d)
			}
			page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c", IDs: []string{first[0].ID}, Versions: entente.VersionFilter{All: true}})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) != 2 {
				t.Fatalf("%s has %d versions, want 2", first[0].ID, len(page.Entries))
			}
			latest, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c", IDs: []string{first[0].ID}})
			if err != nil {
				t.Fatal(err)
			}
			if len(latest.Entries) != 1 || !latest.Entries[0].Version.Equal(later) {
				t.Fatalf("latest version of %s: %+v", first[0].ID, latest.Entries)
			}
			// A deleted object comes back as new.
			if _, err := s.DeleteObjects(ctx, "c", first[n-1].ID, entente.VersionFilter{All: true}, nil); err != nil {
				t.Fatal(err)
			}
			if d := duplicates(t, s, first[n/2:]); d != n/2-1 {
				t.Fatalf("after a deletion: %d duplicates, want %d", d, n/2-1)
			}
			// Another connection adds objects the writer's set never saw.
			other := newIDSetStore(t, dir)
			extra := storetest.Indicators(t, 3*n, 10)
			if _, err := other.AddObjects(ctx, "c", extra); err != nil {
				t.Fatal(err)
			}
			batch := append(storetest.Indicators(t, 4*n, idSetFrom), extra...)
			if d := duplicates(t, s, batch); d != len(extra) {
				t.Fatalf("after another connection wrote: %d duplicates, want %d", d, len(extra))
			}
		})
	}
}

// TestIDSetSmallCollection checks the set the writer keeps for a small
// collection receiving small additions (TAXII POSTs): it is built on the
// first, and a stored object is still found (a duplicate, an older
// version of a new one), after another connection wrote too, and an
// addition holding a nil object is refused as without the set.
func TestIDSetSmallCollection(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := newIDSetStore(t, dir)
	if err := s.CreateCollection(ctx, entente.Collection{ID: "c", Title: "c", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	first := storetest.Indicators(t, 0, 100)
	if d := duplicates(t, s, first); d != 0 {
		t.Fatalf("first addition: %d duplicates", d)
	}
	var coll int64
	if err := s.read.QueryRowContext(ctx, `SELECT seq FROM collections WHERE id = 'c'`).Scan(&coll); err != nil {
		t.Fatal(err)
	}
	if set := s.ids.byColl[coll]; len(set) != 100 || s.ids.boundOf(coll) != idSetSmallMax {
		t.Fatalf("after a small addition to an empty collection: a set of %d hashes, bound %d; want 100, %d", len(set), s.ids.boundOf(coll), idSetSmallMax)
	}
	if d := duplicates(t, s, first[:50]); d != 50 {
		t.Fatalf("same objects again: %d duplicates, want 50", d)
	}
	newer := storetest.Object(t, "indicator", first[0].ID, first[0].Modified.Add(time.Hour))
	if _, err := s.AddObjects(ctx, "c", []*stix.Object{newer, nil}); entente.ErrorCode(err) != entente.EINVALID {
		t.Fatalf("an addition holding a nil object: %v, want EINVALID", err)
	}
	if d := duplicates(t, s, []*stix.Object{newer}); d != 0 {
		t.Fatalf("a new version: %d duplicates", d)
	}
	latest, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "c", IDs: []string{first[0].ID}})
	if err != nil || len(latest.Entries) != 1 || !latest.Entries[0].Version.Equal(newer.Modified) {
		t.Fatalf("latest version of %s: %+v, %v", first[0].ID, latest.Entries, err)
	}
	other := newIDSetStore(t, dir)
	extra := storetest.Indicators(t, 1000, 10)
	if _, err := other.AddObjects(ctx, "c", extra); err != nil {
		t.Fatal(err)
	}
	if d := duplicates(t, s, append(storetest.Indicators(t, 2000, 20), extra...)); d != len(extra) {
		t.Fatalf("after another connection wrote: %d duplicates, want %d", d, len(extra))
	}
}

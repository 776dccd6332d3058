package storetest

import (
	"context"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// testLatestAdded checks that LatestAdded follows every addition, keeps
// its value across a duplicate addition, is never before an entry a query
// with added_after would return (after a deletion too), and answers
// ENOTFOUND for a collection that does not exist.
func testLatestAdded(t *testing.T, s store.Store) {
	ctx := context.Background()
	newCollection(t, s, coll)
	if got, err := s.LatestAdded(ctx, coll); err != nil || !got.IsZero() {
		t.Fatalf("empty collection: LatestAdded = %v, %v; want the zero time", got, err)
	}
	objs := Indicators(t, 0, 3)
	first := add(t, s, coll, objs...)
	if got, err := s.LatestAdded(ctx, coll); err != nil || !got.Equal(first[len(first)-1].DateAdded) {
		t.Fatalf("after one addition: LatestAdded = %v, %v; want %v", got, err, first[len(first)-1].DateAdded)
	}
	second := add(t, s, coll, Indicators(t, 3, 2)...)
	want := second[len(second)-1].DateAdded
	if got, err := s.LatestAdded(ctx, coll); err != nil || !got.Equal(want) {
		t.Fatalf("after a second addition: LatestAdded = %v, %v; want %v", got, err, want)
	}
	if _, err := s.AddObjects(ctx, coll, objs); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LatestAdded(ctx, coll); err != nil || got.Before(want) {
		t.Fatalf("after adding duplicates: LatestAdded = %v, %v; went back before %v", got, err, want)
	}
	// What a periodic push relies on to skip its page query: nothing is
	// added after LatestAdded, whatever the version filter, and a
	// deletion does not make it hide what is left.
	noneAfterLatest := func(step string) {
		t.Helper()
		latest, err := s.LatestAdded(ctx, coll)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []entente.VersionFilter{{}, {All: true}} {
			page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: coll, AddedAfter: latest, Versions: f, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) > 0 {
				t.Errorf("%s: %d entries added after LatestAdded %v (versions %+v), first at %v", step, len(page.Entries), latest, f, page.Entries[0].DateAdded)
			}
		}
	}
	noneAfterLatest("after additions")
	if _, err := s.DeleteObjects(ctx, coll, second[len(second)-1].ID, entente.VersionFilter{All: true}, nil); err != nil {
		t.Fatal(err)
	}
	noneAfterLatest("after a deletion")
	if _, err := s.LatestAdded(ctx, "no-such-collection"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Fatalf("unknown collection: err = %v, want ENOTFOUND", err)
	}
}

package storetest

import (
	"context"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
)

// testLatestAdded checks that LatestAdded follows every addition, keeps
// its value across a duplicate addition, and answers ENOTFOUND for a
// collection that does not exist.
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
	if _, err := s.LatestAdded(ctx, "no-such-collection"); entente.ErrorCode(err) != entente.ENOTFOUND {
		t.Fatalf("unknown collection: err = %v, want ENOTFOUND", err)
	}
}

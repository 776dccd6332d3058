package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/entente-cti/entente"
)

// TestPageStatementsKept: reading objects one by one by id, each with its
// own id, prepares one page statement, kept; reads of more shapes than
// the cache keeps are still answered right; each read finds its object.
func TestPageStatementsKept(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateCollection(ctx, entente.Collection{ID: "intel", Title: "Intel", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	if err := addIndicators(ctx, s, "intel", 0, n); err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012x", i) }
	for i := range 50 {
		page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "intel", IDs: []string{id(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 1 || page.Entries[0].ID != id(i) || page.More {
			t.Fatalf("object %d: %d entries, more %v", i, len(page.Entries), page.More)
		}
	}
	if got := len(s.r.pages.m); got != 1 {
		t.Errorf("%d page statements kept after reading 50 objects by id, want 1", got)
	}
	// Each limit is a shape of its own (the limit is written in): past
	// the cache's bound, statements are prepared for one use.
	for limit := 1; limit <= maxCachedStmts+20; limit++ {
		page, err := s.QueryObjects(ctx, entente.ObjectQuery{Collection: "intel", Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != limit || !page.More {
			t.Fatalf("limit %d: %d entries, more %v", limit, len(page.Entries), page.More)
		}
	}
	if got := len(s.r.pages.m); got != maxCachedStmts {
		t.Errorf("%d page statements kept, want the bound %d", got, maxCachedStmts)
	}
}

package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
	"github.com/google/go-cmp/cmp"
)

// RunFeeds runs the conformance tests of store.FeedStore against stores
// made by open, which must implement it.
func RunFeeds(t *testing.T, open Opener) {
	s, ok := open(t).(store.FeedStore)
	if !ok {
		t.Fatal("the store does not implement store.FeedStore")
	}
	c := ctx(t)
	created := base.UTC()
	a := store.Feed{ID: "8e2e2d2b-17d4-4cbf-938f-000000000001", Name: "threatfox", URL: "https://threatfox.example/export/csv/",
		Format: "threatfox", Interval: time.Hour, TLP: "green", Confidence: 70, ValidFor: 48 * time.Hour, Collection: "intel", Created: created}
	b := store.Feed{ID: "8e2e2d2b-17d4-4cbf-938f-000000000002", Name: "local", URL: "http://127.0.0.1/list.txt", Format: "plain",
		Interval: 15 * time.Minute, Collection: "intel", Created: created.Add(time.Second)}
	for _, f := range []store.Feed{a, b} {
		if err := s.PutFeed(c, f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Feeds(c)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]store.Feed{a, b}, got); d != "" {
		t.Fatalf("Feeds (-want +got):\n%s", d)
	}

	// Poll state is recorded, and kept when the configuration changes.
	stats := json.RawMessage(`{"objects":12}`)
	st := store.FeedState{ETag: `"abc"`, LastModified: "Mon, 23 Nov 2026 10:00:00 GMT", LastRun: created.Add(time.Hour), LastError: "", Stats: stats}
	if err := s.UpdateFeedState(c, a.ID, st); err != nil {
		t.Fatal(err)
	}
	a2 := a
	a2.Interval = 2 * time.Hour
	if err := s.PutFeed(c, a2); err != nil {
		t.Fatal(err)
	}
	one, err := s.Feed(c, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := store.ApplyFeedState(a2, st)
	if d := cmp.Diff(want, one, cmp.Comparer(func(x, y json.RawMessage) bool { return jsonEqual(x, y) })); d != "" {
		t.Fatalf("Feed after state and update (-want +got):\n%s", d)
	}
	if err := s.UpdateFeedState(c, a.ID, store.FeedState{LastRun: created.Add(2 * time.Hour), LastError: "GET: 503", ETag: `"abc"`}); err != nil {
		t.Fatal(err)
	}
	if one, _ = s.Feed(c, a.ID); one.LastError != "GET: 503" || !jsonEqual(one.Stats, stats) {
		t.Fatalf("a failed poll must record its error and keep the stats: %+v", one)
	}

	if err := s.DeleteFeed(c, b.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteFeed(c, b.ID), entente.ENOTFOUND, "delete twice")
	_, err = s.Feed(c, b.ID)
	wantCode(t, err, entente.ENOTFOUND, "deleted feed")
	wantCode(t, s.UpdateFeedState(c, b.ID, store.FeedState{}), entente.ENOTFOUND, "state of a deleted feed")
	wantCode(t, s.PutFeed(c, store.Feed{}), entente.EINVALID, "feed without id")
	if got, _ := s.Feeds(c); len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("feeds after delete: %+v", got)
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return len(a) == 0 && len(b) == 0
	}
	return cmp.Equal(x, y)
}

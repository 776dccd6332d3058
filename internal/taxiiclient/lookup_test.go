package taxiiclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/taxiiclient"
)

// TestLookup looks up 250 ids, of which the server holds every third:
// in chunks (the URL names at most 100 ids), following next within a
// chunk, and taking a chunk the server answers 404 as none held.
func TestLookup(t *testing.T) {
	held := map[string]bool{}
	var ids []string
	for i := range 250 {
		id := fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", i)
		ids = append(ids, id)
		if i%3 == 0 && i < 200 {
			held[id] = true
		}
	}
	var requests, maxIDs int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		asked := strings.Split(r.URL.Query().Get("match[id]"), ",")
		maxIDs = max(maxIDs, len(asked))
		var found []string
		for _, id := range asked {
			if held[id] {
				found = append(found, id)
			}
		}
		if len(found) == 0 {
			w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"title":"not found"}`))
			return
		}
		// Pages of 10: the first page, or the one next names.
		start := 0
		fmt.Sscanf(r.URL.Query().Get("next"), "%d", &start)
		end := min(start+10, len(found))
		env := map[string]any{"more": end < len(found)}
		if end < len(found) {
			env["next"] = fmt.Sprint(end)
		}
		var objs []json.RawMessage
		for _, id := range found[start:end] {
			objs = append(objs, json.RawMessage(`{"type":"indicator","id":"`+id+`"}`))
		}
		env["objects"] = objs
		w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
		json.NewEncoder(w).Encode(env)
	}))
	defer srv.Close()
	c := &taxiiclient.Client{APIRoot: srv.URL + "/api1/"}
	got, err := c.Lookup(context.Background(), "c1", ids)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for id := range got {
		gotIDs = append(gotIDs, id)
	}
	slices.Sort(gotIDs)
	var want []string
	for id := range held {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(gotIDs, want) {
		t.Fatalf("found %d ids, want %d", len(gotIDs), len(want))
	}
	if maxIDs > 100 || requests < 3 {
		t.Errorf("%d requests naming at most %d ids", requests, maxIDs)
	}
}

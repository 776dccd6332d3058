package sensorclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/sensorclient"
)

// TestClient downloads a snapshot (conditionally too), posts sightings
// and is refused with a wrong key, against a server that answers as a
// node's sensor endpoints do.
func TestClient(t *testing.T) {
	objs := func(yield func(json.RawMessage, error) bool) {
		for _, p := range []string{"[ipv4-addr:value = '203.0.113.9']", "[domain-name:value = 'bad.example.net']"} {
			raw, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-" + map[bool]string{true: "000000000001", false: "000000000002"}[strings.Contains(p, "ipv4")],
				"created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z", "pattern": p, "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"})
			if !yield(raw, nil) {
				return
			}
		}
	}
	s, st, err := match.BuildFromObjects(objs, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || st.Indicators != 2 {
		t.Fatalf("build: %v %+v", err, st)
	}
	data, etag, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var posted []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case match.SnapshotPath:
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Content-Type", match.SnapshotMediaType)
			w.Write(data)
		case match.SightingsPath:
			posted, _ = io.ReadAll(r.Body)
			if strings.Contains(string(posted), "refuse") {
				w.Write([]byte(`{"id":"s","status":"complete","total_count":2,"success_count":1,"failure_count":1,"failures":[{"id":"indicator--x","message":"x_entente_blind_ref must hold a STIX id"}]}`))
			}
		}
	}))
	defer srv.Close()
	c := &sensorclient.Client{Server: srv.URL, Token: "k"}
	s2, etag2, err := c.FetchSnapshot(context.Background(), "")
	if err != nil || etag2 != etag || s2.Len() != s.Len() {
		t.Fatalf("fetch: %v %q %v", err, etag2, s2)
	}
	s3, etag3, err := c.FetchSnapshot(context.Background(), etag)
	if err != nil || s3 != nil || etag3 != etag {
		t.Errorf("conditional fetch: %v %v %q", err, s3, etag3)
	}
	if err := c.PostSightings(context.Background(), []byte(`{"type":"bundle"}`)); err != nil || string(posted) != `{"type":"bundle"}` {
		t.Errorf("post: %v %q", err, posted)
	}
	// Objects the node refused are an error naming the first and why.
	err = c.PostSightings(context.Background(), []byte(`{"type":"bundle","refuse":true}`))
	var refused *sensorclient.RefusedError
	if !errors.As(err, &refused) || refused.Refused != 1 || refused.Stored != 1 || !strings.Contains(err.Error(), "indicator--x: x_entente_blind_ref must hold a STIX id") {
		t.Errorf("post with a refused object: %v", err)
	}
	bad := &sensorclient.Client{Server: srv.URL, Token: "wrong"}
	if _, _, err := bad.FetchSnapshot(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v", err)
	}
}

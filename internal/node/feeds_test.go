package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/store"
)

func TestPollFeed(t *testing.T) {
	s, _ := initNode(t)
	ctx := context.Background()
	var gets, notModified atomic.Int32
	body := "# test list\n198.51.100.7\nbad.example.net\nnot a value at all\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/list.txt":
			gets.Add(1)
			if r.Header.Get("If-None-Match") == `"v1"` && r.Header.Get("If-Modified-Since") != "" {
				notModified.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Last-Modified", "Mon, 23 Nov 2026 10:00:00 GMT")
			w.Write([]byte(body))
		case "/html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<!DOCTYPE html><html><body>Login</body></html>"))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	f, err := s.AddFeed(ctx, admin, store.Feed{Name: "test-list", URL: srv.URL + "/list.txt", Format: "plain", Interval: time.Hour, Confidence: 60})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.PollFeed(ctx, admin, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stats node.FeedStats
	json.Unmarshal(got.Stats, &stats)
	if got.ETag != `"v1"` || got.LastError != "" || stats.Indicators != 2 || stats.Stored == 0 || stats.Rejected != 1 || !strings.Contains(stats.Rejects[0].Where, "3") && !strings.Contains(stats.Rejects[0].Where, "4") {
		t.Fatalf("first poll: %+v, stats %+v", got, stats)
	}
	got, err = s.PollFeed(ctx, admin, f.ID)
	json.Unmarshal(got.Stats, &stats)
	if err != nil || notModified.Load() != 1 || !stats.NotChanged {
		t.Fatalf("second poll must be conditional and answered 304: %v, %d 304s, %+v", err, notModified.Load(), stats)
	}
	if body, _ := exportBody(t, s, admin, node.ExportRequest{Format: "plain"}); !strings.Contains(body, "198.51.100.7") || !strings.Contains(body, "bad.example.net") {
		t.Fatalf("polled values not exported:\n%s", body)
	}

	for _, tc := range []struct{ path, want string }{
		{"/html", "HTML page"},
		{"/missing", "404"},
		{"/slow", "deadline"},
	} {
		bad, err := s.AddFeed(ctx, admin, store.Feed{Name: "bad" + tc.path, URL: srv.URL + tc.path, Format: "plain", Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = s.PollFeed(pctx, admin, bad.ID)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: error %v, want %q", tc.path, err, tc.want)
		}
		feeds, _ := s.Feeds(ctx, admin)
		for _, f := range feeds {
			if f.ID == bad.ID && !strings.Contains(f.LastError, tc.want) {
				t.Fatalf("%s: recorded error %q", tc.path, f.LastError)
			}
		}
	}

	_, analyst := key(t, s, entente.RoleAnalyst)
	_, err = s.Feeds(ctx, analyst)
	wantCode(t, err, entente.EFORBIDDEN)
	for _, bad := range []store.Feed{
		{Name: "x", URL: "ftp://example.org/x"},
		{Name: "x", URL: srv.URL, Format: "pdf"},
		{Name: "x", URL: srv.URL, Interval: time.Second},
		{Name: "x", URL: srv.URL, Collection: "no-such"},
	} {
		if _, err := s.AddFeed(ctx, admin, bad); err == nil {
			t.Errorf("AddFeed(%+v) accepted", bad)
		}
	}
	if err := s.RemoveFeed(ctx, admin, f.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.RemoveFeed(ctx, admin, f.ID), entente.ENOTFOUND)
}

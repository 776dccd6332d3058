package feedfetch_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/feedfetch"
)

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/list.txt":
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Last-Modified", "Sun, 06 Dec 2026 10:00:00 GMT")
			w.Write([]byte("198.51.100.7\n"))
		case "/page":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("<!DOCTYPE html><html>maintenance</html>"))
		case "/big":
			w.Write([]byte(strings.Repeat("a", 2000)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	got, err := feedfetch.Fetch(ctx, srv.URL+"/list.txt", "", "", 1000)
	if err != nil || string(got.Body) != "198.51.100.7\n" || got.ETag != `"v1"` || got.LastModified == "" {
		t.Fatalf("fetch: %+v %v", got, err)
	}
	if got, err := feedfetch.Fetch(ctx, srv.URL+"/list.txt", `"v1"`, got.LastModified, 1000); err != nil || !got.NotModified || got.Body != nil {
		t.Errorf("conditional fetch: %+v %v", got, err)
	}
	for path, want := range map[string]string{"/page": "HTML page", "/big": "larger than 1000 bytes", "/nope": "404"} {
		if _, err := feedfetch.Fetch(ctx, srv.URL+path, "", "", 1000); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", path, err, want)
		}
	}
}

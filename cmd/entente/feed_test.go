package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFeedCommand configures, polls, lists and removes a feed offline.
func TestFeedCommand(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/html" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>sign in</html>"))
			return
		}
		w.Write([]byte("198.51.100.7\nbad.example.org\n"))
	}))
	defer srv.Close()
	code, out, errs := run(t, nil, nil, "feed", "add", "--data", dir, "--name", "local", "--url", srv.URL+"/l.txt", "--format", "plain", "--interval", "30m")
	if code != 0 || !strings.Contains(out, "local") {
		t.Fatalf("feed add: %d %s %s", code, out, errs)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	code, out, errs = run(t, nil, nil, "feed", "poll", "--data", dir, id)
	if code != 0 || !strings.Contains(out, "local") {
		t.Fatalf("feed poll: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, nil, nil, "export", "--data", dir, "--format", "hosts"); code != 0 || !strings.Contains(out, "bad.example.org") {
		t.Fatalf("polled feed not exported: %s", out)
	}
	_, out, _ = run(t, nil, nil, "feed", "add", "--data", dir, "--name", "portal", "--url", srv.URL+"/html")
	bad := strings.Fields(strings.Split(out, "\n")[1])[0]
	if code, _, errs := run(t, nil, nil, "feed", "poll", "--data", dir, bad); code != 1 || !strings.Contains(errs, "HTML") {
		t.Fatalf("an HTML answer must fail the poll: %d %s", code, errs)
	}
	if code, out, _ := run(t, nil, nil, "feed", "list", "--data", dir); code != 0 || !strings.Contains(out, "HTML page") || strings.Count(out, "\n") != 3 {
		t.Fatalf("feed list: %q", out)
	}
	if code, _, errs := run(t, nil, nil, "feed", "remove", "--data", dir, id); code != 0 {
		t.Fatalf("feed remove: %s", errs)
	}
	if code, _, _ := run(t, nil, nil, "feed", "remove", "--data", dir, id); code != 1 {
		t.Fatalf("removing twice must fail")
	}
	if code, _, _ := run(t, nil, nil, "feed", "frob"); code != 2 {
		t.Fatalf("unknown subcommand must be a usage error")
	}
}

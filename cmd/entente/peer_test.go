package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPeerAddChecksOffline: offline (--data), the command itself checks
// the peer before recording it; --no-check records it as it is.
func TestPeerAddChecksOffline(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>Sign in</html>"))
	}))
	defer html.Close()
	dir := t.TempDir()
	initNode(t, dir)
	args := []string{"peer", "add", "--data", dir, "--name", "portal", "--api-root", html.URL + "/taxii2/api1/", "--collection", "intel", "--into", "intel", "--peer-token", "t"}
	code, _, errs := run(t, nil, nil, args...)
	if code != 1 || !strings.Contains(errs, "does not answer as a TAXII 2.1 server") || !strings.Contains(errs, "--no-check") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if code, out, _ := run(t, nil, nil, "peer", "list", "--data", dir); code != 0 || strings.Contains(out, "portal") {
		t.Fatalf("a peer that failed its check was recorded:\n%s", out)
	}
	if code, _, errs := run(t, nil, nil, append(args, "--no-check")...); code != 0 {
		t.Fatalf("--no-check: exit %d: %s", code, errs)
	}
	if code, out, _ := run(t, nil, nil, "peer", "list", "--data", dir); code != 0 || !strings.Contains(out, "portal") {
		t.Fatalf("--no-check did not record the peer:\n%s", out)
	}
}

// TestPeerAddCheckIsAdminOnly: over the API, only an admin's request
// makes the node call the address (no one else may point the node at an
// address of their choosing); ?check=false skips the check and
// ?check=garbage is refused.
func TestPeerAddCheckIsAdminOnly(t *testing.T) {
	var calls atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.NotFound(w, r)
	}))
	defer target.Close()
	n := startFedNode(t, "Node", "FR")
	analyst := strings.TrimSpace(n.cli(t, "key", "create", "--role", "analyst"))
	body, _ := json.Marshal(map[string]string{"name": "x", "api_root": target.URL + "/taxii2/api1/", "collection": "c", "local_collection": "intel", "token": "t"})
	post := func(key, query string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", n.url+"/api/v1/peers"+query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(analyst, ""); code != http.StatusForbidden || calls.Load() != 0 {
		t.Fatalf("analyst: %d, %d calls to the address", code, calls.Load())
	}
	if code := post(n.admin, "?check=maybe"); code != http.StatusBadRequest || calls.Load() != 0 {
		t.Fatalf("?check=maybe: %d, %d calls", code, calls.Load())
	}
	if code := post(n.admin, ""); code != http.StatusBadRequest || calls.Load() == 0 {
		t.Fatalf("admin, checked: %d, %d calls", code, calls.Load())
	}
	before := calls.Load()
	if code := post(n.admin, "?check=false"); code != http.StatusCreated || calls.Load() != before {
		t.Fatalf("?check=false: %d, %d more calls", code, calls.Load()-before)
	}
}

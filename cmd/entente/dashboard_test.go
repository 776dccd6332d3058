package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// TestServeDashboardUsesTheAPI: serve gives the dashboard the node API,
// so a signed-in session reaches /api/v1 under /ui/api/v1/ as its key.
func TestServeDashboardUsesTheAPI(t *testing.T) {
	dir := t.TempDir()
	key := initNode(t, dir)
	base := startNode(t, "--data", dir)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Post(base+"/ui/api/login", "application/json", strings.NewReader(`{"key":"`+key+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	resp, err = c.Get(base + "/ui/api/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who struct{ Role string }
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || resp.StatusCode != http.StatusOK || who.Role != "admin" {
		t.Fatalf("GET /ui/api/v1/whoami: %s %+v %v, want the admin key's", resp.Status, who, err)
	}
}

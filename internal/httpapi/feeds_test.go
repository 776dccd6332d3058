package httpapi_test

import (
	"encoding/json"
	"github.com/entente-cti/entente/internal/node"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
)

func TestFeedsAPI(t *testing.T) {
	e := newEnv(t)
	list := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"1"`)
		w.Write([]byte("198.51.100.7\n"))
	}))
	defer list.Close()
	body, _ := json.Marshal(httpapi.FeedRequest{Name: "local", URL: list.URL + "/l.txt", Format: "plain", Interval: "2h", Collection: "shared"})
	hdr := map[string]string{"Content-Type": "application/json"}
	if r := e.do(req{method: "POST", path: "/api/v1/feeds", key: e.keys[entente.RoleAnalyst], body: body, header: hdr}); r.status != 403 {
		t.Fatalf("analyst adding a feed: %d", r.status)
	}
	r := e.do(req{method: "POST", path: "/api/v1/feeds", key: e.keys[entente.RoleAdmin], body: body, header: hdr})
	var f node.Feed
	r.json(t, &f)
	if r.status != 201 || f.ID == "" || f.Interval.Hours() != 2 {
		t.Fatalf("add feed: %d %s", r.status, r.body)
	}
	r = e.do(req{method: "POST", path: "/api/v1/feeds/" + f.ID + "/poll", key: e.keys[entente.RoleAdmin]})
	r.json(t, &f)
	if r.status != 200 || f.LastError != "" || f.ETag != `"1"` {
		t.Fatalf("poll: %d %s", r.status, r.body)
	}
	var out struct{ Feeds []node.Feed }
	r = e.do(req{path: "/api/v1/feeds", key: e.keys[entente.RoleAdmin]})
	r.json(t, &out)
	if len(out.Feeds) != 1 || out.Feeds[0].LastRun.IsZero() {
		t.Fatalf("list: %s", r.body)
	}
	if r := e.do(req{method: "DELETE", path: "/api/v1/feeds/" + f.ID, key: e.keys[entente.RoleAdmin]}); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := e.do(req{method: "POST", path: "/api/v1/feeds/" + f.ID + "/poll", key: e.keys[entente.RoleAdmin]}); r.status != 404 {
		t.Fatalf("poll deleted feed: %d", r.status)
	}
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
)

// importInto imports a plain list into a collection of the env's node.
func importInto(t *testing.T, e *env, coll, source, list string) {
	t.Helper()
	res, err := feed.Import(strings.NewReader(list), source, feed.Options{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.ImportObjects(context.Background(), node.LocalAdmin(org), coll, res.Objects)
	if err != nil || len(st.Failures) > 0 {
		t.Fatalf("import: %v %+v", err, st.Failures)
	}
}

func TestExportETagAnd304WithoutRendering(t *testing.T) {
	e := newEnv(t)
	importInto(t, e, e.colls.shared, "feed-a", "198.51.100.7\nbad.example.com\n")
	key := e.keys[entente.RoleSensor]
	r := e.do(req{path: "/export/nftables", key: key})
	if r.status != 200 || !strings.Contains(string(r.body), "198.51.100.7") {
		t.Fatalf("GET /export/nftables: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	etag := r.header.Get("ETag")
	renders := e.svc.ExportRenders()
	r2 := e.do(req{path: "/export/nftables", key: key, header: map[string]string{"If-None-Match": etag}})
	if r2.status != 304 || len(r2.body) != 0 || r2.header.Get("ETag") != etag {
		t.Fatalf("conditional GET: %d %q etag %q", r2.status, r2.body, r2.header.Get("ETag"))
	}
	if got := e.svc.ExportRenders(); got != renders {
		t.Fatalf("an unchanged export was rendered again (%d renders, want %d)", got, renders)
	}
	importInto(t, e, e.colls.shared, "feed-a", "198.51.100.8\n")
	r3 := e.do(req{path: "/export/nftables", key: key, header: map[string]string{"If-None-Match": etag}})
	if r3.status != 200 || r3.header.Get("ETag") == etag || !strings.Contains(string(r3.body), "198.51.100.8") {
		t.Fatalf("after a change: %d %s", r3.status, r3.body)
	}

	rpz := e.do(req{path: "/export/rpz?type=domain", key: key})
	if rpz.status != 200 || rpz.header.Get("Content-Type") != "text/dns" || !strings.Contains(string(rpz.body), "bad.example.com CNAME .") || strings.Contains(string(rpz.body), "198.51.100") {
		t.Fatalf("rpz domains only: %d %s", rpz.status, rpz.body)
	}
}

func TestExportMultiFileAndErrors(t *testing.T) {
	e := newEnv(t)
	importInto(t, e, e.colls.shared, "feed-a", "198.51.100.7\n")
	key := e.keys[entente.RoleAnalyst]
	r := e.do(req{path: "/export/misp-feed", key: key})
	var idx httpapi.ExportFilesIndex
	r.json(t, &idx)
	if r.status != 200 || len(idx.Files) < 2 {
		t.Fatalf("misp-feed index: %d %s", r.status, r.body)
	}
	m := e.do(req{path: "/export/misp-feed/manifest.json", key: key})
	var manifest map[string]json.RawMessage
	m.json(t, &manifest)
	if m.status != 200 || len(manifest) != 1 {
		t.Fatalf("manifest: %d %s", m.status, m.body)
	}
	for path, status := range map[string]int{
		"/export/pdf":                        400,
		"/export/plain?min-confidence=200":   400,
		"/export/plain?country=NL":           400, // no geolocation data
		"/export/misp-feed/nope.json":        404,
		"/export/plain?collection=no-such":   404,
		"/export/plain?collection=private":   200, // the analyst may read it
		"/export/plain?type=ipv4&max-age=7d": 200,
	} {
		if got := e.do(req{path: path, key: key}).status; got != status {
			t.Errorf("GET %s: %d, want %d", path, got, status)
		}
	}
	if got := e.do(req{path: "/export/plain?collection=private", key: e.keys[entente.RoleSensor]}).status; got != 403 {
		t.Errorf("sensor reading a private collection: %d, want 403", got)
	}
	if got := e.do(req{path: "/export/plain"}).status; got != 401 {
		t.Errorf("no key: %d, want 401", got)
	}
}

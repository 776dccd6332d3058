package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
)

// TestProposedAgreementPreview previews a changed agreement before it is
// saved: the objects whose release it changes are listed, nothing is
// saved, analysts are refused, and a broken agreement is a 400 naming
// its field.
func TestProposedAgreementPreview(t *testing.T) {
	e := newEnv(t)
	const partner = "identity--7d0b9c2e-0000-4000-8000-00000000beef"
	admin, analyst := e.keys[entente.RoleAdmin], e.keys[entente.RoleAnalyst]
	hdr := map[string]string{"Content-Type": "application/json"}
	var objs []json.RawMessage
	for i := range 3 {
		objs = append(objs, indicator("indicator--"+uuidN(i), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), i))
	}
	e.complete(e.post(e.colls.shared, objs), analyst)
	if r := e.do(req{method: "PUT", path: "/api/v1/partners/" + partner, key: admin, header: hdr,
		body: []byte(`{"id":"` + partner + `","name":"Partner CERT","country":"DE"}`)}); r.status != 200 {
		t.Fatalf("put partner: %d %s", r.status, r.body)
	}
	agreement := func(tlp string) []byte {
		return []byte(`{"partner":{"id":"` + partner + `"},"collections":["shared"],"max_tlp":"` + tlp + `","redact":{}}`)
	}
	if r := e.do(req{method: "PUT", path: "/api/v1/agreements/" + partner, key: admin, header: hdr, body: agreement("green")}); r.status != 200 {
		t.Fatalf("put agreement: %d %s", r.status, r.body)
	}
	path := "/api/v1/agreements/" + partner + "/preview"
	type answer struct {
		Summary *struct{ Released, Withheld, Changed int }
		Current *struct{ Released, Withheld int }
		Objects []json.RawMessage
		Changes []struct {
			Object        struct{ ID string }
			Before, After struct{ Allow bool }
		}
	}
	for _, c := range []struct {
		name, query, tlp string
		changed          int
	}{
		{"the same agreement", "", "green", 0},
		{"AMBER allowed", "", "amber", 3},
		{"AMBER allowed, summary", "?summary=true", "amber", 3},
	} {
		r := e.do(req{method: "POST", path: path + c.query, key: admin, header: hdr, body: agreement(c.tlp)})
		var a answer
		r.json(t, &a)
		if r.status != 200 || len(a.Changes) != c.changed {
			t.Errorf("%s: %d, %d changes: %s", c.name, r.status, len(a.Changes), r.body)
			continue
		}
		for _, ch := range a.Changes {
			if ch.Before.Allow || !ch.After.Allow || !strings.HasPrefix(ch.Object.ID, "indicator--") {
				t.Errorf("%s: change %+v", c.name, ch)
			}
		}
		if c.query != "" && (a.Summary == nil || a.Summary.Changed != c.changed || a.Current == nil ||
			a.Summary.Released-a.Current.Released != c.changed || a.Current.Withheld-a.Summary.Withheld != c.changed) {
			t.Errorf("%s: summary %s", c.name, r.body)
		}
	}
	// Nothing was saved.
	r := e.do(req{path: "/api/v1/agreements/" + partner, key: admin})
	if !strings.Contains(string(r.body), `"max_tlp":"TLP:GREEN"`) {
		t.Errorf("the preview saved the agreement: %s", r.body)
	}
	// Analysts may read the preview of the agreement on record, not of a
	// changed one; a broken one is refused naming its field.
	for _, c := range []struct {
		name, key string
		body      []byte
		status    int
		want      string
	}{
		{"analyst", analyst, agreement("amber"), 403, "admin"},
		{"RED", admin, agreement("red"), 400, "max_tlp"},
		{"unknown collection", admin, []byte(`{"collections":["nowhere"],"max_tlp":"green"}`), 400, "nowhere"},
		{"another partner", admin, []byte(`{"partner":{"id":"identity--other"},"collections":["shared"],"max_tlp":"green"}`), 400, "partner.id"},
	} {
		r := e.do(req{method: "POST", path: path, key: c.key, header: hdr, body: c.body})
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, r.status, r.body, c.status, c.want)
		}
	}
	if r := e.do(req{path: path, key: analyst}); r.status != 200 {
		t.Errorf("analyst reading the preview on record: %d %s", r.status, r.body)
	}
	// A partner without an agreement: the first one is previewed against
	// receiving nothing.
	const newcomer = "identity--7d0b9c2e-0000-4000-8000-00000000f00d"
	if r := e.do(req{method: "PUT", path: "/api/v1/partners/" + newcomer, key: admin, header: hdr,
		body: []byte(`{"id":"` + newcomer + `","name":"New CERT","country":"FR"}`)}); r.status != 200 {
		t.Fatalf("put partner: %d %s", r.status, r.body)
	}
	r = e.do(req{method: "POST", path: "/api/v1/agreements/" + newcomer + "/preview", key: admin, header: hdr,
		body: []byte(`{"collections":["shared"],"max_tlp":"amber","redact":{}}`)})
	var a answer
	r.json(t, &a)
	if r.status != 200 || len(a.Changes) != 3 {
		t.Errorf("first agreement: %d, %d changes: %s", r.status, len(a.Changes), r.body)
	}
	if r := e.do(req{path: "/api/v1/agreements/" + newcomer, key: admin}); r.status != 404 {
		t.Errorf("the preview saved the first agreement: %d %s", r.status, r.body)
	}
}

// TestFeedEdit changes a feed's configuration: the preview lists the
// fields that change and saves nothing; PUT saves them and keeps the
// feed's poll state; analysts are refused both; a bad value is a 400
// naming its field.
func TestFeedEdit(t *testing.T) {
	e := newEnv(t)
	list := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"1"`)
		w.Write([]byte("198.51.100.7\n"))
	}))
	defer list.Close()
	admin, analyst := e.keys[entente.RoleAdmin], e.keys[entente.RoleAnalyst]
	hdr := map[string]string{"Content-Type": "application/json"}
	body := func(fr httpapi.FeedRequest) []byte { b, _ := json.Marshal(fr); return b }
	orig := httpapi.FeedRequest{Name: "local", URL: list.URL + "/l.txt", Format: "plain", Interval: "2h", Collection: "shared"}
	var f node.Feed
	r := e.do(req{method: "POST", path: "/api/v1/feeds", key: admin, body: body(orig), header: hdr})
	r.json(t, &f)
	if r.status != 201 {
		t.Fatalf("add feed: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: "POST", path: "/api/v1/feeds/" + f.ID + "/poll", key: admin}); r.status != 200 {
		t.Fatalf("poll: %d %s", r.status, r.body)
	}
	changed := orig
	changed.Name, changed.Interval, changed.TLP, changed.Confidence = "local list", "6h", "green", 70
	var pv struct {
		Before, After node.Feed
		Changes       []httpapi.FeedChange
	}
	r = e.do(req{method: "POST", path: "/api/v1/feeds/" + f.ID + "/preview", key: admin, body: body(changed), header: hdr})
	r.json(t, &pv)
	got := fmt.Sprint(pv.Changes)
	if want := "[{name local local list} {interval 2h0m0s 6h0m0s} {tlp  green} {confidence 0 70}]"; r.status != 200 || got != want {
		t.Errorf("preview: %d changes %s, want %s", r.status, got, want)
	}
	r = e.do(req{path: "/api/v1/feeds", key: admin})
	if !strings.Contains(string(r.body), `"name":"local"`) {
		t.Errorf("the preview saved the feed: %s", r.body)
	}
	r = e.do(req{method: "PUT", path: "/api/v1/feeds/" + f.ID, key: admin, body: body(changed), header: hdr})
	var saved node.Feed
	r.json(t, &saved)
	if r.status != 200 || saved.Name != "local list" || saved.Interval != 6*time.Hour || saved.ETag != `"1"` || saved.LastRun.IsZero() || !saved.Created.Equal(f.Created) {
		t.Errorf("put: %d %s", r.status, r.body)
	}
	// Another URL: the old answer's validators go, the rest of the state
	// stays.
	moved := changed
	moved.URL = list.URL + "/moved.txt"
	r = e.do(req{method: "PUT", path: "/api/v1/feeds/" + f.ID, key: admin, body: body(moved), header: hdr})
	saved = node.Feed{}
	r.json(t, &saved)
	r2 := e.do(req{path: "/api/v1/feeds", key: admin})
	if r.status != 200 || saved.ETag != "" || saved.LastRun.IsZero() || strings.Contains(string(r2.body), `"etag"`) {
		t.Errorf("put a new URL: %d %s; listed %s", r.status, r.body, r2.body)
	}
	bad := changed
	bad.Interval = "1s"
	for _, c := range []struct {
		name, method, path, key string
		body                    []byte
		status                  int
		want                    string
	}{
		{"analyst preview", "POST", "/api/v1/feeds/" + f.ID + "/preview", analyst, body(changed), 403, "admin"},
		{"analyst put", "PUT", "/api/v1/feeds/" + f.ID, analyst, body(changed), 403, "admin"},
		{"short interval", "PUT", "/api/v1/feeds/" + f.ID, admin, body(bad), 400, "interval"},
		{"no such feed", "PUT", "/api/v1/feeds/nope", admin, body(changed), 404, ""},
	} {
		r := e.do(req{method: c.method, path: c.path, key: c.key, header: hdr, body: c.body})
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, r.status, r.body, c.status, c.want)
		}
	}
}

// TestTaxonomyLabels: GET /api/v1/taxonomies lists the embedded MISP
// taxonomies to every role; a label that is a machine tag of a known
// namespace must name one of its predicates and values (400 naming the
// label otherwise), on indicators and on labels added; free labels pass;
// a label the taxonomy does not know may still be removed.
func TestTaxonomyLabels(t *testing.T) {
	e := newEnv(t)
	for _, role := range []entente.Role{entente.RoleAdmin, entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner} {
		r := e.api("GET", "/api/v1/taxonomies", role, nil)
		var out struct {
			Taxonomies []struct{ Namespace string }
		}
		r.json(t, &out)
		if r.status != 200 || len(out.Taxonomies) < 5 || !strings.Contains(string(r.body), `"namespace":"admiralty-scale"`) {
			t.Errorf("%s: taxonomies %d %.200s", role, r.status, r.body)
		}
	}
	ind := func(labels ...string) map[string]any {
		return map[string]any{"name": "C2", "pattern": "[ipv4-addr:value = '203.0.113.9']", "tlp": "green", "collection": "shared", "labels": labels}
	}
	r := e.api("POST", "/api/v1/indicators", entente.RoleAnalyst, ind("c2", "tlp:purple"))
	if r.status != 400 || !strings.Contains(string(r.body), `labels[1]: label \"tlp:purple\"`) {
		t.Errorf("indicator with tlp:purple: %d %s", r.status, r.body)
	}
	r = e.api("POST", "/api/v1/indicators", entente.RoleAnalyst, ind("c2", "tlp:green", `admiralty-scale:source-reliability="b"`))
	var created node.Created
	r.json(t, &created)
	if r.status != 201 {
		t.Fatalf("indicator with good tags: %d %s", r.status, r.body)
	}
	path := "/api/v1/objects/" + created.ID + "/labels"
	for _, c := range []struct {
		name        string
		add, remove []string
		status      int
		want        string
	}{
		{"unknown value", []string{`admiralty-scale:source-reliability="z"`}, nil, 400, `has no value \"z\"`},
		{"wrong case", []string{"PAP:green"}, nil, 400, "PAP:GREEN"},
		{"known tag", []string{"PAP:GREEN", `estimative-language:likelihood-probability="likely"`}, nil, 201, ""},
		{"free labels and other namespaces", []string{"reviewed", `misp-galaxy:threat-actor="Sofacy"`}, nil, 201, ""},
		{"removing an unknown tag", nil, []string{"tlp:purple"}, 201, ""},
	} {
		body := map[string]any{"add": []string{}, "remove": []string{}}
		if c.add != nil {
			body["add"] = c.add
		}
		if c.remove != nil {
			body["remove"] = c.remove
		}
		r := e.api("POST", path, entente.RoleAnalyst, body)
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, r.status, r.body, c.status, c.want)
		}
	}
}

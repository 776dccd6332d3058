package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/schema"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/google/go-cmp/cmp"
)

func TestDiscoveryAPIRootCollections(t *testing.T) {
	e := newEnv(t)
	r := e.get("/taxii2/")
	if r.status != 200 || r.header.Get("Content-Type") != taxii.MediaType {
		t.Fatalf("discovery: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var d taxii.Discovery
	r.json(t, &d)
	root := e.srv.URL + "/taxii2/api1/"
	want := taxii.Discovery{Title: "Test node", Description: "a node under test", Contact: "cert@example.org", Default: root, APIRoots: []string{root}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("discovery (-want +got):\n%s", diff)
	}

	var ar taxii.APIRoot
	e.get("/taxii2/api1/").json(t, &ar)
	if diff := cmp.Diff(taxii.APIRoot{Title: "Test node", Versions: []string{taxii.MediaType}, MaxContentLength: 1 << 20}, ar); diff != "" {
		t.Errorf("API root (-want +got):\n%s", diff)
	}

	// can_read and can_write are the requesting key's own rights; a
	// partner sees only what it may read or write.
	view := func(role entente.Role) map[string][2]bool {
		var cs taxii.Collections
		e.do(req{path: e.root + "collections/", key: e.keys[role]}).json(t, &cs)
		out := map[string][2]bool{}
		for _, c := range cs.Collections {
			if c.Title == "" || !slices.Equal(c.MediaTypes, []string{taxii.STIXMediaType}) {
				t.Errorf("collection %+v lacks a title or media types", c)
			}
			out[c.Alias] = [2]bool{c.CanRead, c.CanWrite}
		}
		return out
	}
	tests := map[entente.Role]map[string][2]bool{
		entente.RoleAdmin:   {"shared": {true, true}, "readonly": {true, true}, "private": {true, true}},
		entente.RoleAnalyst: {"shared": {true, true}, "readonly": {true, true}, "private": {true, true}},
		entente.RolePartner: {"shared": {true, false}},
		entente.RoleSensor:  {"shared": {true, true}, "readonly": {true, false}},
	}
	for role, want := range tests {
		if diff := cmp.Diff(want, view(role)); diff != "" {
			t.Errorf("collections seen by %s (-want +got):\n%s", role, diff)
		}
	}

	// A collection by id and by alias.
	for _, name := range []string{e.colls.shared, "shared"} {
		var c taxii.Collection
		r := e.get(e.root + "collections/" + name + "/")
		r.json(t, &c)
		if r.status != 200 || c.ID != e.colls.shared || c.Alias != "shared" || !c.CanRead || !c.CanWrite {
			t.Errorf("collection %s: %d %+v", name, r.status, c)
		}
	}
	errorBody(t, e.get(e.root+"collections/no-such/"), 404)
	errorBody(t, e.do(req{path: e.root + "collections/private/", key: e.keys[entente.RolePartner]}), 403)
	errorBody(t, e.get("/taxii2/api2/"), 404)
}

func TestAddObjectsMixedEnvelope(t *testing.T) {
	e := newEnv(t)
	valid := exampleObjects(t)
	invalid := []json.RawMessage{
		json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-000000000001","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`),
		json.RawMessage(`{"type":"malware","id":"not-an-id"}`),
		json.RawMessage(`"just a string"`),
		json.RawMessage(`{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000002","created":"yesterday"}`),
	}
	// Interleave: invalid objects first, in the middle and last.
	objs := append([]json.RawMessage{invalid[0]}, valid[:len(valid)/2]...)
	objs = append(objs, invalid[1], invalid[2])
	objs = append(objs, valid[len(valid)/2:]...)
	objs = append(objs, invalid[3])

	st := e.post(e.colls.shared, objs)
	if st.Status != "complete" || st.TotalCount != len(objs) || st.SuccessCount != len(valid) || st.FailureCount != len(invalid) || st.PendingCount != 0 {
		t.Fatalf("status %+v", st)
	}
	if len(st.Successes) != len(valid) || len(st.Failures) != len(invalid) {
		t.Fatalf("%d successes and %d failures listed", len(st.Successes), len(st.Failures))
	}
	wantFail := []struct{ id, words string }{
		{"indicator--00000000-0000-4000-8000-000000000001", "pattern"},
		{"not-an-id", "id"},
		{"", "not a JSON object"},
		{"indicator--00000000-0000-4000-8000-000000000002", "created"},
	}
	for i, f := range st.Failures {
		if f.ID != wantFail[i].id || !strings.Contains(f.Message, wantFail[i].words) {
			t.Errorf("failure %d = %+v, want id %q and a message about %q", i, f, wantFail[i].id, wantFail[i].words)
		}
	}
	for _, s := range st.Successes {
		if s.ID == "" || s.Version == "" {
			t.Errorf("success without id or version: %+v", s)
		}
	}

	// The valid objects are readable, byte for byte, and each is valid
	// against the OASIS schemas.
	var env struct {
		More    bool              `json:"more"`
		Objects []json.RawMessage `json:"objects"`
	}
	r := e.get(e.objectsURL(e.colls.shared) + "?match[version]=all")
	r.json(t, &env)
	if len(env.Objects) != len(valid) || env.More {
		t.Fatalf("read back %d objects (more %v), want %d", len(env.Objects), env.More, len(valid))
	}
	if diff := cmp.Diff(ids(valid), ids(env.Objects)); diff != "" {
		t.Errorf("ids read back (-want +got):\n%s", diff)
	}
	// The envelope was encoded with encoding/json, which compacts each
	// object: the server must give back exactly what it was sent.
	sent := map[string]bool{}
	for _, o := range valid {
		sent[compact(t, o)] = true
	}
	for _, o := range env.Objects {
		if !sent[string(o)] {
			t.Errorf("object read back differs from what was sent: %.200s", o)
		}
		schema.Check(t, o)
	}

	// The status is kept: its creator and admins see it, others do not.
	path := e.root + "status/" + st.ID + "/"
	for _, role := range []entente.Role{entente.RoleAnalyst, entente.RoleAdmin} {
		var got taxii.Status
		r := e.do(req{path: path, key: e.keys[role]})
		r.json(t, &got)
		if diff := cmp.Diff(st, got); diff != "" {
			t.Errorf("status read by %s (-want +got):\n%s", role, diff)
		}
	}
	errorBody(t, e.do(req{path: path, key: e.keys[entente.RoleSensor]}), 404)
	errorBody(t, e.get(e.root+"status/00000000-0000-4000-8000-000000000000/"), 404)

	// Posting the same envelope again succeeds and stores nothing new,
	// except for objects that have no version (no modified or created,
	// such as cyber-observables), which the store versions by date_added.
	unversioned := 0
	for _, o := range valid {
		if d, _ := stix.Decode(o); d.Version().IsZero() {
			unversioned++
		}
	}
	before := e.count(e.colls.shared)
	st2 := e.post(e.colls.shared, objs)
	if st2.SuccessCount != len(valid) || e.count(e.colls.shared) != before+unversioned {
		t.Errorf("re-post: %d successes, %d entries (was %d, %d unversioned)", st2.SuccessCount, e.count(e.colls.shared), before, unversioned)
	}
}

// TestPagingSharedDateAdded pages through 1,000 objects added in one
// request (so sharing one date_added) with limit and next: every object
// once, none missed, with the X-TAXII-Date-Added headers.
func TestPagingSharedDateAdded(t *testing.T) {
	e := newEnv(t)
	const n = 1000
	objs := make([]json.RawMessage, n)
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range objs {
		objs[i] = indicator("indicator--"+uuidN(i), base, i)
	}
	if st := e.post(e.colls.shared, objs); st.SuccessCount != n {
		t.Fatalf("status %+v", st)
	}
	for _, endpoint := range []string{"objects", "manifest"} {
		t.Run(endpoint, func(t *testing.T) {
			seen := map[string]int{}
			q := url.Values{"limit": {"37"}}
			pages := 0
			for {
				r := e.get(e.root + "collections/" + e.colls.shared + "/" + endpoint + "/?" + q.Encode())
				if r.status != 200 {
					t.Fatalf("page %d: %d %s", pages, r.status, r.body)
				}
				var page struct {
					More    bool              `json:"more"`
					Next    string            `json:"next"`
					Objects []json.RawMessage `json:"objects"`
				}
				r.json(t, &page)
				pages++
				if len(page.Objects) > 37 {
					t.Fatalf("page of %d objects, limit 37", len(page.Objects))
				}
				first, last := r.header.Get("X-TAXII-Date-Added-First"), r.header.Get("X-TAXII-Date-Added-Last")
				if first == "" || last == "" || first > last {
					t.Fatalf("date added headers %q, %q", first, last)
				}
				for _, o := range page.Objects {
					var m struct {
						ID        string `json:"id"`
						DateAdded string `json:"date_added"`
					}
					json.Unmarshal(o, &m)
					seen[m.ID]++
					if endpoint == "manifest" && (m.DateAdded < first || m.DateAdded > last) {
						t.Errorf("date_added %s outside the headers [%s, %s]", m.DateAdded, first, last)
					}
				}
				if !page.More {
					if page.Next != "" {
						t.Errorf("next %q without more", page.Next)
					}
					break
				}
				if page.Next == "" {
					t.Fatal("more without next")
				}
				q.Set("next", page.Next)
				if pages > 100 {
					t.Fatal("paging does not end")
				}
			}
			if len(seen) != n || pages != (n+36)/37 {
				t.Errorf("%d distinct objects in %d pages, want %d in %d", len(seen), pages, n, (n+36)/37)
			}
			for id, c := range seen {
				if c != 1 {
					t.Errorf("%s seen %d times", id, c)
				}
			}
		})
	}
	// Without limit, a page holds node.DefaultLimit entries.
	e.post(e.colls.shared, []json.RawMessage{indicator("indicator--"+uuidN(n), base, n)})
	var all struct {
		More    bool
		Objects []json.RawMessage
	}
	e.get(e.objectsURL(e.colls.shared)).json(t, &all)
	if len(all.Objects) != node.DefaultLimit || !all.More {
		t.Errorf("default page: %d objects, more %v; want %d and more", len(all.Objects), all.More, node.DefaultLimit)
	}
	// A next token with other filters is refused.
	r := e.get(e.objectsURL(e.colls.shared) + "?limit=10")
	var page struct{ Next string }
	r.json(t, &page)
	errorBody(t, e.get(e.objectsURL(e.colls.shared)+"?limit=10&match[type]=malware&next="+url.QueryEscape(page.Next)), 400)
}

// versioned posts three versions of one indicator in three requests (so
// with increasing date_added), one other indicator and a malware, and
// returns the times.
func versioned(t *testing.T, e *env) (id string, versions []time.Time, afterFirst string) {
	id = "indicator--" + uuidN(1)
	base := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	versions = []time.Time{base, base.Add(time.Hour), base.Add(2 * time.Hour)}
	st := e.post(e.colls.shared, []json.RawMessage{indicator(id, versions[0], 1)})
	if st.SuccessCount != 1 {
		t.Fatalf("status %+v", st)
	}
	var m taxii.Manifest
	e.get(e.root+"collections/"+e.colls.shared+"/manifest/").json(t, &m)
	afterFirst = m.Objects[0].DateAdded
	e.post(e.colls.shared, []json.RawMessage{indicator(id, versions[1], 1)})
	e.post(e.colls.shared, []json.RawMessage{
		indicator(id, versions[2], 1),
		indicator("indicator--"+uuidN(2), base, 2),
		json.RawMessage(`{"type":"malware","spec_version":"2.1","id":"malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"Poison Ivy","is_family":true}`),
	})
	return id, versions, afterFirst
}

func TestFilters(t *testing.T) {
	e := newEnv(t)
	id, v, afterFirst := versioned(t, e)
	id2 := "indicator--" + uuidN(2)
	mal := "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"
	type got struct {
		ID       string
		Modified string
	}
	ts := stix.FormatTimestamp
	tests := []struct {
		query string
		want  []got // in date_added order
	}{
		{"", []got{{id, ts(v[2])}, {id2, ts(v[0])}, {mal, "2024-01-01T00:00:00.000Z"}}},
		{"match[version]=last", []got{{id, ts(v[2])}, {id2, ts(v[0])}, {mal, "2024-01-01T00:00:00.000Z"}}},
		{"match[version]=first&match[type]=indicator", []got{{id, ts(v[0])}, {id2, ts(v[0])}}},
		{"match[version]=all&match[id]=" + id, []got{{id, ts(v[0])}, {id, ts(v[1])}, {id, ts(v[2])}}},
		{"match[version]=first,last&match[id]=" + id, []got{{id, ts(v[0])}, {id, ts(v[2])}}},
		{"match[version]=" + ts(v[1]), []got{{id, ts(v[1])}}},
		{"match[version]=" + ts(v[1]) + "," + ts(v[0]), []got{{id, ts(v[0])}, {id, ts(v[1])}, {id2, ts(v[0])}}},
		{"match[type]=malware", []got{{mal, "2024-01-01T00:00:00.000Z"}}},
		{"match[type]=malware,indicator&match[id]=" + mal + "," + id2, []got{{id2, ts(v[0])}, {mal, "2024-01-01T00:00:00.000Z"}}},
		{"match[spec_version]=2.1&match[type]=malware", []got{{mal, "2024-01-01T00:00:00.000Z"}}},
		{"match[spec_version]=2.0", nil},
		{"match[type]=campaign", nil},
		{"added_after=" + afterFirst + "&match[version]=all&match[id]=" + id, []got{{id, ts(v[1])}, {id, ts(v[2])}}},
		{"added_after=" + afterFirst + "&match[version]=first", []got{{id2, ts(v[0])}, {mal, "2024-01-01T00:00:00.000Z"}}},
		{"added_after=2999-01-01T00:00:00Z", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := e.get(e.objectsURL(e.colls.shared) + "?" + tt.query)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var env struct{ Objects []got }
			r.json(t, &env)
			if diff := cmp.Diff(tt.want, env.Objects); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if (r.header.Get("X-TAXII-Date-Added-First") != "") != (len(tt.want) > 0) {
				t.Errorf("X-TAXII-Date-Added-First %q with %d objects", r.header.Get("X-TAXII-Date-Added-First"), len(tt.want))
			}
		})
	}
	for _, bad := range []string{"added_after=yesterday", "limit=0", "match[version]=newest", "match[type]=Bad!", "next=bogus"} {
		e := errorBody(t, e.get(e.objectsURL(e.colls.shared)+"?"+bad), 400)
		if e.Description == "" {
			t.Errorf("%s: error without description", bad)
		}
	}
}

func TestObjectVersionsManifestDelete(t *testing.T) {
	e := newEnv(t)
	id, v, _ := versioned(t, e)
	obj := e.objectsURL(e.colls.shared) + id + "/"

	var env struct {
		Objects []struct{ ID, Modified string }
	}
	r := e.get(obj)
	r.json(t, &env)
	if len(env.Objects) != 1 || env.Objects[0].Modified != stix.FormatTimestamp(v[2]) || r.header.Get("X-TAXII-Date-Added-Last") == "" {
		t.Errorf("get object: %s", r.body)
	}
	e.get(obj+"?match[version]=all").json(t, &env)
	if len(env.Objects) != 3 {
		t.Errorf("get object, all versions: %d", len(env.Objects))
	}
	errorBody(t, e.get(e.objectsURL(e.colls.shared)+"indicator--"+uuidN(99)+"/"), 404)

	var vs taxii.Versions
	r = e.get(obj + "versions/")
	r.json(t, &vs)
	want := []string{stix.FormatTimestamp(v[0]), stix.FormatTimestamp(v[1]), stix.FormatTimestamp(v[2])}
	if diff := cmp.Diff(taxii.Versions{Versions: want}, vs); diff != "" || r.header.Get("X-TAXII-Date-Added-First") == "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	e.get(obj+"versions/?limit=2").json(t, &vs)
	if !vs.More || len(vs.Versions) != 2 || vs.Next == "" {
		t.Errorf("versions limit 2: %+v", vs)
	}
	errorBody(t, e.get(e.objectsURL(e.colls.shared)+"indicator--"+uuidN(99)+"/versions/"), 404)

	var m taxii.Manifest
	e.get(e.root+"collections/"+e.colls.shared+"/manifest/?match[id]="+id+"&match[version]=all").json(t, &m)
	if len(m.Objects) != 3 {
		t.Fatalf("manifest: %+v", m)
	}
	for i, rec := range m.Objects {
		if rec.ID != id || rec.Version != want[i] || rec.MediaType != taxii.STIXMediaType || rec.DateAdded == "" {
			t.Errorf("manifest record %d: %+v", i, rec)
		}
	}

	// Delete the middle version, then the rest; a partner may not delete.
	errorBody(t, e.do(req{method: "DELETE", path: obj, key: e.keys[entente.RolePartner]}), 403)
	if r := e.do(req{method: "DELETE", path: obj + "?match[version]=" + want[1], key: e.keys[entente.RoleAnalyst]}); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	e.get(obj+"versions/").json(t, &vs)
	if diff := cmp.Diff([]string{want[0], want[2]}, vs.Versions); diff != "" {
		t.Errorf("versions after delete (-want +got):\n%s", diff)
	}
	errorBody(t, e.do(req{method: "DELETE", path: obj + "?match[version]=" + want[1], key: e.keys[entente.RoleAnalyst]}), 404)
	if r := e.do(req{method: "DELETE", path: obj, key: e.keys[entente.RoleAnalyst]}); r.status != 200 {
		t.Fatalf("delete all: %d %s", r.status, r.body)
	}
	errorBody(t, e.get(obj), 404)
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	paths := []string{"/taxii2/", e.root, e.root + "collections/", e.objectsURL("shared"), "/api/v1/whoami", "/metrics", "/no/such/path"}
	for _, p := range paths {
		for _, key := range []string{"", "ent_000000000000_bogus", "garbage"} {
			r := e.do(req{path: p, key: key})
			errorBody(t, r, 401)
			if got := r.header.Values("Www-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[0], "Bearer") || !strings.HasPrefix(got[1], "Basic") {
				t.Errorf("%s: WWW-Authenticate %q", p, got)
			}
		}
	}
	// Basic with the key as password works; as user name it does not.
	if r := e.do(req{path: "/taxii2/", key: e.keys[entente.RolePartner], basic: true}); r.status != 200 {
		t.Errorf("basic auth: %d %s", r.status, r.body)
	}
	errorBody(t, e.do(req{path: "/taxii2/", header: map[string]string{"Authorization": "Basic " + basicUser(e.keys[entente.RoleAdmin])}}), 401)

	var who httpapi.Whoami
	e.do(req{path: "/api/v1/whoami", key: e.keys[entente.RoleSensor]}).json(t, &who)
	if who.KeyID != e.ids[entente.RoleSensor] || who.Role != entente.RoleSensor || who.Org != org {
		t.Errorf("whoami: %+v", who)
	}

	// Revoke the analyst's key through the node API: refused at once.
	adm := e.keys[entente.RoleAdmin]
	errorBody(t, e.do(req{method: "DELETE", path: "/api/v1/keys/" + e.ids[entente.RoleAnalyst], key: e.keys[entente.RoleSensor]}), 403)
	if r := e.do(req{method: "DELETE", path: "/api/v1/keys/" + e.ids[entente.RoleAnalyst], key: adm}); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	errorBody(t, e.get("/taxii2/"), 401)
	errorBody(t, e.do(req{method: "DELETE", path: "/api/v1/keys/nope", key: adm}), 404)
}

func basicUser(user string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, "")
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestAuthorisation(t *testing.T) {
	e := newEnv(t)
	obj := []json.RawMessage{indicator("indicator--"+uuidN(5), time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), 5)}
	tests := []struct {
		role       entente.Role
		method     string
		coll       string
		wantStatus int
	}{
		{entente.RoleSensor, "POST", "readonly", 403},
		{entente.RoleSensor, "POST", "shared", 202},
		{entente.RoleSensor, "GET", "readonly", 200},
		{entente.RoleSensor, "GET", "private", 403},
		{entente.RolePartner, "POST", "shared", 403},
		{entente.RolePartner, "GET", "shared", 200},
		{entente.RolePartner, "GET", "private", 403},
		{entente.RolePartner, "GET", "nonexistent", 404},
		{entente.RoleAnalyst, "POST", "private", 202},
		{entente.RoleAdmin, "POST", "readonly", 202},
	}
	for _, tt := range tests {
		q := req{method: tt.method, path: e.objectsURL(tt.coll), key: e.keys[tt.role]}
		if tt.method == "POST" {
			q.body = envelope(obj)
		}
		r := e.do(q)
		if r.status != tt.wantStatus {
			t.Errorf("%s %s %s: %d, want %d (%s)", tt.role, tt.method, tt.coll, r.status, tt.wantStatus, r.body)
		}
		if tt.wantStatus >= 400 {
			errorBody(t, r, tt.wantStatus)
		}
		if tt.method == "POST" && r.status == http.StatusAccepted {
			var st taxii.Status
			r.json(t, &st)
			e.complete(st, e.keys[tt.role])
		}
	}
	if n := e.count(e.colls.readonly); n != 1 {
		t.Errorf("readonly collection holds %d entries, want the admin's 1", n)
	}
	// The node API is for admins only.
	for _, role := range []entente.Role{entente.RoleAnalyst, entente.RolePartner, entente.RoleSensor} {
		errorBody(t, e.do(req{path: "/api/v1/keys", key: e.keys[role]}), 403)
		errorBody(t, e.do(req{path: "/api/v1/collections", key: e.keys[role]}), 403)
		errorBody(t, e.do(req{path: "/metrics", key: e.keys[role]}), 403)
	}
}

func TestNodeAPI(t *testing.T) {
	e := newEnv(t)
	adm := e.keys[entente.RoleAdmin]
	h := map[string]string{"Content-Type": "application/json", "Accept": "application/json"}
	r := e.do(req{method: "POST", path: "/api/v1/keys", key: adm, header: h, body: []byte(`{"name":"feed bot","role":"sensor"}`)})
	if r.status != 201 {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	var k struct {
		ID, Secret, Role, Org string
	}
	r.json(t, &k)
	if k.Secret == "" || k.Role != "sensor" || k.Org != org || strings.Contains(string(r.body), `"hash"`) {
		t.Errorf("created key %s", r.body)
	}
	if r := e.do(req{path: "/taxii2/", key: k.Secret}); r.status != 200 {
		t.Errorf("new key refused: %d", r.status)
	}
	r = e.do(req{path: "/api/v1/keys", key: adm, header: h})
	if r.status != 200 || !strings.Contains(string(r.body), k.ID) || strings.Contains(string(r.body), k.Secret) {
		t.Errorf("list keys: %d %s", r.status, r.body)
	}
	for _, bad := range []string{`{"role":"root"}`, `{"role":"sensor","extra":1}`, `{`, `[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]`} {
		errorBody(t, e.do(req{method: "POST", path: "/api/v1/keys", key: adm, header: h, body: []byte(bad)}), 400)
	}
	r = e.do(req{method: "POST", path: "/api/v1/collections", key: adm, header: h,
		body: []byte(`{"alias":"feeds","title":"Feeds","read_roles":["partner"],"write_roles":["sensor"]}`)})
	if r.status != 201 {
		t.Fatalf("create collection: %d %s", r.status, r.body)
	}
	errorBody(t, e.do(req{method: "POST", path: "/api/v1/collections", key: adm, header: h, body: []byte(`{"alias":"feeds","title":"Again"}`)}), 409)
	errorBody(t, e.do(req{method: "POST", path: "/api/v1/collections", key: adm, header: h, body: []byte(`{"alias":"x"}`)}), 400)
	var cs struct{ Collections []entente.Collection }
	e.do(req{path: "/api/v1/collections", key: adm, header: h}).json(t, &cs)
	if len(cs.Collections) != 4 || cs.Collections[3].Alias != "feeds" || !slices.Equal(cs.Collections[3].WriteRoles, []entente.Role{entente.RoleSensor}) {
		t.Errorf("collections %+v", cs.Collections)
	}
}

func TestMediaTypes(t *testing.T) {
	e := newEnv(t)
	key := e.keys[entente.RoleAnalyst]
	for _, accept := range []string{"application/json", "application/stix+json;version=2.1", "application/taxii+json;version=2.0", "text/html"} {
		for _, p := range []string{"/taxii2/", e.root, e.objectsURL("shared"), e.root + "collections/shared/manifest/"} {
			errorBody(t, e.do(req{path: p, key: key, header: map[string]string{"Accept": accept}}), 406)
		}
	}
	for _, accept := range []string{"application/taxii+json", "application/taxii+json;version=2.1", "*/*", ""} {
		if r := e.do(req{path: e.objectsURL("shared"), key: key, header: map[string]string{"Accept": accept}}); r.status != 200 || r.header.Get("Content-Type") != taxii.MediaType {
			t.Errorf("Accept %q: %d %q", accept, r.status, r.header.Get("Content-Type"))
		}
	}
	body := envelope([]json.RawMessage{indicator("indicator--"+uuidN(1), time.Now(), 1)})
	for _, ct := range []string{"application/json", "application/stix+json;version=2.1", "application/taxii+json;version=2.0", "text/plain", ""} {
		errorBody(t, e.do(req{method: "POST", path: e.objectsURL("shared"), key: key, body: body, header: map[string]string{"Content-Type": ct}}), 415)
	}
	if n := e.count(e.colls.shared); n != 0 {
		t.Errorf("%d objects stored by refused requests", n)
	}
}

func TestBadInputLeavesStoreUnchanged(t *testing.T) {
	e := newEnv(t)
	key := e.keys[entente.RoleAnalyst]
	// One acknowledged object first: it must survive everything below.
	ack := e.post(e.colls.shared, []json.RawMessage{indicator("indicator--"+uuidN(1), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 1)})
	if ack.SuccessCount != 1 {
		t.Fatal(ack)
	}
	big := make([]json.RawMessage, 0, 5000)
	for i := range 5000 {
		big = append(big, indicator("indicator--"+uuidN(1000+i), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), i))
	}
	bigBody := envelope(big)
	if len(bigBody) <= 1<<20 {
		t.Fatalf("test body of %d bytes is not over the limit", len(bigBody))
	}
	deep := `{"objects":[{"type":"indicator","x":` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `}]}`
	tests := []struct {
		name   string
		q      req
		status int
	}{
		{"malformed JSON", req{body: []byte(`{"objects":[{"type":"indicator",}]}`)}, 400},
		{"not an envelope", req{body: []byte(`[{"type":"indicator"}]`)}, 400},
		{"objects not a list", req{body: []byte(`{"objects":{"type":"indicator"}}`)}, 400},
		{"too deep", req{body: []byte(deep)}, 400},
		{"over max_content_length", req{body: bigBody}, 413},
		{"unknown collection", req{path: e.objectsURL("nope"), body: envelope(big[:2])}, 404},
		{"wrong media type", req{body: envelope(big[:2]), header: map[string]string{"Content-Type": "application/json"}}, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.method, tt.q.key = "POST", key
			if tt.q.path == "" {
				tt.q.path = e.objectsURL(e.colls.shared)
			}
			errorBody(t, e.do(tt.q), tt.status)
			if n := e.count(e.colls.shared); n != 1 {
				t.Errorf("collection holds %d entries, want only the acknowledged one", n)
			}
		})
	}
	// Over the limit without Content-Length (chunked): found while reading.
	pr, pw := io.Pipe()
	go func() { pw.Write(bigBody); pw.Close() }()
	r, _ := http.NewRequest("POST", e.srv.URL+e.objectsURL(e.colls.shared), pr)
	r.Header.Set("Authorization", "Bearer "+key)
	r.Header.Set("Content-Type", taxii.MediaType)
	resp, err := e.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || e.count(e.colls.shared) != 1 {
		t.Errorf("chunked over the limit: %d, %d entries", resp.StatusCode, e.count(e.colls.shared))
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	errorBody(t, e.get("/taxii2/api1/nothing/here/"), 404)
	r := e.do(req{method: "PUT", path: e.objectsURL("shared"), key: e.keys[entente.RoleAnalyst], body: []byte(`{}`)})
	errorBody(t, r, 405)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q", allow)
	}
	// A TAXII URL without its trailing slash is redirected to it.
	cl := *e.srv.Client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	rq, _ := http.NewRequest("GET", e.srv.URL+"/taxii2/api1/collections", nil)
	rq.Header.Set("Authorization", "Bearer "+e.keys[entente.RoleAnalyst])
	resp, err := cl.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/taxii2/api1/collections/" {
		t.Errorf("no trailing slash: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := e.do(req{path: p}); r.status != 200 {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	e.post(e.colls.shared, []json.RawMessage{indicator("indicator--"+uuidN(1), time.Now(), 1), json.RawMessage(`{}`)})
	r := e.do(req{path: "/metrics", key: e.keys[entente.RoleAdmin], header: map[string]string{"Accept": "text/plain"}})
	for _, want := range []string{
		`entente_http_requests_total{code="202",route="POST /taxii2/api1/collections/{coll}/objects/{$}"} 1`,
		"entente_taxii_objects_added_total 1",
		"entente_taxii_objects_refused_total 1",
		"entente_http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *node.Config, o *httpapi.Options) { o.RatePerSecond, o.Burst = 0.5, 5 })
	key := e.keys[entente.RoleSensor]
	for i := range 5 {
		if r := e.do(req{path: "/taxii2/", key: key}); r.status != 200 {
			t.Fatalf("request %d within the burst: %d", i, r.status)
		}
	}
	r := e.do(req{path: "/taxii2/", key: key})
	errorBody(t, r, 429)
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	// Another key has its own bucket.
	if r := e.do(req{path: "/taxii2/", key: e.keys[entente.RolePartner]}); r.status != 200 {
		t.Errorf("other key: %d", r.status)
	}
}

func TestSTIXOutputValidates(t *testing.T) {
	e := newEnv(t)
	objs := exampleObjects(t)
	e.post(e.colls.shared, objs)
	for _, q := range []string{"", "?match[version]=all", "?match[type]=indicator,malware,relationship"} {
		var env struct{ Objects []json.RawMessage }
		e.get(e.objectsURL(e.colls.shared)+q).json(t, &env)
		if len(env.Objects) == 0 {
			t.Fatalf("%s: nothing read", q)
		}
		for _, o := range env.Objects {
			schema.Check(t, o)
		}
	}
}

// TestClientKilledMidUpload sends half of a valid envelope, announcing
// the whole length, then closes the connection: nothing is stored, and
// the objects acknowledged before survive.
func TestClientKilledMidUpload(t *testing.T) {
	e := newEnv(t)
	e.post(e.colls.shared, []json.RawMessage{indicator("indicator--"+uuidN(1), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 1)})
	objs := make([]json.RawMessage, 500)
	for i := range objs {
		objs[i] = indicator("indicator--"+uuidN(100+i), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), i)
	}
	body := envelope(objs)
	for _, cut := range []int{len(body) / 2, len(body) - 1} {
		e.drain()
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nAccept: %s\r\nContent-Length: %d\r\n\r\n",
			e.objectsURL(e.colls.shared), e.keys[entente.RoleAnalyst], taxii.MediaType, taxii.MediaType, len(body))
		conn.Write(body[:cut])
		conn.Close()
		e.wait("POST ")
		if n := e.count(e.colls.shared); n != 1 {
			t.Errorf("cut at %d of %d bytes: collection holds %d entries, want 1", cut, len(body), n)
		}
	}
}

// TestLogsNeverShowKeys makes requests with good and bad keys, by Bearer
// and Basic, and checks that the request log names keys by id only.
func TestLogsNeverShowKeys(t *testing.T) {
	e := newEnv(t)
	secret := e.keys[entente.RoleAnalyst]
	e.do(req{path: "/taxii2/", key: secret})
	e.do(req{path: "/taxii2/", key: secret, basic: true})
	e.do(req{path: "/taxii2/", key: secret + "x"})
	e.do(req{method: "POST", path: "/api/v1/keys", key: e.keys[entente.RoleAdmin], body: []byte(`{"role":"sensor"}`),
		header: map[string]string{"Content-Type": "application/json"}})
	logs := e.logs.String()
	for role, k := range e.keys {
		if strings.Contains(logs, k) {
			t.Errorf("the log shows the %s key", role)
		}
		_, secretPart, _ := strings.Cut(strings.TrimPrefix(k, "ent_"), "_")
		if strings.Contains(logs, secretPart) {
			t.Errorf("the log shows the secret part of the %s key", role)
		}
	}
	if !strings.Contains(logs, `"key_id":"`+e.ids[entente.RoleAnalyst]+`"`) || !strings.Contains(logs, `"status":401`) {
		t.Errorf("the request log lacks key ids or statuses:\n%s", logs)
	}
}

// TestPendingObjectsKeepTheirBytes posts many envelopes one after another,
// so that request bodies are recycled while earlier objects are still
// pending, and checks that every object is stored exactly as it was sent.
func TestPendingObjectsKeepTheirBytes(t *testing.T) {
	e := newEnv(t)
	sent := map[string]string{}
	var statuses []taxii.Status
	for batch := 0; batch < 40; batch++ {
		var objs []json.RawMessage
		for i := 0; i < 50; i++ {
			n := batch*50 + i
			raw := indicator(fmt.Sprintf("indicator--8e2e2d2b-17d4-4cbf-938f-%012x", 0x100000+n), time.Date(2024, 1, 1, 0, 0, 0, n*int(time.Millisecond), time.UTC), n)
			var probe struct{ ID string }
			json.Unmarshal(raw, &probe)
			sent[probe.ID] = string(raw)
			objs = append(objs, raw)
		}
		r := e.do(req{method: "POST", path: e.objectsURL(e.colls.shared), key: e.keys[entente.RoleAnalyst], body: envelope(objs)})
		if r.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
		var st taxii.Status
		r.json(t, &st)
		statuses = append(statuses, st)
	}
	for _, st := range statuses {
		if st = e.complete(st, e.keys[entente.RoleAnalyst]); st.SuccessCount != 50 || st.FailureCount != 0 {
			t.Fatalf("status %s: %d successes, %d failures: %+v", st.ID, st.SuccessCount, st.FailureCount, st.Failures)
		}
	}
	page, err := e.st.QueryObjects(context.Background(), entente.ObjectQuery{Collection: e.colls.shared, Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, en := range page.Entries {
		want, ok := sent[en.ID]
		if !ok {
			continue
		}
		got++
		if string(en.Raw) != want {
			t.Fatalf("object %s stored as\n%s\nsent as\n%s", en.ID, en.Raw, want)
		}
	}
	if got != len(sent) {
		t.Fatalf("%d of %d objects stored", got, len(sent))
	}
}

// TestAddObjectsRefusesBadPatterns posts indicators whose STIX pattern
// the node's parser rejects, beside valid ones and one with another
// pattern type: the bad ones are failures whose message gives the
// parser's column and reason, and nothing of them is stored.
func TestAddObjectsRefusesBadPatterns(t *testing.T) {
	e := newEnv(t)
	mk := func(i int, pattern, typ string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uuidN(i),
			"created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "pattern": pattern,
			"pattern_type": typ, "valid_from": "2024-01-01T00:00:00Z"})
		return b
	}
	objs := []json.RawMessage{
		mk(1, "this is not a pattern", "stix"),
		mk(2, "[ipv4-addr:value = '1.2.3.4'", "stix"),
		mk(3, "[ipv4-addr:value = '1.2.3.4']", "stix"),
		mk(4, "alert tcp any any -> any any (sid:1;)", "snort"),
		mk(5, "[file:hashes.MD5 = 'xyz']", "stix"),
	}
	st := e.post(e.colls.shared, objs)
	want := map[string]string{
		"indicator--" + uuidN(1): `object 0: indicator--` + uuidN(1) + `: property "pattern": column 0: input is missing square brackets`,
		"indicator--" + uuidN(2): `object 1: indicator--` + uuidN(2) + `: property "pattern": column 28: expected AND, OR or ']' but found end of input`,
		"indicator--" + uuidN(5): `object 4: indicator--` + uuidN(5) + `: property "pattern": column 19: 'xyz' is not a valid MD5 hash`,
	}
	if st.SuccessCount != 2 || st.FailureCount != 3 {
		t.Fatalf("status %+v", st)
	}
	for _, f := range st.Failures {
		if w, ok := want[f.ID]; !ok || !strings.HasPrefix(f.Message, w) {
			t.Errorf("failure %s: %q, want it to start with %q", f.ID, f.Message, w)
		}
	}
	if n := e.count(e.colls.shared); n != 2 {
		t.Errorf("%d objects stored, want the 2 valid ones", n)
	}
}

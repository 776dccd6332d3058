package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/feedfetch"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store/sqlite"
	"github.com/entente-cti/entente/internal/taxii"
	"github.com/entente-cti/entente/internal/taxiiclient"
	"github.com/entente-cti/entente/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

const org = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"

// env is a running node: the real handler on the SQLite store, over
// loopback.
type env struct {
	t     testing.TB
	srv   *httptest.Server
	svc   *node.Service
	st    *sqlite.Store
	logs  *syncBuffer             // everything the node logged
	keys  map[entente.Role]string // a key of each role
	ids   map[entente.Role]string // their key ids
	done  chan string             // receives "METHOD path" when a request has been served
	root  string                  // "/taxii2/api1/"
	colls struct{ shared, readonly, private string }
	// noSchema skips checking exchanges against the OpenAPI
	// description (benchmarks time the node, not the check).
	noSchema bool
}

type envOption func(*node.Config, *httpapi.Options)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := node.Config{Title: "Test node", Description: "a node under test", Contact: "cert@example.org", Org: org, MaxContentLength: 1 << 20,
		Dial: taxiiclient.Dialer(nil, taxiiclient.Limits{}), FetchFeed: feedfetch.Fetch}
	hopts := httpapi.Options{MaxJSONDepth: 20}
	for _, o := range opts {
		o(&cfg, &hopts)
	}
	logs := &syncBuffer{}
	var w io.Writer = logs
	if testing.Verbose() {
		w = io.MultiWriter(logs, os.Stderr)
	}
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := node.New(st, cfg, logger)
	e := &env{t: t, svc: svc, st: st, logs: logs, keys: map[entente.Role]string{}, ids: map[entente.Role]string{},
		done: make(chan string, 10000), root: "/taxii2/api1/"}
	admin := node.LocalAdmin(org)
	for _, r := range []entente.Role{entente.RoleAdmin, entente.RoleAnalyst, entente.RolePartner, entente.RoleSensor} {
		secret, k, err := svc.CreateKey(ctx, admin, node.NewKey{Name: string(r), Role: r})
		if err != nil {
			t.Fatal(err)
		}
		e.keys[r], e.ids[r] = secret, k.ID
	}
	mk := func(alias string, read, write []entente.Role) string {
		c, err := svc.CreateCollection(ctx, admin, entente.Collection{Alias: alias, Title: alias + " collection", ReadRoles: read, WriteRoles: write})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	e.colls.shared = mk("shared", []entente.Role{entente.RoleAnalyst, entente.RolePartner, entente.RoleSensor}, []entente.Role{entente.RoleAnalyst, entente.RoleSensor})
	e.colls.readonly = mk("readonly", []entente.Role{entente.RoleAnalyst, entente.RoleSensor}, []entente.Role{entente.RoleAnalyst})
	e.colls.private = mk("private", []entente.Role{entente.RoleAnalyst}, []entente.Role{entente.RoleAnalyst})
	h := httpapi.New(svc, hopts, logger, prometheus.NewRegistry())
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		select {
		case e.done <- r.Method + " " + r.URL.Path:
		default:
		}
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// response is what a request got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode response %s: %v", r.body, err)
	}
}

// req describes a request; zero fields take TAXII defaults.
type req struct {
	method, path string
	key          string // Bearer key; "" for none
	basic        bool   // send key as HTTP Basic password instead
	body         []byte
	header       map[string]string
}

func (e *env) do(q req) response {
	e.t.Helper()
	if q.method == "" {
		q.method = "GET"
	}
	var body io.Reader
	if q.body != nil {
		body = bytes.NewReader(q.body)
	}
	r, err := http.NewRequest(q.method, e.srv.URL+q.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Accept", taxii.MediaType)
	if q.body != nil {
		r.Header.Set("Content-Type", taxii.MediaType)
	}
	if q.key != "" {
		if q.basic {
			r.SetBasicAuth("any-user", q.key)
		} else {
			r.Header.Set("Authorization", "Bearer "+q.key)
		}
	}
	for k, v := range q.header {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if !e.noSchema {
		checkExchange(e.t, q.method, q.path, q.body, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// get is a GET by the analyst.
func (e *env) get(path string) response {
	e.t.Helper()
	return e.do(req{path: path, key: e.keys[entente.RoleAnalyst]})
}

func (e *env) objectsURL(coll string) string { return e.root + "collections/" + coll + "/objects/" }

// post posts objects to coll as the analyst and returns the status.
func (e *env) post(coll string, objs []json.RawMessage) taxii.Status {
	e.t.Helper()
	r := e.do(req{method: "POST", path: e.objectsURL(coll), key: e.keys[entente.RoleAnalyst], body: envelope(objs)})
	if r.status != http.StatusAccepted {
		e.t.Fatalf("POST objects: %d %s", r.status, r.body)
	}
	var st taxii.Status
	r.json(e.t, &st)
	return e.complete(st, e.keys[entente.RoleAnalyst])
}

// complete polls a status resource, as a TAXII client does, until it is
// complete, and returns it.
func (e *env) complete(st taxii.Status, key string) taxii.Status {
	e.t.Helper()
	for i := 0; st.Status != taxii.StatusComplete; i++ {
		if i == 500 {
			e.t.Fatalf("status %s still %s after 5s", st.ID, st.Status)
		}
		time.Sleep(10 * time.Millisecond)
		r := e.do(req{method: "GET", path: e.root + "status/" + st.ID + "/", key: key})
		if r.status != http.StatusOK {
			e.t.Fatalf("GET status %s: %d %s", st.ID, r.status, r.body)
		}
		st = taxii.Status{}
		r.json(e.t, &st)
	}
	return st
}

// count returns how many entries (all versions) coll holds.
func (e *env) count(coll string) int {
	e.t.Helper()
	page, err := e.st.QueryObjects(context.Background(), entente.ObjectQuery{Collection: coll, Versions: entente.VersionFilter{All: true}, MetadataOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(page.Entries)
}

// drain forgets the requests served so far.
func (e *env) drain() {
	for {
		select {
		case <-e.done:
		default:
			return
		}
	}
}

// wait blocks until the server has finished serving a request matching
// prefix.
func (e *env) wait(prefix string) {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-e.done:
			if strings.HasPrefix(s, prefix) {
				return
			}
		case <-timeout:
			e.t.Fatalf("the server did not finish a request %q", prefix)
		}
	}
}

func envelope(objs []json.RawMessage) []byte {
	b, err := json.Marshal(map[string]any{"objects": objs})
	if err != nil {
		panic(err)
	}
	return b
}

// errorBody checks that r is a TAXII error with the given status.
func errorBody(t testing.TB, r response, status int) taxii.Error {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != taxii.MediaType {
		t.Errorf("error Content-Type %q, want %q", ct, taxii.MediaType)
	}
	var e taxii.Error
	r.json(t, &e)
	if e.Title == "" || e.HTTPStatus != fmt.Sprint(status) {
		t.Errorf("error body %s lacks a title or the right http_status", r.body)
	}
	return e
}

// exampleObjects returns the distinct valid objects of the OASIS example
// bundles in the shared data.
func exampleObjects(t testing.TB) []json.RawMessage {
	t.Helper()
	dir := testutil.SharedData(t, "stix", "examples")
	var out []json.RawMessage
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		objs, err := taxii.SplitEnvelope(b, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, raw := range objs {
			o, err := stix.Decode(raw)
			if err != nil || stix.Validate(o) != nil {
				continue
			}
			k := o.ID + "|" + o.Version().String()
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("only %d valid example objects", len(out))
	}
	return out
}

// indicator returns a valid indicator with the given id and modified
// time (created is fixed).
func indicator(id string, modified time.Time, i int) json.RawMessage {
	created := "2024-01-01T00:00:00.000Z"
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,`+
		`"name":"test indicator %d","indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '198.51.100.%d']",`+
		`"pattern_type":"stix","valid_from":%q}`, id, created, stix.FormatTimestamp(modified), i, i%250+1, created))
}

func uuidN(i int) string { return fmt.Sprintf("8e2e2d2b-17d4-4cbf-938f-%012x", i) }

func ids(raws []json.RawMessage) []string {
	var out []string
	for _, r := range raws {
		var o struct{ ID string }
		json.Unmarshal(r, &o)
		out = append(out, o.ID)
	}
	slices.Sort(out)
	return out
}

func compact(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

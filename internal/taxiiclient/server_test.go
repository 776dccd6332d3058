package taxiiclient_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/stix"
)

// fakeServer is a minimal but conformant TAXII 2.1 server for the tests:
// discovery, one API root, collections, objects (added_after, limit, next,
// more, X-TAXII-Date-Added-First/Last), POST with status resources. Its
// misbehave hook lets a test break any response.
type fakeServer struct {
	srv *httptest.Server

	// n objects numbered 0..n-1; object i was added at base + i µs.
	n        int
	gen      func(i int) []byte
	pageSize int
	maxLen   int64
	noNext   bool // page with added_after only: more: true without next

	mu         sync.Mutex
	tokens     map[string]token
	pushed     [][]byte
	statuses   map[string]*statusEntry
	pollsUntil int // status polls answered "pending" before "complete"

	// misbehave, when set, may answer a request itself (return true).
	misbehave func(w http.ResponseWriter, r *http.Request, count int64) bool
	requests  atomic.Int64
	objReqs   atomic.Int64
}

type token struct {
	addedAfter string
	offset     int
}

type statusEntry struct {
	status taxiiStatus
	polls  int
}

type taxiiStatus struct {
	ID               string           `json:"id"`
	Status           string           `json:"status"`
	RequestTimestamp string           `json:"request_timestamp"`
	TotalCount       int              `json:"total_count"`
	SuccessCount     int              `json:"success_count"`
	Successes        []map[string]any `json:"successes,omitempty"`
	FailureCount     int              `json:"failure_count"`
	Failures         []map[string]any `json:"failures,omitempty"`
	PendingCount     int              `json:"pending_count"`
}

const mediaTAXII = "application/taxii+json;version=2.1"

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func dateAdded(i int) time.Time { return base.Add(time.Duration(i) * time.Microsecond) }

func fmtAdded(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// indicator returns a small valid STIX indicator numbered i.
func indicator(i int) []byte {
	b := make([]byte, 0, 320)
	b = append(b, `{"type":"indicator","spec_version":"2.1","id":"indicator--`...)
	b = fmt.Appendf(b, "%08x-0000-4000-8000-%012x", i, i)
	b = append(b, `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.`...)
	b = strconv.AppendInt(b, int64(i>>16&255), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(i>>8&255), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(i&255), 10)
	b = append(b, `']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`...)
	return b
}

func newFakeServer(t testing.TB, n int) *fakeServer { return newFakeServerTLS(t, n, false) }

// newFakeServerTLS is newFakeServer, serving HTTPS (httptest's
// certificate) when useTLS is set.
func newFakeServerTLS(t testing.TB, n int, useTLS bool) *fakeServer {
	f := &fakeServer{n: n, gen: indicator, pageSize: 100, maxLen: 10 << 20,
		tokens: map[string]token{}, statuses: map[string]*statusEntry{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /taxii2/{$}", f.discovery)
	mux.HandleFunc("GET /api1/{$}", f.apiRoot)
	mux.HandleFunc("GET /api1/collections/{$}", f.collections)
	mux.HandleFunc("GET /api1/collections/{id}/objects/{$}", f.getObjects)
	mux.HandleFunc("POST /api1/collections/{id}/objects/{$}", f.postObjects)
	mux.HandleFunc("GET /api1/status/{id}/{$}", f.status)
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := f.requests.Add(1)
		if f.misbehave != nil && f.misbehave(w, r, c) {
			return
		}
		if r.Header.Get("Authorization") != "Bearer secret" {
			taxiiError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		if !strings.HasPrefix(r.Header.Get("Accept"), "application/taxii+json") {
			taxiiError(w, http.StatusNotAcceptable, "not acceptable")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	if useTLS {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	return f
}

func taxiiError(w http.ResponseWriter, code int, title string) {
	w.Header().Set("Content-Type", mediaTAXII)
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"title":%q,"http_status":"%d"}`, title, code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", mediaTAXII)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"title": "fake", "default": f.srv.URL + "/api1/", "api_roots": []string{f.srv.URL + "/api1/"}})
}

func (f *fakeServer) apiRoot(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"title": "api1", "versions": []string{mediaTAXII}, "max_content_length": f.maxLen})
}

func (f *fakeServer) collections(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"collections": []map[string]any{
		{"id": "c1", "title": "one", "can_read": true, "can_write": true, "media_types": []string{"application/stix+json;version=2.1"}},
	}})
}

func (f *fakeServer) getObjects(w http.ResponseWriter, r *http.Request) {
	f.objReqs.Add(1)
	q := r.URL.Query()
	start := 0
	aa := q.Get("added_after")
	if aa != "" {
		t, err := time.Parse(time.RFC3339Nano, aa)
		if err != nil {
			taxiiError(w, 400, "bad added_after")
			return
		}
		start = sort.Search(f.n, func(i int) bool { return dateAdded(i).After(t) })
	}
	if nt := q.Get("next"); nt != "" {
		f.mu.Lock()
		tok, ok := f.tokens[nt]
		f.mu.Unlock()
		if !ok || tok.addedAfter != aa {
			taxiiError(w, 400, "unknown next")
			return
		}
		start += tok.offset
	}
	limit := f.pageSize
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	end := min(start+limit, f.n)
	w.Header().Set("Content-Type", mediaTAXII)
	if start < end {
		w.Header().Set("X-TAXII-Date-Added-First", fmtAdded(dateAdded(start)))
		w.Header().Set("X-TAXII-Date-Added-Last", fmtAdded(dateAdded(end-1)))
	}
	buf := make([]byte, 0, (end-start)*300+100)
	more := end < f.n
	buf = append(buf, `{"more":`...)
	buf = strconv.AppendBool(buf, more)
	if more && !f.noNext {
		off := end
		if aa != "" {
			t, _ := time.Parse(time.RFC3339Nano, aa)
			off = end - sort.Search(f.n, func(i int) bool { return dateAdded(i).After(t) })
		}
		nt := fmt.Sprintf("tok-%d-%d", off, len(aa))
		f.mu.Lock()
		f.tokens[nt] = token{addedAfter: aa, offset: off}
		f.mu.Unlock()
		buf = append(buf, `,"next":"`...)
		buf = append(buf, nt...)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"objects":[`...)
	for i := start; i < end; i++ {
		if i > start {
			buf = append(buf, ',')
		}
		buf = append(buf, f.gen(i)...)
	}
	buf = append(buf, "]}"...)
	w.Write(buf)
}

func (f *fakeServer) postObjects(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/taxii+json") {
		taxiiError(w, http.StatusUnsupportedMediaType, "unsupported media type")
		return
	}
	if r.ContentLength > f.maxLen {
		taxiiError(w, http.StatusRequestEntityTooLarge, "too large")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, f.maxLen+1))
	if int64(len(body)) > f.maxLen {
		taxiiError(w, http.StatusRequestEntityTooLarge, "too large")
		return
	}
	var env struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		taxiiError(w, 400, "bad envelope")
		return
	}
	st := taxiiStatus{ID: fmt.Sprintf("%08x-0000-4000-8000-000000000000", f.requests.Load()), RequestTimestamp: fmtAdded(time.Now()),
		TotalCount: len(env.Objects)}
	f.mu.Lock()
	for _, raw := range env.Objects {
		o, err := stix.Decode(raw)
		if err == nil {
			err = stix.Validate(o)
		}
		if err != nil {
			id := ""
			if o != nil {
				id = o.ID
			}
			st.FailureCount++
			st.Failures = append(st.Failures, map[string]any{"id": id, "version": "", "message": err.Error()})
			continue
		}
		f.pushed = append(f.pushed, raw)
		st.SuccessCount++
		st.Successes = append(st.Successes, map[string]any{"id": o.ID, "version": stix.FormatTimestamp(o.Version())})
	}
	final := st
	final.Status = "complete"
	if f.pollsUntil > 0 {
		st.Status, st.PendingCount, st.SuccessCount, st.Successes = "pending", st.SuccessCount, 0, nil
	} else {
		st = final
	}
	f.statuses[st.ID] = &statusEntry{status: final}
	f.mu.Unlock()
	writeJSON(w, http.StatusAccepted, st)
}

func (f *fakeServer) status(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	e, ok := f.statuses[r.PathValue("id")]
	var st taxiiStatus
	if ok {
		e.polls++
		st = e.status
		if e.polls < f.pollsUntil {
			st.Status, st.PendingCount, st.SuccessCount, st.Successes = "pending", st.SuccessCount, 0, nil
		}
	}
	f.mu.Unlock()
	if !ok {
		taxiiError(w, 404, "no such status")
		return
	}
	writeJSON(w, 200, st)
}

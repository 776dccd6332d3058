package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/taxii"
)

// TestEveryClientErrorIsJSON provokes each 4xx the server can give on
// the TAXII routes, the node API and the exports, and checks that each is
// a TAXII error message (JSON, application/taxii+json;version=2.1, with
// a title and the status) that says what is wrong.
func TestEveryClientErrorIsJSON(t *testing.T) {
	e := newEnv(t)
	an, admin, sensor := e.keys[entente.RoleAnalyst], e.keys[entente.RoleAdmin], e.keys[entente.RoleSensor]
	objects := e.objectsURL(e.colls.shared)
	ind := indicator("indicator--"+uuidN(1), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	big := bytes.Repeat([]byte(" "), 1<<20+1) // one byte over max_content_length
	manyIDs := make([]string, 2000)
	for i := range manyIDs {
		manyIDs[i] = "indicator--" + uuidN(i)
	}
	json400 := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name   string
		q      req
		status int
		says   string // part of the description
	}{
		// TAXII
		{"taxii: malformed JSON", req{method: "POST", path: objects, key: an, body: []byte(`{"objects":[{]}`)}, 400, "malformed JSON"},
		{"taxii: bad filter value", req{path: objects + "?limit=many", key: an}, 400, "limit"},
		{"api: unknown query parameter", req{path: "/api/v1/alerts?since=2024", key: an}, 400, `query parameter "since"`},
		{"taxii: dot segments", req{path: objects + "../../..", key: an}, 400, "canonical form"},
		{"taxii: encoded dot segments", req{path: objects + "%2e%2e/%2e%2e/", key: an}, 400, "canonical form"},
		{"taxii: empty segment", req{path: "/taxii2//api1/", key: an}, 400, "canonical form"},
		{"taxii: no key", req{path: objects}, 401, "API key"},
		{"taxii: wrong key", req{path: objects, key: "nope"}, 401, "API key"},
		{"taxii: write not allowed", req{method: "POST", path: e.objectsURL(e.colls.readonly), key: sensor, body: envelope([]json.RawMessage{ind})}, 403, ""},
		{"taxii: unknown collection", req{path: e.objectsURL("nope"), key: an}, 404, ""},
		{"taxii: no such route", req{path: "/taxii2/api1/nothing/", key: an}, 404, "no such resource"},
		{"taxii: unknown status", req{path: e.root + "status/00000000-0000-4000-8000-000000000000/", key: an}, 404, ""},
		{"taxii: method not allowed", req{method: "PUT", path: objects, key: an, body: []byte(`{}`)}, 405, "Allow"},
		{"taxii: not acceptable", req{path: objects, key: an, header: map[string]string{"Accept": "application/xml"}}, 406, "Accept"},
		{"taxii: body too large", req{method: "POST", path: objects, key: an, body: big}, 413, "limit"},
		{"taxii: wrong media type", req{method: "POST", path: objects, key: an, body: envelope([]json.RawMessage{ind}), header: json400}, 415, "Content-Type"},
		{"taxii: request line too long", req{path: objects + "?match[id]=" + strings.Join(manyIDs, ","), key: an}, 431, "match[]"},
		// Node API
		{"api: since on the audit", req{path: "/api/v1/audit?since=garbage", key: an}, 400, `query parameter "since"`},
		{"api: from on the audit", req{path: "/api/v1/audit?from=garbage", key: an}, 400, `query parameter "from"`},
		{"api: alert status", req{path: "/api/v1/alerts?status=garbage", key: an}, 400, `query parameter "status"`},
		{"api: a parameter where none is taken", req{path: "/api/v1/whoami?x=1", key: an}, 400, `query parameter "x"`},
		{"api: malformed body", req{method: "POST", path: "/api/v1/keys", key: admin, body: []byte(`{"name":`), header: json400}, 400, ""},
		{"api: unknown field", req{method: "POST", path: "/api/v1/keys", key: admin, body: []byte(`{"nom":"x"}`), header: json400}, 400, "expected form"},
		{"api: dot segments", req{path: "/api/v1/../v1/whoami", key: an}, 400, "canonical form"},
		{"api: no key", req{path: "/api/v1/whoami"}, 401, "API key"},
		{"api: admin route", req{path: "/api/v1/keys", key: an}, 403, ""},
		{"api: no such route", req{path: "/api/v1/nothing", key: an}, 404, "no such resource"},
		{"api: unknown alert", req{path: "/api/v1/alerts/x-entente-alert--00000000-0000-4000-8000-000000000000", key: an}, 404, ""},
		{"api: method not allowed", req{method: "DELETE", path: "/api/v1/whoami", key: an}, 405, "Allow"},
		{"api: body too large", req{method: "POST", path: "/api/v1/keys", key: admin, body: bytes.Repeat([]byte(" "), 2<<20), header: json400}, 413, "limit"},
		{"api: wrong media type", req{method: "POST", path: "/api/v1/keys", key: admin, body: []byte(`{}`), header: map[string]string{"Content-Type": "text/plain"}}, 415, "Content-Type"},
		{"api: sightings media type", req{method: "POST", path: "/api/v1/sightings", key: sensor, body: []byte(`{}`), header: map[string]string{"Content-Type": "text/csv"}}, 415, "Content-Type"},
		{"api: a partner's malformed constituency", req{method: "PUT", path: "/api/v1/partners/identity--00000000-0000-4000-8000-0000000000de", key: admin,
			body: []byte(`{"country":"DE","constituency":["81.20.8.0/24","not a network"]}`), header: json400}, 400, `constituency: partner-constituency entry "not a network"`},
		{"api: header too long", req{path: "/api/v1/whoami", key: an, header: map[string]string{"X-Padding": strings.Repeat("p", 70<<10)}}, 431, "limit"},
		// Exports
		{"export: unknown parameter", req{path: "/export/plain?format=csv", key: an}, 400, `query parameter "format"`},
		{"export: bad country", req{path: "/export/plain?country=XX", key: an}, 400, "ISO 3166-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.q)
			got := errorBody(t, r, tt.status)
			if !strings.Contains(got.Description, tt.says) {
				t.Errorf("description %q does not say %q", got.Description, tt.says)
			}
			if bytes.Contains(r.body, []byte("<")) {
				t.Errorf("body holds markup: %s", r.body)
			}
		})
	}
}

// TestRefusalsWithRetryAfter provokes the 429s and the 503: the rate
// limit, the per-key body memory bound and the node's, each a TAXII
// error with Retry-After.
func TestRefusalsWithRetryAfter(t *testing.T) {
	e := newEnv(t, func(c *node.Config, o *httpapi.Options) {
		o.BodyMemoryPerKey, o.BodyMemoryTotal = 1<<20, 2<<20
	})
	an, sensor := e.keys[entente.RoleAnalyst], e.keys[entente.RoleSensor]
	url := e.srv.URL + e.objectsURL(e.colls.shared)

	// A body of 600 KB (charged 1.2 MB), announced and then held back:
	// the analyst's key now holds more than its 1 MiB.
	pr, pw := io.Pipe()
	slow, _ := http.NewRequest("POST", url, pr)
	slow.ContentLength = 600 << 10
	slow.Header.Set("Authorization", "Bearer "+an)
	slow.Header.Set("Content-Type", taxii.MediaType)
	slowDone := make(chan int, 1)
	go func() {
		resp, err := e.srv.Client().Do(slow)
		if err != nil {
			slowDone <- 0
			return
		}
		resp.Body.Close()
		slowDone <- resp.StatusCode
	}()
	// Enough for the client to flush the request's head.
	pw.Write(append([]byte(`{"objects":[`), bytes.Repeat([]byte(" "), 16<<10)...))
	for i := 0; bodyMemory(t, e) != 2*600<<10; i++ { // until the slow request is charged
		if i == 500 {
			t.Fatalf("the slow request is not charged: %d bytes", bodyMemory(t, e))
		}
		time.Sleep(10 * time.Millisecond)
	}
	body := envelope([]json.RawMessage{indicator("indicator--"+uuidN(2), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 2)})
	r := e.do(req{method: "POST", path: e.objectsURL(e.colls.shared), key: an, body: body})
	got := errorBody(t, r, http.StatusTooManyRequests)
	if !strings.Contains(got.Description, "this API key's requests already hold") || r.header.Get("Retry-After") == "" {
		t.Errorf("per-key refusal: %q, Retry-After %q", got.Description, r.header.Get("Retry-After"))
	}
	// Another key, with a body that fits its own bound but not the
	// node's: 503.
	mid := make([]json.RawMessage, 0, 1500)
	for i := range 1500 {
		mid = append(mid, indicator("indicator--"+uuidN(100+i), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), i))
	}
	r = e.do(req{method: "POST", path: e.objectsURL(e.colls.shared), key: sensor, body: envelope(mid)})
	got = errorBody(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(got.Description, "request bodies") || r.header.Get("Retry-After") == "" {
		t.Errorf("node refusal: %q, Retry-After %q", got.Description, r.header.Get("Retry-After"))
	}
	// The slow request ends (malformed: it is cut short): its memory is
	// given back and the others get in.
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-slowDone
	for i := 0; bodyMemory(t, e) != 0; i++ {
		if i == 500 {
			t.Fatalf("the slow request's memory is still charged: %d bytes", bodyMemory(t, e))
		}
		time.Sleep(10 * time.Millisecond)
	}
	r = e.do(req{method: "POST", path: e.objectsURL(e.colls.shared), key: sensor, body: envelope(mid)})
	if r.status != http.StatusAccepted {
		t.Fatalf("after the slow request ended: %d %.200s", r.status, r.body)
	}
	// Its objects hold their memory until they are stored: once the
	// status is complete, the analyst gets in too.
	var st taxii.Status
	r.json(t, &st)
	if st = e.complete(st, sensor); st.SuccessCount != len(mid) {
		t.Fatalf("status %+v", st)
	}
	if n := bodyMemory(t, e); n != 0 {
		t.Errorf("%d bytes still charged once every request is complete", n)
	}
	if r := e.do(req{method: "POST", path: e.objectsURL(e.colls.shared), key: an, body: body}); r.status != http.StatusAccepted {
		t.Errorf("the analyst after the sensor's objects were stored: %d %.200s", r.status, r.body)
	}

	rl := newEnv(t, func(c *node.Config, o *httpapi.Options) { o.RatePerSecond, o.Burst = 0.5, 1 })
	rl.do(req{path: "/api/v1/whoami", key: rl.keys[entente.RoleAnalyst]})
	r = rl.do(req{path: "/api/v1/whoami", key: rl.keys[entente.RoleAnalyst]})
	errorBody(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Error("rate limit without Retry-After")
	}
}

// TestRedirectIsJSON checks that the one redirect the TAXII routes give
// (a URL without its trailing slash) keeps its Location but has a JSON
// body, not the mux's HTML.
func TestRedirectIsJSON(t *testing.T) {
	e := newEnv(t)
	cl := *e.srv.Client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	rq, _ := http.NewRequest("GET", e.srv.URL+"/taxii2/api1/collections", nil)
	rq.Header.Set("Authorization", "Bearer "+e.keys[entente.RoleAnalyst])
	resp, err := cl.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var te taxii.Error
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/taxii2/api1/collections/" ||
		resp.Header.Get("Content-Type") != taxii.MediaType || json.Unmarshal(b, &te) != nil || !strings.Contains(te.Description, "/taxii2/api1/collections/") {
		t.Errorf("redirect: %d %q %q %s", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"), b)
	}
}

// TestTooLargeReadByClientThatSendsFirst posts, on a raw connection, a
// body just over max_content_length and writes all of it before reading
// the answer, as Python's urllib and requests do: the client must read a
// 413 TAXII error, not a reset connection; so must a client whose body
// is refused before it is read (a media type the route does not take).
func TestTooLargeReadByClientThatSendsFirst(t *testing.T) {
	// Bodies larger than the socket buffers: a server that stops reading
	// makes the client's write block, and then resets the connection.
	const limit = 16 << 20
	e := newEnv(t, func(c *node.Config, o *httpapi.Options) { c.MaxContentLength = limit })
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	for _, tc := range []struct {
		name, contentType string
		size              int
		status            int
		chunked           bool
	}{
		{"just over the limit", taxii.MediaType, limit + 100, 413, false},
		{"just over the limit, chunked", taxii.MediaType, limit + 100, 413, true},
		{"refused media type", "text/plain", limit - 100, 415, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			var head bytes.Buffer
			fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nAccept: %s\r\n",
				e.objectsURL(e.colls.shared), addr, e.keys[entente.RoleAnalyst], tc.contentType, taxii.MediaType)
			body := append([]byte(`{"objects":[`), bytes.Repeat([]byte(" "), tc.size)...)
			if tc.chunked {
				fmt.Fprintf(&head, "Transfer-Encoding: chunked\r\n\r\n")
				for p := body; len(p) > 0; {
					n := min(len(p), 64<<10)
					fmt.Fprintf(&head, "%x\r\n%s\r\n", n, p[:n])
					p = p[n:]
				}
				head.WriteString("0\r\n\r\n")
			} else {
				fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", len(body))
				head.Write(body)
			}
			// Everything first, then read.
			if _, err := conn.Write(head.Bytes()); err != nil {
				t.Fatalf("writing the request: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("reading the answer's body: %v", err)
			}
			errorBody(t, response{resp.StatusCode, resp.Header, b}, tc.status)
		})
	}
}

// bodyMemory reads the memory charged to request bodies from /metrics.
func bodyMemory(t *testing.T, e *env) int64 {
	t.Helper()
	r := e.do(req{path: "/metrics", key: e.keys[entente.RoleAdmin], header: map[string]string{"Accept": "text/plain"}})
	for _, l := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(l, "entente_http_body_memory_bytes "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return int64(f)
		}
	}
	t.Fatalf("/metrics has no entente_http_body_memory_bytes: %.300s", r.body)
	return 0
}

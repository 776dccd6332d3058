package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/dashboard"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// client is a browser-like HTTP client with a cookie jar.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newClient(t *testing.T, tn *testNode) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: tn.srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path, body string, hdr map[string]string) (*http.Response, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp, m
}

func (c *client) login(key string) *http.Response {
	c.t.Helper()
	resp, m := c.do("POST", "/ui/api/login", `{"key":"`+key+`"}`, nil)
	if s, ok := m["csrf"].(string); ok {
		c.csrf = s
	}
	return resp
}

func TestSignInCookieAndRoles(t *testing.T) {
	tn := newTestNode(t)
	for _, tc := range []struct {
		name string
		key  string
		want int
	}{
		{"analyst", tn.keys[entente.RoleAnalyst], http.StatusOK},
		{"admin", tn.keys[entente.RoleAdmin], http.StatusOK},
		{"sensor", tn.keys[entente.RoleSensor], http.StatusForbidden},
		{"partner", tn.keys[entente.RolePartner], http.StatusForbidden},
		{"unknown key", "ent_000000000000_nope", http.StatusUnauthorized},
		{"empty", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tn)
			resp := c.login(tc.key)
			if resp.StatusCode != tc.want {
				t.Fatalf("sign-in: %s, want %d", resp.Status, tc.want)
			}
			cookies := resp.Cookies()
			if tc.want != http.StatusOK {
				if len(cookies) != 0 {
					t.Fatalf("a refused sign-in set cookies: %v", cookies)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("cookies %v", cookies)
			}
			ck := cookies[0]
			if ck.Name != dashboard.CookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui/" {
				t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/", ck)
			}
			if strings.Contains(ck.Value, tc.key) || len(ck.Value) < 40 {
				t.Fatalf("session token %q is not a random token", ck.Value)
			}
		})
	}
}

func TestUnauthenticatedAndCSRF(t *testing.T) {
	tn := newTestNode(t)
	anon := newClient(t, tn)
	for _, path := range []string{"/ui/api/overview", "/ui/api/alerts", "/ui/api/search?q=1.2.3.4", "/ui/api/events", "/ui/api/session"} {
		if resp, _ := anon.do("GET", path, "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %s", path, resp.Status)
		}
	}
	// The page and its assets are public (they hold no data).
	if resp, _ := anon.do("GET", "/ui/", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("GET /ui/: %s, CSP %q", resp.Status, resp.Header.Get("Content-Security-Policy"))
	}
	// A bearer key does not open the dashboard's API: only a session.
	if resp, _ := anon.do("GET", "/ui/api/alerts", "", map[string]string{"Authorization": "Bearer " + tn.keys[entente.RoleAdmin]}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bearer key on the dashboard API: %s", resp.Status)
	}
	// Sign-in only from JSON (a cross-site form cannot send it).
	if resp, _ := anon.do("POST", "/ui/api/login", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form sign-in: %s", resp.Status)
	}

	tn.postSightings(t, sightingsBundle(0, 0, 1))
	c := newClient(t, tn)
	c.login(tn.keys[entente.RoleAnalyst])
	_, m := c.do("GET", "/ui/api/alerts", "", nil)
	alerts, _ := m["alerts"].([]any)
	if len(alerts) != 1 {
		t.Fatalf("alerts %v", m)
	}
	id := alerts[0].(map[string]any)["id"].(string)
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no token", nil, http.StatusForbidden},
		{"wrong token", map[string]string{dashboard.CSRFHeader: "x" + c.csrf}, http.StatusForbidden},
		{"other origin", map[string]string{dashboard.CSRFHeader: c.csrf, "Origin": "https://evil.example"}, http.StatusForbidden},
		{"token", map[string]string{dashboard.CSRFHeader: c.csrf}, http.StatusOK},
		{"again: not new any more", map[string]string{dashboard.CSRFHeader: c.csrf}, http.StatusConflict},
	} {
		resp, m := c.do("POST", "/ui/api/alerts/"+id+"/ack", `{"note":"on it"}`, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("ack, %s: %s %v, want %d", tc.name, resp.Status, m, tc.want)
		}
	}
	// Sign-out ends the session on the server: the old cookie is dead.
	jarCookies := c.c.Jar.Cookies(mustURL(t, tn.srv.URL+"/ui/"))
	if resp, _ := c.do("POST", "/ui/api/logout", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %s", resp.Status)
	}
	if resp, _ := c.do("POST", "/ui/api/logout", "", map[string]string{dashboard.CSRFHeader: c.csrf}); resp.StatusCode != http.StatusNoContent {
		t.Errorf("logout: %s", resp.Status)
	}
	replay := newClient(t, tn)
	replay.c.Jar.SetCookies(mustURL(t, tn.srv.URL+"/ui/"), jarCookies)
	if resp, _ := replay.do("GET", "/ui/api/session", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the cookie of a signed-out session: %s", resp.Status)
	}
}

func TestRevokedKeyEndsSession(t *testing.T) {
	tn := newTestNode(t)
	c := newClient(t, tn)
	if resp := c.login(tn.keys[entente.RoleAnalyst]); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	admin := newClient(t, tn)
	admin.login(tn.keys[entente.RoleAdmin])
	// Revoke through the node API.
	_, who := c.do("GET", "/ui/api/session", "", nil)
	req, _ := http.NewRequest("DELETE", tn.srv.URL+"/api/v1/keys/"+who["key_id"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+tn.keys[entente.RoleAdmin])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()
	if resp, _ := c.do("GET", "/ui/api/alerts", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session of a revoked key: %s", resp.Status)
	}
}

// TestAnalystPagesAndAdminPages: an analyst reads alerts, partners and
// agreements but not the audit log, peers or feeds (the node decides:
// admin only), as the README's role table says.
func TestAnalystPagesAndAdminPages(t *testing.T) {
	tn := newTestNode(t)
	analyst, admin := newClient(t, tn), newClient(t, tn)
	analyst.login(tn.keys[entente.RoleAnalyst])
	admin.login(tn.keys[entente.RoleAdmin])
	for _, tc := range []struct {
		path           string
		analyst, admin int
	}{
		{"/ui/api/overview?window=24h&buckets=24", 200, 200},
		{"/ui/api/overview?window=1000h", 400, 400},
		{"/ui/api/alerts", 200, 200},
		{"/ui/api/audit", 403, 200},
		{"/ui/api/partners", 200, 200},
		{"/ui/api/partners/blind", 200, 200},
		{"/ui/api/peers", 403, 200},
		{"/ui/api/feeds", 403, 200},
		{"/ui/api/objects/" + threats[0].indicator, 200, 200},
		{"/ui/api/objects/indicator--00000000-0000-4000-8000-000000000000", 404, 404},
		{"/ui/api/search?q=not a value", 400, 400},
	} {
		if resp, m := analyst.do("GET", tc.path, "", nil); resp.StatusCode != tc.analyst {
			t.Errorf("analyst GET %s: %s %v, want %d", tc.path, resp.Status, m, tc.analyst)
		}
		if resp, m := admin.do("GET", tc.path, "", nil); resp.StatusCode != tc.admin {
			t.Errorf("admin GET %s: %s %v, want %d", tc.path, resp.Status, m, tc.admin)
		}
	}
}

// TestSearchAndObject: a value finds its indicator through the pattern
// and its observable through the SCO id; the object page shows
// versions, markings, relationships and sightings.
func TestSearchAndObject(t *testing.T) {
	tn := newTestNode(t)
	tn.postSightings(t, sightingsBundle(0, 0, 1, 2))
	c := newClient(t, tn)
	c.login(tn.keys[entente.RoleAnalyst])
	for _, tc := range []struct {
		q    string
		want map[string]string // id → why
	}{
		{threats[0].ip, map[string]string{threats[0].indicator: "indicator"}},
		{" " + threats[1].ip + " ", map[string]string{threats[1].indicator: "indicator"}},
		{threats[0].malware, map[string]string{threats[0].malware: "id"}},
		{"192.0.2.200", map[string]string{}},
	} {
		_, m := c.do("GET", "/ui/api/search?q="+urlQuery(tc.q), "", nil)
		got := map[string]string{}
		for _, r := range m["results"].([]any) {
			r := r.(map[string]any)
			got[r["id"].(string)] = r["why"].(string)
		}
		if len(got) != len(tc.want) {
			t.Errorf("search %q: %v, want %v", tc.q, got, tc.want)
		}
		for id, why := range tc.want {
			if got[id] != why {
				t.Errorf("search %q: %s found as %q, want %q", tc.q, id, got[id], why)
			}
		}
	}
	_, d := c.do("GET", "/ui/api/objects/"+threats[0].indicator, "", nil)
	if n := len(d["versions"].([]any)); n != 1 {
		t.Errorf("versions: %d", n)
	}
	if m := d["markings"].([]any); len(m) != 1 || m[0] != "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" {
		t.Errorf("markings %v", m)
	}
	rels := d["relationships"].([]any)
	if len(rels) != 1 || rels[0].(map[string]any)["other"] != threats[0].malware || rels[0].(map[string]any)["type"] != "indicates" {
		t.Errorf("relationships %v", rels)
	}
	if n := len(d["sightings"].([]any)); n != 3 {
		t.Errorf("sightings of the indicator: %d, want 3", n)
	}
}

// TestEventStream: an alert raised while a client follows the stream
// arrives as an "alert" event naming its countries.
func TestEventStream(t *testing.T) {
	tn := newTestNode(t)
	c := newClient(t, tn)
	c.login(tn.keys[entente.RoleAnalyst])
	req, _ := http.NewRequest("GET", tn.srv.URL+"/ui/api/events", nil)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	got := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				ev = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				got <- ev + " " + d
			}
		}
		close(got)
	}()
	tn.postSightings(t, sightingsBundle(0, 0, 1))
	deadline := time.After(10 * time.Second)
	var sightings int
	for {
		select {
		case line, ok := <-got:
			if !ok {
				t.Fatal("stream ended")
			}
			if strings.HasPrefix(line, "sighting ") {
				sightings++
				continue
			}
			if strings.HasPrefix(line, "alert ") {
				if !strings.Contains(line, `"countries":["FR"]`) || !strings.Contains(line, `"status":"new"`) || sightings != 2 {
					t.Fatalf("alert event %s after %d sightings", line, sightings)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no alert event within 10 s (%d sightings)", sightings)
		}
	}
}

// TestSignOutEndsEventStream: an open event stream ends when its
// session does.
func TestSignOutEndsEventStream(t *testing.T) {
	tn := newTestNode(t)
	c := newClient(t, tn)
	c.login(tn.keys[entente.RoleAnalyst])
	req, _ := http.NewRequest("GET", tn.srv.URL+"/ui/api/events", nil)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(ended) }()
	select {
	case <-ended:
		t.Fatal("the stream ended by itself")
	case <-time.After(500 * time.Millisecond):
	}
	if resp, _ := c.do("POST", "/ui/api/logout", "", map[string]string{dashboard.CSRFHeader: c.csrf}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %s", resp.Status)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its session")
	}
}

// TestSessionsAreRateLimited: the HTTP adapter's per-key rate limit
// applies to a dashboard session as to its key.
func TestSessionsAreRateLimited(t *testing.T) {
	tn := newTestNode(t)
	dash := dashboard.New(tn.svc, dashboard.Options{})
	srv := httptest.NewServer(httpapi.New(tn.svc, httpapi.Options{Dashboard: dash, RatePerSecond: 0.001, Burst: 3}, nil, nil))
	defer func() { dash.Close(); srv.Close() }()
	c := &client{t: t, base: srv.URL, c: newClient(t, tn).c}
	c.login(tn.keys[entente.RoleAnalyst]) // not counted: no session yet
	var codes []int
	for range 5 {
		resp, _ := c.do("GET", "/ui/api/session", "", nil)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[2] != 200 || codes[3] != http.StatusTooManyRequests || codes[4] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v: want 3 × 200 then 429", codes)
	}
}

// TestBlindPartners: the partners page's blind panel lists the partners
// whose agreement grants blind access, with their budget's use.
func TestBlindPartners(t *testing.T) {
	tn := newTestNode(t)
	ctx := context.Background()
	id, err := tn.svc.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := node.LocalAdmin(id.ID)
	const partner = "identity--0b1e0b1e-0000-4000-8000-0000000000da"
	if err := tn.svc.PutPartner(ctx, admin, policy.Party{ID: partner, Name: "Blind partner", Country: "DE"}); err != nil {
		t.Fatal(err)
	}
	budget, _ := blind.ParseBudget("500/day")
	if _, err := tn.svc.PutAgreement(ctx, admin, policy.Agreement{Partner: policy.Party{ID: partner}, MaxTLP: stix.TLPGreen,
		Blind: &policy.BlindAccess{Collections: []string{"intel"}, Budget: budget}}); err != nil {
		t.Fatal(err)
	}
	secret, k, err := tn.svc.CreateKey(ctx, admin, node.NewKey{Name: "p", Role: entente.RolePartner, Org: partner})
	if err != nil || secret == "" {
		t.Fatal(err)
	}
	p := entente.Principal{KeyID: k.ID, Org: partner, Role: entente.RolePartner}
	info, err := tn.svc.BlindInfo(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	_, req, err := oprf.NewClient(oprf.SuiteRistretto255).Blind([][]byte{[]byte("a"), []byte("b"), []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	er := &blind.EvalRequest{Epoch: info.Epoch}
	for _, e := range req.Elements {
		b, _ := e.MarshalBinaryCompress()
		er.Elements = append(er.Elements, b)
	}
	if _, err := tn.svc.BlindEvaluate(ctx, p, er); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, tn)
	c.login(tn.keys[entente.RoleAnalyst])
	resp, m := c.do("GET", "/ui/api/partners/blind", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %v", resp.Status, m)
	}
	list := m["blind"].([]any)
	if len(list) != 1 {
		t.Fatalf("blind partners %v", m)
	}
	bp := list[0].(map[string]any)
	if bp["partner"] != partner || bp["name"] != "Blind partner" || bp["budget"] != "500/day" || bp["used"] != float64(3) || bp["set"] == nil {
		t.Fatalf("blind partner %v", bp)
	}
}

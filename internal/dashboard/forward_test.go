package dashboard_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/dashboard"
	"github.com/entente-cti/entente/internal/httpapi"
)

// TestForwardToAPI: /ui/api/v1/ is the node API with the session's key:
// the API answers as it would the key itself (role, status, query and
// body passed through), state-changing requests need the session's CSRF
// token, and nothing is forwarded without a session.
func TestForwardToAPI(t *testing.T) {
	tn := newTestNode(t)
	anon := newClient(t, tn)
	if resp, _ := anon.do("GET", "/ui/api/v1/whoami", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a session: %s", resp.Status)
	}
	// A key presented directly does not open the forwarder: only a session.
	if resp, _ := anon.do("GET", "/ui/api/v1/whoami", "", map[string]string{"Authorization": "Bearer " + tn.keys[entente.RoleAdmin]}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bearer key without a session: %s", resp.Status)
	}

	analyst := newClient(t, tn)
	if resp := analyst.login(tn.keys[entente.RoleAnalyst]); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	admin := newClient(t, tn)
	if resp := admin.login(tn.keys[entente.RoleAdmin]); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	csrf := func(c *client) map[string]string { return map[string]string{dashboard.CSRFHeader: c.csrf} }
	for _, tc := range []struct {
		name         string
		c            *client
		method, path string
		body         string
		hdr          map[string]string
		want         int
		check        func(t *testing.T, m map[string]any)
	}{
		{name: "whoami is the session's key", c: analyst, method: "GET", path: "/ui/api/v1/whoami", want: http.StatusOK,
			check: func(t *testing.T, m map[string]any) {
				if m["role"] != "analyst" {
					t.Errorf("whoami %v, want the analyst's key", m)
				}
			}},
		{name: "the API's role rules", c: analyst, method: "GET", path: "/ui/api/v1/keys", want: http.StatusForbidden},
		{name: "admin's key", c: admin, method: "GET", path: "/ui/api/v1/keys", want: http.StatusOK},
		{name: "the query passes", c: admin, method: "GET", path: "/ui/api/v1/audit?limit=nope", want: http.StatusBadRequest},
		{name: "unknown route", c: analyst, method: "GET", path: "/ui/api/v1/no-such-route", want: http.StatusNotFound},
		{name: "POST without CSRF", c: analyst, method: "POST", path: "/ui/api/v1/objects/" + threats[0].indicator + "/false-positive", body: `{"reason":"test"}`, want: http.StatusForbidden},
		{name: "POST with another session's CSRF", c: analyst, method: "POST", path: "/ui/api/v1/objects/" + threats[0].indicator + "/false-positive", body: `{"reason":"test"}`, hdr: csrf(admin), want: http.StatusForbidden},
		{name: "the body passes", c: analyst, method: "POST", path: "/ui/api/v1/objects/" + threats[0].indicator + "/false-positive", body: `{"reason":"a test","unknown":1}`, hdr: csrf(analyst), want: http.StatusBadRequest},
		{name: "body too large", c: analyst, method: "POST", path: "/ui/api/v1/objects/" + threats[0].indicator + "/false-positive", body: `{"reason":"` + strings.Repeat("x", dashboard.MaxForwardBody) + `"}`, hdr: csrf(analyst), want: http.StatusRequestEntityTooLarge},
		{name: "mark a false positive", c: analyst, method: "POST", path: "/ui/api/v1/objects/" + threats[0].indicator + "/false-positive", body: `{"reason":"a test"}`, hdr: csrf(analyst), want: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := tc.c.do(tc.method, tc.path, tc.body, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: %s %v, want %d", tc.method, tc.path, resp.Status, m, tc.want)
			}
			if len(resp.Header.Values("WWW-Authenticate")) != 0 {
				t.Errorf("the answer challenges the browser: %q", resp.Header.Values("WWW-Authenticate"))
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
	// The false positive was recorded as the analyst's key: the audit log
	// (admin) names it.
	resp, m := admin.do("GET", "/ui/api/v1/audit?action=admin", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(toJSON(m), "retraction") {
		t.Errorf("audit of the false positive: %s %v", resp.Status, m)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestForwardCountsOnce: a dashboard request forwarded to the node API
// counts once against its key's rate limit, not once at /ui/ and again
// at /api/v1/; the key's own requests to the API count too, once each.
func TestForwardCountsOnce(t *testing.T) {
	const burst = 4
	// A token every 1,000 s: none comes back during the test.
	tn := newTestNodeWith(t, httpapi.Options{RatePerSecond: 0.001, Burst: burst})
	c := newClient(t, tn)
	if resp := c.login(tn.keys[entente.RoleAnalyst]); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	for i := range burst {
		if resp, m := c.do("GET", "/ui/api/v1/whoami", "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("forwarded request %d of a burst of %d: %s %v", i+1, burst, resp.Status, m)
		}
	}
	if resp, _ := c.do("GET", "/ui/api/v1/whoami", "", nil); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("request %d: %s, want 429 with Retry-After", burst+1, resp.Status)
	}
	// The key called directly shares the bucket, which is empty.
	req, _ := http.NewRequest("GET", tn.srv.URL+"/api/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tn.keys[entente.RoleAnalyst])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the key called directly after the burst: %s", resp.Status)
	}
	// Another key has its own bucket, counted once per request too.
	admin := newClient(t, tn)
	if resp := admin.login(tn.keys[entente.RoleAdmin]); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	for i := range burst {
		if resp, m := admin.do("GET", "/ui/api/v1/whoami", "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("admin's forwarded request %d: %s %v", i+1, resp.Status, m)
		}
	}
}

package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/dashboard"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/match"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/store/sqlite"
)

// Two threats, each an indicator that indicates a malware.
var threats = []struct{ indicator, malware, relationship, ip string }{
	{"indicator--0a1b2c3d-0000-4000-8000-000000000001", "malware--0a1b2c3d-0000-4000-8000-000000000002", "relationship--0a1b2c3d-0000-4000-8000-000000000003", "198.51.100.7"},
	{"indicator--0a1b2c3d-0000-4000-8000-000000000011", "malware--0a1b2c3d-0000-4000-8000-000000000012", "relationship--0a1b2c3d-0000-4000-8000-000000000013", "203.0.113.99"},
}

// orgCountries are the countries of the reporting organisations.
var orgCountries = []string{"FR", "FR", "DE", "IT", "ES", "NL"}

func orgID(i int) string { return fmt.Sprintf("identity--0a1b2c3d-0000-4000-9000-%012x", i+1) }

// fixture is the threats and the identities of the reporting
// organisations, each with its x_entente_country.
func fixture() []json.RawMessage {
	const ts = `"created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z"`
	var objs []json.RawMessage
	for i, t := range threats {
		objs = append(objs,
			json.RawMessage(`{"type":"indicator","spec_version":"2.1","id":"`+t.indicator+`",`+ts+`,"name":"Threat `+fmt.Sprint(i)+` C2","pattern":"[ipv4-addr:value = '`+t.ip+`']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z","object_marking_refs":["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}`),
			json.RawMessage(`{"type":"malware","spec_version":"2.1","id":"`+t.malware+`",`+ts+`,"name":"Sample `+fmt.Sprint(i)+`","is_family":true}`),
			json.RawMessage(`{"type":"relationship","spec_version":"2.1","id":"`+t.relationship+`",`+ts+`,"relationship_type":"indicates","source_ref":"`+t.indicator+`","target_ref":"`+t.malware+`"}`),
		)
	}
	for i, cc := range orgCountries {
		objs = append(objs, json.RawMessage(fmt.Sprintf(`{"type":"identity","spec_version":"2.1","id":%q,%s,"name":"Org %d","identity_class":"organization","x_entente_country":%q}`, orgID(i), ts, i, cc)))
	}
	return objs
}

// sightingsBundle is a bundle of the sightings of threat t by the
// organisations orgs, an hour before now.
func sightingsBundle(t int, orgs ...int) []byte {
	seen := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05.000Z")
	var objs []string
	for _, o := range orgs {
		objs = append(objs, fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--0a1b2c3d-0000-4000-a%03d-%012x","created":%q,"modified":%q,`+
			`"first_seen":%q,"last_seen":%q,"count":1,"sighting_of_ref":%q,"where_sighted_refs":[%q]}`, t, o+1, seen, seen, seen, seen, threats[t].indicator, orgID(o)))
	}
	return []byte(`{"type":"bundle","id":"bundle--0a1b2c3d-0000-4000-b000-000000000001","objects":[` + strings.Join(objs, ",") + `]}`)
}

// testNode is a node with the fixture, served over HTTP with the
// dashboard mounted, and keys of every role.
type testNode struct {
	svc  *node.Service
	dash *dashboard.Handler
	srv  *httptest.Server
	keys map[entente.Role]string
}

func newTestNode(t testing.TB) *testNode {
	t.Helper()
	return newTestNodeWith(t, httpapi.Options{})
}

// newTestNodeWith is newTestNode with the node API's options (the
// dashboard is set in them).
func newTestNodeWith(t testing.TB, hopts httpapi.Options) *testNode {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := node.New(st, node.Config{}, nil)
	id, _, err := svc.Init(ctx, "Dashboard CERT", "FR", "")
	if err != nil {
		t.Fatal(err)
	}
	svc = node.New(st, node.Config{Org: id.ID}, nil)
	stat, err := svc.AddObjects(ctx, node.LocalAdmin(id.ID), node.CollectionIntel, fixture())
	if err != nil || stat.FailureCount > 0 {
		t.Fatalf("store fixture: %v %+v", err, stat)
	}
	tn := &testNode{svc: svc, keys: map[entente.Role]string{}}
	for _, r := range []entente.Role{entente.RoleAdmin, entente.RoleAnalyst, entente.RoleSensor, entente.RolePartner} {
		nk := node.NewKey{Name: string(r), Role: r}
		if r == entente.RolePartner {
			nk.Org = orgID(2)
		}
		secret, _, err := svc.CreateKey(ctx, node.LocalAdmin(id.ID), nk)
		if err != nil {
			t.Fatal(err)
		}
		tn.keys[r] = secret
	}
	dash := dashboard.New(svc, dashboard.Options{Heartbeat: 200 * time.Millisecond})
	hopts.Dashboard = dash
	h := httpapi.New(svc, hopts, nil, nil)
	dash.SetAPI(h)
	tn.dash = dash
	tn.srv = httptest.NewServer(h)
	t.Cleanup(func() { dash.Close(); tn.srv.Close() })
	return tn
}

// postSightings posts a bundle as the sensor does.
func (tn *testNode) postSightings(t testing.TB, bundle []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", tn.srv.URL+match.SightingsPath, bytes.NewReader(bundle))
	req.Header.Set("Authorization", "Bearer "+tn.keys[entente.RoleSensor])
	req.Header.Set("Content-Type", "application/stix+json;version=2.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post sightings: %s", resp.Status)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func urlQuery(s string) string { return url.QueryEscape(s) }

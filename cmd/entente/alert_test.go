package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/notify"
)

// TestAlertEndToEnd runs a node with a webhook: a sensor posts the
// sightings of two organisations in one country through POST
// /api/v1/sightings, 'entente alert list' shows the national alert, the
// webhook receives it signed with the key GET /api/v1/node/key gives,
// and 'entente alert ack' changes its state.
func TestAlertEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var headers []http.Header
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, headers = append(bodies, b), append(headers, r.Header.Clone())
		mu.Unlock()
	}))
	defer hook.Close()

	dir := t.TempDir()
	admin := initNode(t, dir)
	url := startNode(t, "--data", dir, "--config", safetyOff(t), "--webhook", hook.URL+"/alerts")
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}

	const (
		ind  = "indicator--6f1c2a3b-0000-4000-8000-000000000001"
		mal  = "malware--6f1c2a3b-0000-4000-8000-000000000002"
		orgA = "identity--6f1c2a3b-0000-4000-9000-00000000000a"
		orgB = "identity--6f1c2a3b-0000-4000-9000-00000000000b"
	)
	bundle := `{"type":"bundle","id":"bundle--6f1c2a3b-0000-4000-8000-0000000000ff","objects":[
{"type":"indicator","spec_version":"2.1","id":"` + ind + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.9']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
{"type":"malware","spec_version":"2.1","id":"` + mal + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Sample","is_family":true},
{"type":"relationship","spec_version":"2.1","id":"relationship--6f1c2a3b-0000-4000-8000-000000000003","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","relationship_type":"indicates","source_ref":"` + ind + `","target_ref":"` + mal + `"},
{"type":"identity","spec_version":"2.1","id":"` + orgA + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Org A","identity_class":"organization","x_entente_country":"DE"},
{"type":"identity","spec_version":"2.1","id":"` + orgB + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Org B","identity_class":"organization","x_entente_country":"DE"}]}`
	bf := filepath.Join(t.TempDir(), "threat.json")
	if err := os.WriteFile(bf, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, env, nil, "ingest", "--quiet", bf); code != 0 {
		t.Fatalf("ingest: %s", errs)
	}
	code, out, errs := run(t, env, nil, "key", "create", "--role", "sensor", "--name", "ids")
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	sensor := strings.TrimSpace(out)

	seen := time.Now().UTC().Add(-10 * time.Minute).Format("2006-01-02T15:04:05.000Z")
	post := func(org string, n int) {
		t.Helper()
		body := fmt.Sprintf(`{"type":"bundle","id":"bundle--6f1c2a3b-0000-4000-8000-1000000000%02d","objects":[{"type":"sighting","spec_version":"2.1","id":"sighting--6f1c2a3b-0000-4000-a000-0000000000%02d","created":%q,"modified":%q,"first_seen":%q,"last_seen":%q,"count":3,"sighting_of_ref":%q,"where_sighted_refs":[%q]}]}`,
			n, n, seen, seen, seen, seen, ind, org)
		req, _ := http.NewRequest("POST", url+"/api/v1/sightings", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sensor)
		req.Header.Set("Content-Type", "application/stix+json;version=2.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST sightings: %d %s", resp.StatusCode, b)
		}
	}
	post(orgA, 1)
	if code, out, errs := run(t, env, nil, "alert", "list"); code != 0 || strings.Contains(out, "x-entente-alert--") {
		t.Fatalf("alert list after one organisation: exit %d, %s%s", code, out, errs)
	}
	post(orgB, 2)
	post(orgB, 2) // a duplicate changes nothing

	code, out, errs = run(t, env, nil, "alert", "list")
	if code != 0 {
		t.Fatalf("alert list: %s", errs)
	}
	// The row names the malware and the value sighted, not only ids.
	row := regexp.MustCompile(`(x-entente-alert--[0-9a-f-]{36})\s+new\s+national\s+2\s+1\s+DE\s+\S+\s+Sample \(malware ` + mal + `\)\s+ipv4 198\.51\.100\.9`).FindStringSubmatch(out)
	if row == nil {
		t.Fatalf("alert list does not show a new national alert of 2 organisations in DE from 1 source on the Sample malware at 198.51.100.9:\n%s", out)
	}
	id := row[1]

	if code, _, errs := run(t, env, nil, "alert", "ack", id, "--note", "looking"); code != 0 || !strings.Contains(errs, "acknowledged") {
		t.Fatalf("alert ack: exit %d: %s", code, errs)
	}
	if code, _, errs := run(t, env, nil, "alert", "ack", id); code == 0 {
		t.Errorf("second ack succeeded: %s", errs)
	}
	code, out, errs = run(t, env, nil, "alert", "show", id)
	if code != 0 || !regexp.MustCompile(`Status:\s+acknowledged`).MatchString(out) || !strings.Contains(out, "looking") {
		t.Fatalf("alert show: exit %d:\n%s%s", code, out, errs)
	}
	// What people read: the tier's rule, the value, the evidence.
	for _, want := range []string{"2 organisations in one country, vouched for by 1 independent source(s)", "Values:", "ipv4 198.51.100.9",
		"Independent sources:", "Evidence (by independent source):"} {
		if !strings.Contains(out, want) {
			t.Errorf("alert show lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := run(t, env, nil, "alert", "list", "--status", "new"); code != 0 || strings.Contains(out, id) {
		t.Errorf("alert list --status new shows the acknowledged alert:\n%s", out)
	}

	// Correlation statistics: the repeated sighting is a duplicate; a
	// sensor may not read alerts.
	var stats struct {
		Accepted   uint64            `json:"accepted"`
		Duplicates uint64            `json:"duplicates"`
		Rejected   map[string]uint64 `json:"rejected"`
	}
	if code := taxiiGet(t, url+"/api/v1/alerts/stats", admin, &stats); code != 200 || stats.Accepted != 2 || stats.Duplicates < 1 || len(stats.Rejected) == 0 {
		t.Errorf("GET /api/v1/alerts/stats: %d %+v; want 2 accepted and a duplicate", code, stats)
	}
	if code := taxiiGet(t, url+"/api/v1/alerts", sensor, nil); code != http.StatusForbidden {
		t.Errorf("GET /api/v1/alerts as a sensor: %d, want 403", code)
	}

	// The webhook got the alert, signed with the node's published key.
	var key struct {
		Algorithm string `json:"algorithm"`
		PublicKey string `json:"public_key"`
	}
	if code := taxiiGet(t, url+"/api/v1/node/key", admin, &key); code != 200 {
		t.Fatalf("GET /api/v1/node/key: %d", code)
	}
	pub, err := base64.StdEncoding.DecodeString(key.PublicKey)
	if err != nil || key.Algorithm != "ed25519" || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("node key %+v: %v", key, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("webhook received %d requests, want 1", len(bodies))
	}
	v := notify.NewVerifier(ed25519.PublicKey(pub), 5*time.Minute, 10)
	if err := v.Verify(headers[0], bodies[0], time.Now()); err != nil {
		t.Errorf("webhook signature: %v", err)
	}
	if err := v.Verify(headers[0], bodies[0], time.Now()); err == nil {
		t.Errorf("replayed webhook accepted")
	}
	var payload struct {
		Change string          `json:"change"`
		Alert  json.RawMessage `json:"alert"`
	}
	if err := json.Unmarshal(bodies[0], &payload); err != nil || payload.Change != "created" || !bytes.Contains(payload.Alert, []byte(id)) {
		t.Errorf("webhook payload %s (%v)", bodies[0], err)
	}
}

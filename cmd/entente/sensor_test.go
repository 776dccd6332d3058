package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

// TestSensorWorkflow runs a sensor against a node: it downloads the
// compiled snapshot (then pays a 304 for the unchanged one), matches a real
// Zeek conn.log, and reports its sightings, which the node stores.
func TestSensorWorkflow(t *testing.T) {
	connLog := testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed", "conn.log")
	dir := t.TempDir()
	admin := initNode(t, dir)
	url := startNode(t, "--data", dir, "--config", safetyOff(t))
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}

	// Two indicators: one address the log holds, one it does not.
	bundle := `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[
{"type":"indicator","spec_version":"2.1","id":"indicator--a932fcc6-e032-476c-826f-cb970a5a1ade","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '147.32.83.255']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.77']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`
	bf := filepath.Join(t.TempDir(), "indicators.json")
	if err := os.WriteFile(bf, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, env, nil, "ingest", "--quiet", bf); code != 0 {
		t.Fatalf("ingest: %s", errs)
	}
	code, out, errs := run(t, env, nil, "key", "create", "--role", "sensor", "--name", "zeek")
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	sensor := strings.TrimSpace(out)

	// The snapshot: 200 with an ETag, then 304 for the same ETag.
	get := func(etag string) (int, string) {
		req, _ := http.NewRequest("GET", url+"/api/v1/snapshot", nil)
		req.Header.Set("Authorization", "Bearer "+sensor)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("ETag")
	}
	code, etag := get("")
	if code != 200 || etag == "" {
		t.Fatalf("snapshot: %d, ETag %q", code, etag)
	}
	if code, _ := get(etag); code != http.StatusNotModified {
		t.Fatalf("unchanged snapshot answered %d, want 304", code)
	}

	// The sensor matches the log and reports.
	senv := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": sensor}
	code, out, errs = run(t, senv, nil, "match", "--quiet", "--report", "--identity", "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", connLog)
	if code != 0 {
		t.Fatalf("match: exit %d: %s", code, errs)
	}
	hits := strings.Split(strings.TrimSpace(out), "\n")
	want := 0
	data, _ := os.ReadFile(connLog)
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "#") && strings.Contains("\t"+l+"\t", "\t147.32.83.255\t") {
			want++
		}
	}
	if want == 0 || len(hits) != want {
		t.Fatalf("%d hit lines, want %d (one per log line naming 147.32.83.255):\n%s", len(hits), want, out)
	}
	for _, h := range hits {
		var rec map[string]any
		if err := json.Unmarshal([]byte(h), &rec); err != nil {
			t.Fatalf("hit %q is not JSON: %v", h, err)
		}
		if !strings.Contains(h, "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade") || strings.Contains(h, "198.51.100.77") {
			t.Fatalf("hit names the wrong indicator: %s", h)
		}
	}

	// The node holds one sighting of the indicator, counting every hit.
	var env2 struct {
		Objects []struct {
			Type          string `json:"type"`
			SightingOfRef string `json:"sighting_of_ref"`
			Count         int    `json:"count"`
		} `json:"objects"`
	}
	if code := taxiiGet(t, url+"/taxii2/api1/collections/sightings/objects/?match[type]=sighting", admin, &env2); code != 200 {
		t.Fatalf("read sightings: %d", code)
	}
	if len(env2.Objects) != 1 || env2.Objects[0].SightingOfRef != "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade" || env2.Objects[0].Count != want {
		t.Fatalf("sightings on the node: %+v, want one of the indicator with count %d", env2.Objects, want)
	}

	// Without --identity, the sightings are the key's organisation's (the
	// README's match line); without a node to ask, --identity is needed.
	var who struct {
		Org string `json:"org"`
	}
	if code := taxiiGet(t, url+"/api/v1/whoami", sensor, &who); code != 200 || who.Org == "" {
		t.Fatalf("whoami: %d %q", code, who.Org)
	}
	sf := filepath.Join(t.TempDir(), "sightings.json")
	if code, _, errs := run(t, senv, nil, "match", "--quiet", "--config", safetyOff(t), "--indicators", bf, "--sightings", sf, connLog); code != 0 {
		t.Fatalf("match without --identity: exit %d: %s", code, errs)
	}
	if b, err := os.ReadFile(sf); err != nil || !strings.Contains(string(b), `"where_sighted_refs":["`+who.Org+`"]`) {
		t.Fatalf("sightings not the node's organisation's (%s): %v\n%.400s", who.Org, err, b)
	}
	if code, _, errs := run(t, nil, nil, "match", "--indicators", bf, "--sightings", sf, connLog); code != 2 || !strings.Contains(errs, "need --identity") {
		t.Fatalf("no --identity and no node: exit %d: %s", code, errs)
	}
}

// TestMatchEvaluatesPatterns: 'entente match --indicators' evaluates the
// patterns a snapshot cannot hold against each record of a real log and
// writes their hits and sightings.
func TestMatchEvaluatesPatterns(t *testing.T) {
	connLog := testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed", "conn.log")
	bundle := `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[
{"type":"indicator","spec_version":"2.1","id":"indicator--a932fcc6-e032-476c-826f-cb970a5a1ade","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[network-traffic:dst_ref.value = '224.0.0.251' AND network-traffic:dst_port = 5353]","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[network-traffic:dst_ref.value = '224.0.0.251' AND network-traffic:dst_port = 53]","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`
	dir := t.TempDir()
	bf := filepath.Join(dir, "indicators.json")
	if err := os.WriteFile(bf, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	sf := filepath.Join(dir, "sightings.json")
	code, out, errs := run(t, nil, nil, "match", "--config", safetyOff(t), "--indicators", bf, "--sightings", sf, "--identity", "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", connLog)
	if code != 0 {
		t.Fatalf("match: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "2 patterns evaluated per record") {
		t.Errorf("summary does not count the patterns: %s", errs)
	}
	want := 0
	data, _ := os.ReadFile(connLog)
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Split(l, "\t"); !strings.HasPrefix(l, "#") && len(f) > 5 && f[4] == "224.0.0.251" && f[5] == "5353" {
			want++
		}
	}
	hits := strings.Split(strings.TrimSpace(out), "\n")
	if want == 0 || len(hits) != want {
		t.Fatalf("%d hit lines, want %d:\n%s", len(hits), want, out)
	}
	for _, h := range hits {
		var rec struct{ Kind, Indicator string }
		if err := json.Unmarshal([]byte(h), &rec); err != nil || rec.Kind != "pattern" || rec.Indicator != "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade" {
			t.Errorf("hit %s: want a pattern hit of the first indicator (%v)", h, err)
		}
	}
	sb, err := os.ReadFile(sf)
	if err != nil {
		t.Fatal(err)
	}
	var bundleOut struct{ Objects []map[string]any }
	if err := json.Unmarshal(sb, &bundleOut); err != nil || len(bundleOut.Objects) != 1 || bundleOut.Objects[0]["count"] != float64(want) {
		t.Errorf("sightings %s: want one sighting with count %d (%v)", sb, want, err)
	}
}

// TestSensorEvaluatesNodePatterns: a sensor matching against a node
// (--server) evaluates the node's patterns that its snapshot cannot hold,
// which travel with the snapshot.
func TestSensorEvaluatesNodePatterns(t *testing.T) {
	connLog := testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed", "conn.log")
	dir := t.TempDir()
	admin := initNode(t, dir)
	url := startNode(t, "--data", dir, "--config", safetyOff(t))
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}
	bundle := `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56e","objects":[
{"type":"indicator","spec_version":"2.1","id":"indicator--a932fcc6-e032-476c-826f-cb970a5a1adf","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[network-traffic:dst_ref.value = '224.0.0.251'] REPEATS 5 TIMES","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`
	bf := filepath.Join(t.TempDir(), "indicators.json")
	if err := os.WriteFile(bf, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, env, nil, "ingest", "--quiet", bf); code != 0 {
		t.Fatalf("ingest: %s", errs)
	}
	code, out, errs := run(t, env, nil, "key", "create", "--role", "sensor", "--name", "zeek")
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	senv := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": strings.TrimSpace(out)}
	code, out, errs = run(t, senv, nil, "match", "--quiet", connLog)
	if code != 0 {
		t.Fatalf("match: exit %d: %s", code, errs)
	}
	n := 0
	data, _ := os.ReadFile(connLog)
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Split(l, "\t"); !strings.HasPrefix(l, "#") && len(f) > 4 && f[4] == "224.0.0.251" {
			n++
		}
	}
	hits := strings.Split(strings.TrimSpace(out), "\n")
	if n < 5 || len(hits) != n/5 || !strings.Contains(out, `"kind":"pattern"`) {
		t.Fatalf("%d hit lines, want %d (one per 5 connections to 224.0.0.251 of %d):\n%s", len(hits), n/5, n, out)
	}
}

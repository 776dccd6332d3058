package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/testutil"
)

// The junk of issue 13: networks a feed may list that must never be
// acted on.
var junk = []string{"0.0.0.0/0", "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "224.0.0.0/3", "127.0.0.0/8",
	"169.254.0.0/16", "255.255.255.255", "fe80::/10", "ff00::/8"}

var ipv4Token = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`)
var ipv6Token = regexp.MustCompile(`"([0-9a-fA-F]{0,4}:[0-9a-fA-F:.]{2,45})"`)

// logAddresses returns every distinct address the log files hold, up to
// limit (gzip or plain).
func logAddresses(t *testing.T, limit int, files ...string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = fh
		if strings.HasSuffix(f, ".gz") {
			zr, err := gzip.NewReader(fh)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() && len(out) < limit {
			var toks []string
			toks = append(toks, ipv4Token.FindAllString(sc.Text(), -1)...)
			for _, m := range ipv6Token.FindAllStringSubmatch(sc.Text(), -1) {
				toks = append(toks, m[1])
			}
			for _, tok := range toks {
				a, err := netip.ParseAddr(tok)
				if err != nil || seen[a.String()] {
					continue
				}
				seen[a.String()] = true
				out = append(out, a.String())
			}
		}
		fh.Close()
	}
	return out
}

type hit struct {
	Kind, Observed, Matched, Indicator string
}

func readHits(t *testing.T, out string) []hit {
	t.Helper()
	var hs []hit
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var h hit
		if err := json.Unmarshal([]byte(l), &h); err != nil {
			t.Fatalf("hit %q: %v", l, err)
		}
		hs = append(hs, h)
	}
	return hs
}

// defaultNet is the safety net of the default configuration.
func defaultNet(t *testing.T) *safety.Net {
	t.Helper()
	n, err := safetyNet(config.Default(), "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// protectedHits counts the hits whose observed or matched value the net
// protects (or refuses).
func protectedHits(t *testing.T, n *safety.Net, hs []hit) int {
	t.Helper()
	bad := 0
	for _, h := range hs {
		for _, v := range []string{h.Observed, h.Matched} {
			k, c, err := observable.Detect(v)
			if err != nil {
				continue
			}
			if n.Decide(k, c).Action != safety.Keep {
				bad++
				break
			}
		}
	}
	return bad
}

// TestMatchRealLogsNoProtectedHit: on the real Zeek (wrccdc TSV and
// JSON, Slips) and Suricata EVE logs, indicators made of the junk
// networks and of every address of the logs, private and public, give
// hits on protected space when the net is off, and none with the
// default configuration, which still matches the public addresses.
func TestMatchRealLogsNoProtectedHit(t *testing.T) {
	sets := map[string][]string{
		"zeek wrccdc tsv":  {testutil.SharedData(t, "logs", "zeek", "wrccdc-2018-03-24", "tsv", "dns.log.gz")},
		"zeek wrccdc json": {testutil.SharedData(t, "logs", "zeek", "wrccdc-2018-03-24", "json", "ssl.json.gz")},
		"zeek slips": {testutil.SharedData(t, "logs", "zeek", "slips-test9-mixed", "conn.log"),
			testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed", "conn.log")},
		"suricata eve": {testutil.SharedData(t, "logs", "suricata", "slips-test6-malicious", "eve.json.gz")},
	}
	n := defaultNet(t)
	for name, logs := range sets {
		t.Run(name, func(t *testing.T) {
			addrs := logAddresses(t, 20000, logs...)
			list := filepath.Join(t.TempDir(), "indicators.txt")
			if err := os.WriteFile(list, []byte(strings.Join(append(append([]string{}, junk...), addrs...), "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"match", "--config", safetyOff(t), "--indicators", list}, logs...)
			code, out, errs := run(t, nil, nil, args...)
			if code != 0 {
				t.Fatalf("match without the net: exit %d: %s", code, errs)
			}
			off := readHits(t, out)
			offBad := protectedHits(t, n, off)
			if offBad == 0 {
				t.Fatalf("without the net, no hit on protected space (%d hits): the test proves nothing", len(off))
			}
			args = append([]string{"match", "--indicators", list}, logs...)
			code, out, errs = run(t, nil, nil, args...)
			if code != 0 {
				t.Fatalf("match: exit %d: %s", code, errs)
			}
			on := readHits(t, out)
			if bad := protectedHits(t, n, on); bad != 0 {
				t.Fatalf("%d of %d hits on protected space with the default configuration", bad, len(on))
			}
			if len(on) == 0 {
				t.Fatalf("no hit at all with the default configuration: the public addresses must still match")
			}
			if !strings.Contains(errs, "left out or cut by the safety net") {
				t.Errorf("the summary does not say what the net left out:\n%s", errs)
			}
			t.Logf("%d addresses: without the net %d hits, %d on protected space; with it %d hits, none protected", len(addrs), len(off), offBad, len(on))
		})
	}
}

// TestSafetyNetOnANode: a node with the default configuration, fed a
// junk feed next to real addresses, serves a snapshot on which the real
// Slips log (multicast, broadcast, private traffic) gets no protected
// hit, exports nothing protected, explains its decisions to its own keys
// (not to partners), counts them on /metrics; a malformed allowlist
// stops it at start, naming the file and the line.
func TestSafetyNetOnANode(t *testing.T) {
	dir := t.TempDir()
	admin := initNode(t, dir)
	logFile := testutil.SharedData(t, "logs", "zeek", "slips-test9-mixed", "conn.log")
	addrs := logAddresses(t, 5000, logFile)
	list := filepath.Join(t.TempDir(), "feed.txt")
	if err := os.WriteFile(list, []byte(strings.Join(append(append([]string{}, junk...), addrs...), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, nil, nil, "import", "--data", dir, "--source", "junk-feed", list); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	sensor, analyst, partner := initKey(t, dir, "sensor"), initKey(t, dir, "analyst"), initKey(t, dir, "partner")

	// A malformed allowlist stops the node at start.
	allow := filepath.Join(t.TempDir(), "allow.txt")
	os.WriteFile(allow, []byte("# ours\n9.9.9.9\n10.0.0.300\n"), 0o600)
	bad := filepath.Join(filepath.Dir(allow), "bad.toml")
	os.WriteFile(bad, []byte("[safety]\nallowlist = \"allow.txt\"\n"), 0o600)
	if code, _, errs := run(t, nil, nil, "serve", "--data", dir, "--config", bad, "--listen", "127.0.0.1:0"); code == 0 || !strings.Contains(errs, "allow.txt line 3") {
		t.Fatalf("a malformed allowlist: exit %d: %s", code, errs)
	}
	badc := filepath.Join(t.TempDir(), "badc.toml")
	os.WriteFile(badc, []byte("[safety]\nconstituency_networks = [\n  \"185.20.0.0/22\",\n  \"185.20.0.0/33\",\n]\n"), 0o600)
	if code, _, errs := run(t, nil, nil, "serve", "--data", dir, "--config", badc, "--listen", "127.0.0.1:0"); code == 0 || !strings.Contains(errs, "line 4") || !strings.Contains(errs, "185.20.0.0/33") {
		t.Fatalf("a malformed constituency: exit %d: %s", code, errs)
	}

	url := startNode(t, "--data", dir)
	n := defaultNet(t)
	code, out, errs := run(t, map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": sensor}, nil, "match", "--quiet", logFile)
	if code != 0 {
		t.Fatalf("match --server: exit %d: %s", code, errs)
	}
	hs := readHits(t, out)
	if bad := protectedHits(t, n, hs); bad != 0 || len(hs) == 0 {
		t.Fatalf("%d of %d hits on protected space through the node's snapshot", bad, len(hs))
	}
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": analyst}
	for _, f := range []string{"plain", "nftables", "csv", "zeek", "stix"} {
		code, out, errs := run(t, env, nil, "export", "--format", f)
		if code != 0 {
			t.Fatalf("export %s: %s", f, errs)
		}
		for _, j := range []string{"10.0.0.0/8", "224.0.0.0/3", "0.0.0.0/0", "192.168.0.0/16", "ff00::/8"} {
			if strings.Contains(out, j) {
				t.Errorf("the %s export holds %s", f, j)
			}
		}
	}
	code, out, errs = run(t, env, nil, "export", "--explain", "10.0.0.0/8")
	if code != 0 || !strings.Contains(out, "10.0.0.0/8 (cidr4): suppress") || !strings.Contains(out, "iana-special-purpose: 10.0.0.0/8 (RFC 1918, Private-Use)") ||
		!strings.Contains(out, "kept out so far: export") {
		t.Fatalf("explain over the API: exit %d: %s %s", code, out, errs)
	}
	get := func(key, path string) (int, string) {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get(partner, "/api/v1/explain?value=10.0.0.1"); st != http.StatusForbidden {
		t.Errorf("a partner may not read the safety net: %d %s", st, body)
	}
	if st, body := get(analyst, "/api/v1/explain?value=%20"); st != http.StatusBadRequest {
		t.Errorf("explain without a value: %d %s", st, body)
	}
	if st, body := get(analyst, "/api/v1/explain?value=8.8.4.4"); st != 200 || !strings.Contains(body, `"action":"keep"`) {
		t.Errorf("explain 8.8.4.4: %d %s", st, body)
	}
	st, body := get(admin, "/metrics")
	if st != 200 || !regexp.MustCompile(`entente_safety_suppressed_total\{output="snapshot",rule="iana-special-purpose",source="IANA IPv4 Special-Purpose Address Registry"\} [1-9]`).MatchString(body) ||
		!strings.Contains(body, `entente_safety_suppressed_total{output="export",rule="too-broad"`) {
		t.Errorf("metrics: %d\n%s", st, grepLines(body, "entente_safety"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMatchPatternsOnProtectedSpace: the patterns on multicast that
// TestMatchEvaluatesPatterns matches with the net off are left out by
// the default configuration, and say so.
func TestMatchPatternsOnProtectedSpace(t *testing.T) {
	connLog := testutil.SharedData(t, "logs", "zeek", "slips-test9-mixed", "conn.log")
	bundle := `{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[
{"type":"indicator","spec_version":"2.1","id":"indicator--a932fcc6-e032-476c-826f-cb970a5a1ade","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[network-traffic:dst_ref.value = '224.0.0.251' AND network-traffic:dst_port = 5353]","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`
	bf := filepath.Join(t.TempDir(), "indicators.json")
	if err := os.WriteFile(bf, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, nil, nil, "match", "--indicators", bf, connLog)
	if code != 0 || strings.TrimSpace(out) != "" || !strings.Contains(errs, "1 values or patterns left out or cut by the safety net") {
		t.Fatalf("exit %d, hits %q: %s", code, out, errs)
	}
}

// TestCorrelationIgnoresProtected: with the default configuration, two
// organisations' sightings of an indicator on 10.0.0.0/8 raise no alert,
// nor help one on the same malware rise; sightings of a public address
// of the malware still raise it.
func TestCorrelationIgnoresProtected(t *testing.T) {
	dir := t.TempDir()
	admin := initNode(t, dir)
	url := startNode(t, "--data", dir)
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}
	const (
		junkInd = "indicator--7a1c2a3b-0000-4000-8000-000000000001"
		realInd = "indicator--7a1c2a3b-0000-4000-8000-000000000004"
		mal     = "malware--7a1c2a3b-0000-4000-8000-000000000002"
		orgA    = "identity--7a1c2a3b-0000-4000-9000-00000000000a"
		orgB    = "identity--7a1c2a3b-0000-4000-9000-00000000000b"
	)
	obj := func(typ, id, rest string) string {
		return `{"type":"` + typ + `","spec_version":"2.1","id":"` + id + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` + rest + `}`
	}
	bundle := `{"type":"bundle","id":"bundle--7a1c2a3b-0000-4000-8000-0000000000ff","objects":[` + strings.Join([]string{
		obj("indicator", junkInd, `"pattern":"[ipv4-addr:value = '10.0.0.0/8']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"`),
		obj("indicator", realInd, `"pattern":"[ipv4-addr:value = '45.33.32.156']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"`),
		obj("malware", mal, `"name":"Sample","is_family":true`),
		obj("relationship", "relationship--7a1c2a3b-0000-4000-8000-000000000003", `"relationship_type":"indicates","source_ref":"`+junkInd+`","target_ref":"`+mal+`"`),
		obj("relationship", "relationship--7a1c2a3b-0000-4000-8000-000000000005", `"relationship_type":"indicates","source_ref":"`+realInd+`","target_ref":"`+mal+`"`),
		obj("identity", orgA, `"name":"Org A","identity_class":"organization","x_entente_country":"DE"`),
		obj("identity", orgB, `"name":"Org B","identity_class":"organization","x_entente_country":"DE"`),
	}, ",\n") + `]}`
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
	post := func(ind, org string, n int) {
		t.Helper()
		body := fmt.Sprintf(`{"type":"bundle","id":"bundle--7a1c2a3b-0000-4000-8000-1000000000%02d","objects":[{"type":"sighting","spec_version":"2.1","id":"sighting--7a1c2a3b-0000-4000-a000-0000000000%02d","created":%q,"modified":%q,"first_seen":%q,"last_seen":%q,"count":3,"sighting_of_ref":%q,"where_sighted_refs":[%q]}]}`,
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
	alerts := func() string {
		t.Helper()
		code, out, errs := run(t, env, nil, "alert", "list")
		if code != 0 {
			t.Fatalf("alert list: %s", errs)
		}
		return out
	}
	post(junkInd, orgA, 1)
	post(junkInd, orgB, 2)
	if out := alerts(); strings.Contains(out, "x-entente-alert--") {
		t.Fatalf("two organisations' sightings of 10.0.0.0/8 raised an alert:\n%s", out)
	}
	post(realInd, orgA, 3)
	if out := alerts(); strings.Contains(out, "x-entente-alert--") {
		t.Fatalf("a sighting of 10.0.0.0/8 counted towards the malware's alert:\n%s", out)
	}
	post(realInd, orgB, 4)
	out = alerts()
	m := regexp.MustCompile(`(x-entente-alert--[0-9a-f-]{36})\s+new\s+national\s+2\s+\d+\s+DE`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the public address's sightings raised no national alert:\n%s", out)
	}
	// The alert says what the safety net kept out of it.
	code, show, errs := run(t, env, nil, "alert", "show", m[1])
	if code != 0 || !strings.Contains(show, "Suppressed by the safety net:") || !strings.Contains(show, "10.0.0.0/8 (RFC 1918, Private-Use): 2 sightings") {
		t.Errorf("alert show does not name the suppression of the 2 sightings of 10.0.0.0/8: exit %d\n%s%s", code, show, errs)
	}
}

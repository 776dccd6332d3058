package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/config"
	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/node"
	"github.com/entente-cti/entente/internal/testutil"
)

// feedInputs are the shared feeds the end-to-end import reads: every MISP
// event and feed and a sample of the blocklists that covers each layout
// (ThreatFox, Feodo-style IP lists, FireHOL netsets, maltrail, hashes).
// ENTENTE_IMPORT_ALL=1 imports every blocklist instead (about a minute on
// the SQLite store; BenchmarkImportAll measures it).
func feedInputs(t testing.TB) []string {
	bl := testutil.SharedData(t, "blocklists")
	misp := testutil.SharedData(t, "misp")
	in := []string{filepath.Join(misp, "events"), filepath.Join(misp, "feed-misp"), filepath.Join(misp, "feed-csv"), filepath.Join(misp, "feed-freetext")}
	if os.Getenv("ENTENTE_IMPORT_ALL") != "" {
		return append(in, bl)
	}
	return append(in,
		filepath.Join(bl, "abusech-threatfox"),
		filepath.Join(bl, "firehol-2021-01-18", "greensnow.ipset"),
		filepath.Join(bl, "maltrail", "malware"),
		filepath.Join(bl, "eset-hashes"),
		filepath.Join(bl, "ipsum", "levels"))
}

var summaryRE = regexp.MustCompile(`imported (\d+) inputs \((\d+) records\) in [0-9.]+s: (\d+) objects, (\d+) indicators; stored (\d+), (\d+) duplicates merged, (\d+) merged into stored indicators, (\d+) unchanged`)

func parseSummary(t *testing.T, errs string) []int {
	t.Helper()
	m := summaryRE.FindStringSubmatch(errs)
	if m == nil {
		t.Fatalf("no import summary in:\n%s", errs)
	}
	n := make([]int, len(m)-1)
	for i, s := range m[1:] {
		n[i], _ = strconv.Atoi(s)
	}
	return n
}

// TestImportRealFeeds imports real feeds offline twice and checks the
// counts against the feed package's own reading of the same files, that an
// observable listed by several feeds is one indicator with every source,
// and that a second run stores nothing.
func TestImportRealFeeds(t *testing.T) {
	inputs := feedInputs(t)
	dir := t.TempDir()
	initNode(t, dir)

	// What the feed package makes of the same inputs.
	im := feed.NewImporter()
	var sum importSummary
	for _, p := range inputs {
		if err := importPath(im, p, feed.Options{}, &sum, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	wantIndicators := 0
	var shared string // an indicator with several sources
	var sharedSources []string
	for _, raw := range im.Objects() {
		var h struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Refs []struct {
				SourceName string `json:"source_name"`
			} `json:"external_references"`
		}
		json.Unmarshal(raw, &h)
		if h.Type != "indicator" {
			continue
		}
		wantIndicators++
		if shared == "" && len(h.Refs) >= 2 {
			shared = h.ID
			for _, r := range h.Refs {
				sharedSources = append(sharedSources, r.SourceName)
			}
		}
	}
	if shared == "" {
		t.Fatal("no observable in two feeds: the sample does not test merging")
	}

	code, _, errs := run(t, nil, nil, append([]string{"import", "--data", dir}, inputs...)...)
	if code != 1 || !strings.Contains(errs, "rejected") {
		t.Fatalf("import must report the real feeds' bad rows and exit 1: exit %d\n%s", code, errs)
	}
	n := parseSummary(t, errs)
	if n[3] != wantIndicators || n[4] != n[2] || n[5] == 0 {
		t.Fatalf("summary %v: want %d indicators, every object stored, some duplicates merged\n%s", n, wantIndicators, errs)
	}
	if !regexp.MustCompile(`rejected \S+:(line|row) \d+`).MatchString(errs) {
		t.Fatalf("rejects must name their file and line:\n%s", errs)
	}

	// One indicator, every source.
	ctx := context.Background()
	svc, st, err := openNode(ctx, config.Config{Data: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := svc.Object(ctx, node.LocalAdmin(""), node.CollectionIntel, shared, entente.ObjectQuery{})
	st.Close()
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("read %s: %v", shared, err)
	}
	for _, s := range sharedSources {
		if !strings.Contains(string(page.Entries[0].Raw), fmt.Sprintf("%q", s)) {
			t.Errorf("stored indicator lacks source %q: %s", s, page.Entries[0].Raw)
		}
	}

	// The same feeds again: nothing new.
	_, _, errs = run(t, nil, nil, append([]string{"import", "--data", dir}, inputs...)...)
	if n := parseSummary(t, errs); n[4] != 0 || n[7] != n[2] {
		t.Fatalf("second import stored %d objects, %d unchanged of %d:\n%s", n[4], n[7], n[2], errs)
	}
}

// TestImportBadInputAndFlags checks rejects with their place and bad
// flags.
func TestImportBadInputAndFlags(t *testing.T) {
	dir := t.TempDir()
	initNode(t, dir)
	tmp := t.TempDir()
	csvFile := filepath.Join(tmp, "custom.csv")
	os.WriteFile(csvFile, []byte("when,what\n2026-01-01,198.51.100.7\n2026-01-01,not a value\n\"broken,\n"), 0o600)
	html := filepath.Join(tmp, "page.txt")
	os.WriteFile(html, []byte("<!DOCTYPE html><html><body>Not found</body></html>\n"), 0o600)
	code, _, errs := run(t, nil, nil, "import", "--data", dir, "--columns", "value=what,first_seen=when,header=true", "--source", "custom", csvFile)
	if code != 1 || !strings.Contains(errs, "custom.csv:") || !strings.Contains(errs, "not a value") {
		t.Fatalf("custom CSV: exit %d\n%s", code, errs)
	}
	if n := parseSummary(t, errs); n[3] != 1 {
		t.Fatalf("custom CSV: %d indicators, want 1\n%s", n[3], errs)
	}
	code, _, errs = run(t, nil, nil, "import", "--data", dir, html)
	if code != 1 || !strings.Contains(errs, "page.txt") {
		t.Fatalf("HTML page: exit %d\n%s", code, errs)
	}
	for _, args := range [][]string{
		{"import", "--data", dir, "--format", "pdf", csvFile},
		{"import", "--data", dir, "--columns", "type=3", csvFile},
		{"import", "--data", dir, "--tlp", "purple", csvFile},
		{"import", "--data", dir},
	} {
		if code, _, errs := run(t, nil, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errs)
		}
	}
}

// exportNode is a node with real ThreatFox IPs and a few test values.
func exportNode(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	initNode(t, dir)
	list := filepath.Join(t.TempDir(), "local.txt")
	os.WriteFile(list, []byte("198.51.100.7\nblocked.example\n"), 0o600)
	tf := filepath.Join(testutil.SharedData(t, "blocklists", "abusech-threatfox"), "ips.txt")
	if code, _, errs := run(t, nil, nil, "import", "--data", dir, "--source", "local", list); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	if code, _, errs := run(t, nil, nil, "import", "--data", dir, tf); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	return dir
}

// TestExportOverHTTP exports through a running node: 200 with an ETag,
// 304 for If-None-Match, the CLI's remote export, and a partner key
// without agreement that gets nothing.
func TestExportOverHTTP(t *testing.T) {
	dir := exportNode(t)
	key := initKey(t, dir, "analyst")
	partner := initKey(t, dir, "partner")
	url := startNode(t, "--data", dir, "--config", safetyOff(t))
	get := func(key, etag string) *http.Response {
		req, _ := http.NewRequest("GET", url+"/export/nftables", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	r := get(key, "")
	if r.StatusCode != 200 || r.Header.Get("ETag") == "" {
		t.Fatalf("export: %d etag %q", r.StatusCode, r.Header.Get("ETag"))
	}
	if r2 := get(key, r.Header.Get("ETag")); r2.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d, want 304", r2.StatusCode)
	}
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": key}
	code, out, errs := run(t, env, nil, "export", "--format", "plain", "--type", "ipv4")
	if code != 0 || !strings.Contains(out, "198.51.100.7") || strings.Contains(out, "blocked.example") {
		t.Fatalf("remote export: %d %s", code, errs)
	}
	env["ENTENTE_TOKEN"] = partner
	code, out, errs = run(t, env, nil, "export", "--format", "plain")
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Fatalf("a partner without agreement must get an empty export: %d %q %s", code, out, errs)
	}
}

func initKey(t *testing.T, dir, role string) string {
	t.Helper()
	code, out, errs := run(t, nil, nil, "key", "create", "--data", dir, "--role", role)
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	return strings.TrimSpace(out)
}

// TestExportNftablesDropsTraffic loads the nftables export into nft in a
// new network namespace and checks that a TCP connection to a listed
// address is refused while one to another address goes through.
func TestExportNftablesDropsTraffic(t *testing.T) {
	for _, bin := range []string{"nft", "unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (CI installs nftables, util-linux and iproute2): %v", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
			t.Skip("cannot create a network namespace here (needs root or user namespaces)")
		}
	}
	dir := exportNode(t)
	rules := filepath.Join(t.TempDir(), "blocklist.nft")
	if code, _, errs := run(t, nil, nil, "export", "--data", dir, "--config", safetyOff(t), "--format", "nftables", "--out", rules); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("set -e; ip link set lo up; ip addr add 198.51.100.7/32 dev lo; ip addr add 192.0.2.200/32 dev lo; nft -f %s; %s -test.run='^TestNftProbe$' -test.v; nft list chain inet entente output", rules, self)
	args := []string{"-n", "sh", "-c", script}
	if os.Geteuid() != 0 {
		args = append([]string{"-r"}, args...)
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "ENTENTE_NFT_PROBE=198.51.100.7,192.0.2.200")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("namespace run: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "probe 198.51.100.7 blocked") || !strings.Contains(s, "probe 192.0.2.200 open") {
		t.Fatalf("nftables did not block the listed address only:\n%s", s)
	}
	if !regexp.MustCompile(`counter packets [1-9]\d* bytes \d+ reject`).MatchString(s) {
		t.Fatalf("the reject rule counted no packet:\n%s", s)
	}
}

// TestNftProbe runs inside the namespace of TestExportNftablesDropsTraffic:
// it listens on every address and connects to each listed one.
func TestNftProbe(t *testing.T) {
	addrs := os.Getenv("ENTENTE_NFT_PROBE")
	if addrs == "" {
		t.Skip("helper of TestExportNftablesDropsTraffic")
	}
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for a := range strings.SplitSeq(addrs, ",") {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(a, strconv.Itoa(port)), 2*time.Second)
		if err != nil {
			fmt.Printf("probe %s blocked: %v\n", a, err)
			continue
		}
		c.Close()
		fmt.Printf("probe %s open\n", a)
	}
}

// TestExportRPZ checks the RPZ export with named-checkzone and, when
// unbound is installed, with a real resolver: NXDOMAIN for a listed
// domain, the local answer for a served one.
func TestExportRPZ(t *testing.T) {
	dir := exportNode(t)
	zoneFile := filepath.Join(t.TempDir(), "entente.rpz.zone")
	if code, _, errs := run(t, nil, nil, "export", "--data", dir, "--format", "rpz", "--out", zoneFile); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	t.Run("named-checkzone", func(t *testing.T) {
		if _, err := exec.LookPath("named-checkzone"); err != nil {
			t.Skip("named-checkzone is not installed (CI installs bind9-utils)")
		}
		out, err := exec.Command("named-checkzone", "entente.rpz", zoneFile).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			t.Fatalf("named-checkzone: %v\n%s", err, out)
		}
	})
	t.Run("unbound", func(t *testing.T) {
		bin, err := exec.LookPath("unbound")
		if err != nil {
			t.Skip("unbound is not installed (CI installs unbound)")
		}
		testUnbound(t, bin, zoneFile)
	})
}

func testUnbound(t *testing.T, bin, zoneFile string) {
	ln, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	tmp := t.TempDir()
	conf := filepath.Join(tmp, "unbound.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`server:
	interface: 127.0.0.1
	port: %d
	do-daemonize: no
	use-syslog: no
	username: ""
	chroot: ""
	directory: %q
	pidfile: ""
	do-ip6: no
	module-config: "respip iterator"
	local-zone: "served.test." static
	local-data: "www.served.test. 300 IN A 192.0.2.80"
rpz:
	name: entente.rpz
	zonefile: %q
`, port, tmp, zoneFile)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-d", "-c", conf)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp4", fmt.Sprintf("127.0.0.1:%d", port))
	}}
	var addrs []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		qctx, qcancel := context.WithTimeout(context.Background(), time.Second)
		addrs, err = r.LookupHost(qctx, "www.served.test")
		qcancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !slices.Contains(addrs, "192.0.2.80") {
		t.Fatalf("served domain: %v %v\n%s", addrs, err, logs.String())
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer qcancel()
	_, err = r.LookupHost(qctx, "blocked.example")
	var dnsErr *net.DNSError
	if err == nil || !errorsAs(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("listed domain: want NXDOMAIN, got %v\n%s", err, logs.String())
	}
}

// TestExportMISPFeedRoundTrip writes the MISP-feed export and reads it
// back with the MISP feed importer: every exported value comes back.
func TestExportMISPFeedRoundTrip(t *testing.T) {
	dir := exportNode(t)
	out := filepath.Join(t.TempDir(), "feed")
	if code, _, errs := run(t, nil, nil, "export", "--data", dir, "--format", "misp-feed", "--out", out); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	_, plain, _ := run(t, nil, nil, "export", "--data", dir, "--format", "plain", "--no-aggregate")
	want := strings.Fields(plain)
	res, err := feed.ImportMISPFeed(os.DirFS(out), "feed", feed.Options{AllIndicators: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 {
		t.Fatalf("our MISP feed has rejects: %v", res.Rejected[:min(5, len(res.Rejected))])
	}
	got := map[string]bool{}
	for _, raw := range res.Objects {
		var h struct {
			Type string `json:"type"`
			Name string `json:"name"`
		}
		json.Unmarshal(raw, &h)
		if h.Type == "indicator" {
			got[h.Name] = true
		}
	}
	if len(got) != len(want) {
		t.Fatalf("re-imported %d indicators, exported %d values", len(got), len(want))
	}
	for _, v := range want {
		if !got[strings.TrimSuffix(v, "/32")] && !got[v] {
			t.Fatalf("value %s did not come back", v)
		}
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// BenchmarkImportAll imports every file of shared/data/blocklists and
// shared/data/misp offline into a new node through the CLI: one op is the
// whole import (feed parsing, dedup, and storing through AddObjects).
func BenchmarkImportAll(b *testing.B) {
	bl := testutil.SharedData(b, "blocklists")
	misp := testutil.SharedData(b, "misp")
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		if code := Run(context.Background(), &Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }},
			[]string{"init", "--data", dir, "--org", "Bench", "--country", "DE"}); code != 0 {
			b.Fatal("init failed")
		}
		b.StartTimer()
		var errs syncBuffer
		Run(context.Background(), &Env{Stdout: io.Discard, Stderr: &errs, Getenv: func(string) string { return "" }},
			[]string{"import", "--data", dir, bl, misp})
		if !strings.Contains(errs.String(), "imported ") {
			b.Fatalf("import: %s", errs.String())
		}
	}
}

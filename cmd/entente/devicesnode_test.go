package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/testutil"
)

// TestDeviceWatchInTheNode runs the sensor path: a node configured with
// a device watch (DATA/devices.toml), a sensor that posts the real Slips
// test6 capture to it (`watch --node`), the findings stored as sightings
// in the node's sightings collection, the device listed by GET
// /api/v1/devices and `entente devices --server`, the class policy
// exported through the gate, and a partner with an agreement on the
// sightings that receives them with the device reduced to its
// pseudonym.
func TestDeviceWatchInTheNode(t *testing.T) {
	eve := testutil.SharedData(t, "logs", "suricata", "slips-test6-malicious", "eve.json.gz")
	geo := testutil.SharedData(t, "geo", "geo-whois-asn-country-ipv4.csv.gz")
	dir := t.TempDir()
	admin := initNode(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "devices.toml"), []byte(cameraConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startNode(t, "--data", dir, "--geo", geo, "--config", safetyOff(t))
	adminEnv := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}
	cli := func(env map[string]string, args ...string) string {
		t.Helper()
		code, out, errs := run(t, env, nil, args...)
		if code != 0 {
			t.Fatalf("entente %s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
		return out
	}
	sensorKey := strings.TrimSpace(cli(adminEnv, "key", "create", "--role", "sensor", "--name", "zeek"))
	analystKey := strings.TrimSpace(cli(adminEnv, "key", "create", "--role", "analyst", "--name", "ana"))
	const partnerOrg = "identity--7f3c1a52-6a55-4a55-9a0e-4d2b8d0a1b11"
	cli(adminEnv, "partner", "add", "--id", partnerOrg, "--name", "Partner", "--country", "FR")
	partnerKey := strings.TrimSpace(cli(adminEnv, "key", "create", "--role", "partner", "--org", partnerOrg, "--name", "partner"))
	cli(adminEnv, "agreement", "set", "--partner", partnerOrg, "--collections", "sightings", "--max-tlp", "amber")

	// The sensor posts the capture; the node profiles and finds.
	code, _, errs := run(t, map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": sensorKey}, nil, "watch", "--node", eve)
	if code != 0 {
		t.Fatalf("watch --node: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "3512 lines") && !strings.Contains(errs, "findings") {
		t.Errorf("watch --node summary: %s", errs)
	}

	get := func(key, path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// The device, as the analyst sees it.
	code, body := get(analystKey, "/api/v1/devices")
	if code != 200 {
		t.Fatalf("GET /api/v1/devices: %d %s", code, body)
	}
	var list struct {
		Devices []struct {
			Device    string `json:"device"`
			Pseudonym string `json:"pseudonym"`
			Class     string `json:"class"`
			Countries []struct {
				Country string `json:"Country"`
			} `json:"countries"`
			Findings []struct {
				Kind string `json:"kind"`
			} `json:"findings"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Devices) != 1 || list.Devices[0].Device != "192.168.1.129" || list.Devices[0].Class != "cameras" {
		t.Fatalf("devices: %s", body)
	}
	dev := list.Devices[0]
	kinds := map[string]int{}
	for _, f := range dev.Findings {
		kinds[f.Kind]++
	}
	if kinds["beacon"] != 3 || kinds["class-policy"] == 0 {
		t.Errorf("findings by kind %v, want 3 beacons and class-policy breaches", kinds)
	}
	sg := false
	for _, c := range dev.Countries {
		sg = sg || c.Country == "SG"
	}
	if !sg {
		t.Errorf("countries of the camera %+v: no SG", dev.Countries)
	}
	if code, body := get(analystKey, "/api/v1/devices/"+dev.Pseudonym); code != 200 || !strings.Contains(string(body), `"192.168.1.129"`) {
		t.Errorf("GET the device by pseudonym: %d %s", code, body)
	}
	if out := cli(map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": analystKey}, "devices", "--class", "cameras"); !strings.Contains(out, "192.168.1.129  "+dev.Pseudonym) || !strings.Contains(out, "beacon") {
		t.Errorf("devices --server:\n%s", out)
	}

	// The findings are sightings in the node's collection, without the
	// device's identity.
	var got struct {
		Objects []map[string]any `json:"objects"`
	}
	code, body = get(admin, "/taxii2/api1/collections/sightings/objects/?match[type]=sighting")
	if code != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("sightings: %d %s", code, body)
	}
	if len(got.Objects) < 4 {
		t.Fatalf("%d sightings in the node, want a beacon or breach each", len(got.Objects))
	}
	for _, o := range got.Objects {
		d, _ := o["x_entente_device"].(map[string]any)
		if d["pseudonym"] != dev.Pseudonym || d["class"] != "cameras" {
			t.Errorf("sighting %v: x_entente_device %v", o["id"], d)
		}
	}
	if strings.Contains(string(body), "192.168.1.129") {
		t.Errorf("a stored sighting names the device's address")
	}

	// The partner receives the sightings under its agreement, with the
	// pseudonym and nothing of the device.
	code, body = get(partnerKey, "/taxii2/api1/collections/sightings/objects/?match[type]=sighting")
	if code != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("partner reads sightings: %d %s", code, body)
	}
	if len(got.Objects) < 4 || !strings.Contains(string(body), dev.Pseudonym) || strings.Contains(string(body), "192.168.1.129") {
		t.Errorf("partner received %d sightings: %.600s", len(got.Objects), body)
	}

	// Partners and sensors do not list devices; analysts, partners and
	// sensors do not post logs (a sensor does).
	for _, tc := range []struct {
		key, method, path string
		want              int
	}{
		{partnerKey, "GET", "/api/v1/devices", 403},
		{sensorKey, "GET", "/api/v1/devices", 403},
		{partnerKey, "GET", "/api/v1/devices/" + dev.Pseudonym, 403},
		{partnerKey, "GET", "/export/nftables?class=cameras", 403},
		{partnerKey, "GET", "/api/v1/explain?class=cameras&value=SG", 403},
		{analystKey, "GET", "/export/nftables?class=nosuch", 404},
		{analystKey, "GET", "/export/csv?class=cameras", 400},
	} {
		if code, body := get(tc.key, tc.path); code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
	for _, key := range []string{analystKey, partnerKey} {
		req, _ := http.NewRequest("POST", url+"/api/v1/devices/events", strings.NewReader("{}\n"))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("POST device events as a non-sensor: %d, want 403", resp.StatusCode)
		}
	}

	// The class policy, from the node's geo data, through the gate; the
	// CLI gets the same bytes, and the serving is audited.
	code, body = get(sensorKey, "/export/nftables?class=cameras")
	if code != 200 || !strings.Contains(string(body), "table inet entente_class_cameras") || !strings.Contains(string(body), "192.168.1.129") {
		t.Fatalf("export class: %d %.300s", code, body)
	}
	out := cli(map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": analystKey}, "export", "--format", "nftables", "--class", "cameras")
	if out != string(body) {
		t.Errorf("export --class --server differs from GET /export/nftables?class=cameras")
	}
	ex := cli(map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": analystKey}, "export", "--explain", "--class", "cameras", "122.248.234.231")
	if !strings.Contains(ex, "122.248.234.231: out") || !strings.Contains(ex, "SG") {
		t.Errorf("explain: %s", ex)
	}
	code, body = get(admin, "/api/v1/audit?action=admin&limit=1000")
	if code != 200 || strings.Count(string(body), "class cameras as nftables") < 2 {
		t.Errorf("audit of class exports: %d %.500s", code, body)
	}
}

// serveUntil runs "entente serve" like startNode, and returns its URL
// and a function that stops it and waits for it to end.
func serveUntil(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errb, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, e, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...))
	}()
	stop := func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, errb.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s of cancellation")
		}
	}
	re := regexp.MustCompile(`listening on (https?://127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			return m[1], stop
		}
	}
	stop()
	t.Fatalf("serve did not start: %s", errb.String())
	return "", nil
}

// TestDeviceWatchFollowAndRestart: a sensor follows a conn.log that
// grows and is then rotated; the node profiles what is appended, and
// keeps the profiles across a restart (saved at shutdown, loaded at
// start, with the same pseudonyms).
func TestDeviceWatchFollowAndRestart(t *testing.T) {
	conn := testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed", "conn.log")
	data, err := os.ReadFile(conn)
	if err != nil {
		t.Fatal(err)
	}
	var header, body []string
	for l := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		switch m := strings.TrimLeft(l, " \t"); {
		case strings.HasPrefix(m, "#close"):
		case strings.HasPrefix(m, "#"):
			header = append(header, l)
		default:
			body = append(body, l)
		}
	}
	dir := t.TempDir()
	admin := initNode(t, dir)
	// The watch's configuration named by the node's (devices, relative
	// to the node's configuration file).
	etc := t.TempDir()
	if err := os.WriteFile(filepath.Join(etc, "watch.toml"), []byte("constituency = [\"147.32.0.0/16\", \"2001:718:2::/48\"]\nlearn = \"0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodeCfg := filepath.Join(etc, "node.toml")
	if err := os.WriteFile(nodeCfg, []byte("devices = \"watch.toml\"\n[safety]\niana = false\nshipped_warninglists = false\nwidest_ipv4 = 0\nwidest_ipv6 = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stop := serveUntil(t, "--data", dir, "--config", nodeCfg)
	adminEnv := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}
	code, out, errs := run(t, adminEnv, nil, "key", "create", "--role", "sensor", "--name", "follow")
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	sensorKey := strings.TrimSpace(out)
	connections := func() (n int, pseudonyms string) {
		t.Helper()
		var list struct {
			Devices []struct {
				Pseudonym   string `json:"pseudonym"`
				Connections int    `json:"connections"`
			} `json:"devices"`
		}
		req, _ := http.NewRequest("GET", url+"/api/v1/devices", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, d := range list.Devices {
			n += d.Connections
			ps = append(ps, d.Pseudonym)
		}
		return n, strings.Join(ps, ",")
	}

	// The log holds its header and the first half; the sensor follows.
	logPath := filepath.Join(t.TempDir(), "conn.log")
	half := len(body) / 2
	write := func(lines []string, flag int) {
		f, err := os.OpenFile(logPath, flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(strings.Join(lines, "\n") + "\n")
		f.Close()
	}
	write(append(slices.Clone(header), body[:half]...), os.O_CREATE|os.O_WRONLY|os.O_TRUNC)
	ctx, cancel := context.WithCancel(context.Background())
	var serr syncBuffer
	done := make(chan int, 1)
	go func() {
		e := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &serr,
			Getenv: func(k string) string { return map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": sensorKey}[k] }}
		done <- Run(ctx, e, []string{"watch", "--follow", "--poll", "50ms", logPath})
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ok() {
				return
			}
		}
		t.Fatalf("%s: not within 15 s (sensor: %s)", what, serr.String())
	}
	first := 0
	waitFor("the first half profiled", func() bool { first, _ = connections(); return first > 0 })
	// Appended lines, then a rotation: a new file with its header and the
	// rest.
	write(body[half:half+half/2], os.O_APPEND|os.O_WRONLY)
	second := 0
	waitFor("appended lines profiled", func() bool { second, _ = connections(); return second > first })
	os.Rename(logPath, logPath+".1")
	write(append(slices.Clone(header), body[half+half/2:]...), os.O_CREATE|os.O_WRONLY|os.O_TRUNC)
	var all int
	var pseudonyms string
	waitFor("the rotated log profiled", func() bool { all, pseudonyms = connections(); return all > second })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch --follow exited %d: %s", code, serr.String())
	}
	if strings.Contains(serr.String(), "bad line:") || !strings.Contains(serr.String(), " 0 bad lines") {
		t.Errorf("the pieces posted made bad lines: %s", serr.String())
	}

	// Restart: the profiles were saved at shutdown and are loaded again.
	stop()
	if fi, err := os.Stat(filepath.Join(dir, "devices.profiles")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("profiles after shutdown: %v %v", fi, err)
	}
	url, stop = serveUntil(t, "--data", dir, "--config", nodeCfg)
	defer stop()
	if n, ps := connections(); n != all || ps != pseudonyms {
		t.Errorf("after a restart: %d connections (%s), want %d (%s)", n, ps, all, pseudonyms)
	}
}

// TestDeviceFindingsRaiseAnAlert: the node's own devices beacon to a
// server, and so do another organisation's in the same country (its
// findings reported as sightings, with its pseudonyms): both sightings
// are of the same destination object, and correlation raises a
// national alert on it.
func TestDeviceFindingsRaiseAnAlert(t *testing.T) {
	const orgB = "identity--6f1c2a3b-0000-4000-9000-0000000000b2"
	dir := t.TempDir()
	admin := initNode(t, dir)
	cfg := "constituency = [\"192.168.0.0/16\"]\nlearn = \"0\"\n"
	if err := os.WriteFile(filepath.Join(dir, "devices.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startNode(t, "--data", dir, "--config", safetyOff(t))
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}
	idf := filepath.Join(t.TempDir(), "org-b.json")
	os.WriteFile(idf, []byte(`{"type":"bundle","id":"bundle--6f1c2a3b-0000-4000-8000-0000000000b1","objects":[{"type":"identity","spec_version":"2.1","id":"`+orgB+
		`","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Org B","identity_class":"organization","x_entente_country":"DE"}]}`), 0o600)
	if code, _, errs := run(t, env, nil, "ingest", "--quiet", idf); code != 0 {
		t.Fatalf("ingest: %s", errs)
	}
	code, out, errs := run(t, env, nil, "key", "create", "--role", "sensor", "--name", "gw")
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	sensorEnv := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": strings.TrimSpace(out)}

	// A beacon every 10 minutes for the last two hours, to 203.0.113.77.
	beaconLog := func(src string) string {
		var b strings.Builder
		b.WriteString("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\n")
		start := time.Now().Add(-2 * time.Hour).Unix()
		for i := range 12 {
			fmt.Fprintf(&b, "%d.0\tC%d\t%s\t%d\t203.0.113.77\t443\ttcp\t0.5\t300\t1200\n", start+600*int64(i), i, src, 40000+i)
		}
		return b.String()
	}
	logA := filepath.Join(t.TempDir(), "conn.log")
	os.WriteFile(logA, []byte(beaconLog("192.168.7.20")), 0o600)
	if code, _, errs := run(t, sensorEnv, nil, "watch", "--node", logA); code != 0 {
		t.Fatalf("watch --node: %s", errs)
	}
	// Organisation B's own watch (offline, its own pseudonym key) reports
	// its findings to this node.
	devB := t.TempDir()
	os.WriteFile(filepath.Join(devB, "devices.toml"), []byte(cfg), 0o600)
	logB := filepath.Join(t.TempDir(), "conn.log")
	os.WriteFile(logB, []byte(beaconLog("192.168.3.9")), 0o600)
	if code, out, errs := run(t, sensorEnv, nil, "watch", "--data", devB, "--identity", orgB, "--report", "--quiet", logB); code != 0 || !strings.Contains(out, " beacon ") {
		t.Fatalf("organisation B's watch: exit %d: %s%s", code, out, errs)
	}
	dest := devices.DestinationID("203.0.113.77")
	var alerts struct {
		Alerts []struct {
			Tier   string `json:"tier"`
			Threat string `json:"threat"`
			Orgs   int    `json:"organisations"`
		} `json:"alerts"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code := taxiiGet(t, url+"/api/v1/alerts", admin, &alerts); code != 200 {
			t.Fatalf("alerts: %d", code)
		}
		if len(alerts.Alerts) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(alerts.Alerts) != 1 || alerts.Alerts[0].Threat != dest || alerts.Alerts[0].Tier != "national" || alerts.Alerts[0].Orgs != 2 {
		t.Fatalf("alerts %+v, want one national alert of 2 organisations on %s", alerts.Alerts, dest)
	}
}

// TestDeviceFindingOfAKnownIndicator: a device beacons to an address an
// indicator of the node names; its sighting is of that indicator, so it
// joins the threat's alerts.
func TestDeviceFindingOfAKnownIndicator(t *testing.T) {
	const ind = "indicator--6f1c2a3b-0000-4000-8000-0000000000c1"
	dir := t.TempDir()
	admin := initNode(t, dir)
	os.WriteFile(filepath.Join(dir, "devices.toml"), []byte("constituency = [\"192.168.0.0/16\"]\nlearn = \"0\"\n"), 0o600)
	url := startNode(t, "--data", dir, "--config", safetyOff(t))
	env := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}
	bf := filepath.Join(t.TempDir(), "ind.json")
	os.WriteFile(bf, []byte(`{"type":"bundle","id":"bundle--6f1c2a3b-0000-4000-8000-0000000000c2","objects":[{"type":"indicator","spec_version":"2.1","id":"`+ind+
		`","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '203.0.113.88']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`), 0o600)
	if code, _, errs := run(t, env, nil, "ingest", "--quiet", bf); code != 0 {
		t.Fatalf("ingest: %s", errs)
	}
	code, out, errs := run(t, env, nil, "key", "create", "--role", "sensor", "--name", "gw")
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	var b strings.Builder
	b.WriteString("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\n")
	// Beacons to both addresses, every 10 minutes.
	for i := range 24 {
		fmt.Fprintf(&b, "%d.0\tC%d\t192.168.7.20\t%d\t%s\t443\ttcp\t0.5\t300\t1200\n", time.Now().Add(-2*time.Hour).Unix()+300*int64(i), i, 40000+i,
			map[bool]string{true: "203.0.113.88", false: "203.0.113.89"}[i%2 == 0])
	}
	logf := filepath.Join(t.TempDir(), "conn.log")
	os.WriteFile(logf, []byte(b.String()), 0o600)
	if code, _, errs := run(t, map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": strings.TrimSpace(out)}, nil, "watch", "--node", logf); code != 0 {
		t.Fatalf("watch --node: %s", errs)
	}
	var got struct {
		Objects []map[string]any `json:"objects"`
	}
	if code := taxiiGet(t, url+"/taxii2/api1/collections/sightings/objects/?match[type]=sighting", admin, &got); code != 200 {
		t.Fatalf("sightings: %d", code)
	}
	of := map[string]int{}
	for _, o := range got.Objects {
		of[o["sighting_of_ref"].(string)]++
	}
	if of[ind] == 0 || of[devices.DestinationID("203.0.113.89")] == 0 || of[devices.DestinationID("203.0.113.88")] != 0 {
		t.Errorf("sightings of %v: want the indicator for 203.0.113.88 and the infrastructure object for 203.0.113.89", of)
	}
}

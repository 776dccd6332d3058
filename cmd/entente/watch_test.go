package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/testutil"
)

const cameraConfig = `constituency = ["192.168.1.0/24"]
learn = "0"

[[class]]
name = "cameras"
networks = ["192.168.1.129/32"]
countries = ["DE", "NL"]
allow_domains = ["*.myedimax.com"]
`

// TestWatchWorkflow watches the real Slips test6 capture (an Edimax
// camera that phones home to Singapore), reports the findings to a node
// as sightings, runs again on the persisted profiles, lists the device
// and exports the camera class's policy.
func TestWatchWorkflow(t *testing.T) {
	eve := testutil.SharedData(t, "logs", "suricata", "slips-test6-malicious", "eve.json.gz")
	geo := testutil.SharedData(t, "geo", "geo-whois-asn-country-ipv4.csv.gz")
	nodeDir := t.TempDir()
	admin := initNode(t, nodeDir)
	url := startNode(t, "--data", nodeDir)
	code, out, errs := run(t, map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": admin}, nil, "key", "create", "--role", "sensor", "--name", "watch")
	if code != 0 {
		t.Fatalf("key create: %s", errs)
	}
	sensorEnv := map[string]string{"ENTENTE_SERVER": url, "ENTENTE_TOKEN": strings.TrimSpace(out)}

	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "devices.toml"), []byte(cameraConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "sightings.json")
	code, out, errs = run(t, sensorEnv, nil, "watch", "--data", dev, "--geo", geo, "--identity", "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
		"--sightings", bundle, "--report", eve)
	if code != 0 {
		t.Fatalf("watch: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	beacons := 0
	pseudonym := regexp.MustCompile(`\(dev-[a-z2-7]{16}, class cameras\)`)
	for _, l := range lines {
		if !strings.Contains(l, " 192.168.1.129 ") || !pseudonym.MatchString(l) {
			t.Errorf("finding line %q: want the device, its pseudonym and class", l)
		}
		if strings.Contains(l, " beacon ") {
			beacons++
		}
	}
	if beacons != 3 || !strings.Contains(errs, "3512 connections (162 out of the constituency), 1 devices") {
		t.Errorf("%d beacons; stderr %s", beacons, errs)
	}
	for _, f := range []string{"devices.key", "devices.profiles"} {
		if fi, err := os.Stat(filepath.Join(dev, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}

	// The node stored one sighting per finding, with the destinations.
	var got struct {
		Objects []map[string]any `json:"objects"`
	}
	if code := taxiiGet(t, url+"/taxii2/api1/collections/sightings/objects/?match[type]=sighting,infrastructure", admin, &got); code != 200 {
		t.Fatalf("read sightings: %d", code)
	}
	types := map[string]int{}
	for _, o := range got.Objects {
		types[o["type"].(string)]++
	}
	if types["sighting"] != len(lines) || types["infrastructure"] < 3 {
		t.Errorf("node holds %v for %d findings", types, len(lines))
	}
	if data, _ := os.ReadFile(bundle); strings.Contains(string(data), "192.168.1.129") {
		t.Error("the sightings bundle names the device's address")
	}
	// The bundle loads offline into another node too.
	other := t.TempDir()
	initNode(t, other)
	if code, _, errs := run(t, nil, nil, "ingest", "--quiet", "--data", other, "--collection", "sightings", bundle); code != 0 {
		t.Errorf("ingest of the sightings bundle: %s", errs)
	}

	// A second run on the same log reads the profiles: nothing is new.
	code, out, errs = run(t, nil, nil, "watch", "--quiet", "--data", dev, "--geo", geo, eve)
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("second run: exit %d, findings %q, %s", code, out, errs)
	}

	code, out, errs = run(t, nil, nil, "devices", "--data", dev)
	if code != 0 || !strings.Contains(out, "192.168.1.129  dev-") || !strings.Contains(out, "class cameras (address in 192.168.1.129/32)") ||
		!strings.Contains(out, "122.248.252.67 SG www.myedimax.com 9765/udp") || !strings.Contains(out, "countries: SG") {
		t.Errorf("devices: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = run(t, nil, nil, "devices", "--data", dev, "--json", "192.168.1.129")
	var d struct {
		Device       string `json:"device"`
		Class        string `json:"class"`
		Destinations []struct {
			BeaconScore float64 `json:"beacon_score"`
		} `json:"destinations"`
	}
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil || d.Device != "192.168.1.129" || d.Class != "cameras" || d.Destinations[0].BeaconScore < 0.8 {
		t.Errorf("devices --json: %v %+v", err, d)
	}
	if code, _, errs := run(t, nil, nil, "devices", "--data", dev, "10.9.9.9"); code == 0 || !strings.Contains(errs, "no device 10.9.9.9") {
		t.Errorf("unknown device: %d %s", code, errs)
	}

	// The class policy, from the same configuration and profiles.
	nft := filepath.Join(t.TempDir(), "cameras.nft")
	code, _, errs = run(t, nil, nil, "export", "--data", dev, "--geo", geo, "--format", "nftables", "--class", "cameras", "--out", nft)
	rules, _ := os.ReadFile(nft)
	if code != 0 || !strings.HasPrefix(string(rules), "#!/usr/sbin/nft -f") || !strings.Contains(string(rules), "192.168.1.129") {
		t.Errorf("export --class: exit %d %s\n%.500s", code, errs, rules)
	}
	code, out, errs = run(t, nil, nil, "export", "--data", dev, "--geo", geo, "--explain", "--class", "cameras", "122.248.234.231", "DE")
	if code != 0 || !strings.Contains(out, "122.248.234.231: out: 122.248.234.231 is in SG") || !strings.Contains(out, "DE (") {
		t.Errorf("export --explain: exit %d\n%s%s", code, out, errs)
	}
}

func TestWatchErrors(t *testing.T) {
	eve := testutil.SharedData(t, "logs", "suricata", "slips-test6-malicious", "eve.json.gz")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[class]]\nname = \"x\"\ncountries = [\"DE\"]\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"watch", "--config", bad, eve}, "bad.toml: class 1 (\"x\"): no rule assigns devices", 1},
		{[]string{"watch", "--report", eve}, "--report needs --server", 2},
		{[]string{"watch", "--sightings", "x.json", eve}, "need --identity", 2},
		{[]string{"watch", "--quiet", "--log-format", "jsonl", "--fields", "a=src", eve}, "src and dst are required", 2},
		{[]string{"watch", "--quiet", "--learn", "soon", eve}, "--learn", 2},
		{[]string{"watch", "--quiet", filepath.Join(dir, "missing.log")}, "missing.log", 1},
		{[]string{"devices", "--data", dir}, "run `entente watch` first", 1},
		{[]string{"export", "--class", "cameras", "--format", "nftables"}, "--devices-config", 2},
	} {
		code, _, errs := run(t, nil, nil, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	// A damaged profile file is refused, naming it; the run stops before
	// it is overwritten.
	prof := filepath.Join(dir, "p.bin")
	os.WriteFile(prof, []byte("ENTDEVP\x00garbage!!"), 0o600)
	code, _, errs := run(t, nil, nil, "watch", "--quiet", "--profiles", prof, "--key-file", filepath.Join(dir, "k"), eve)
	if data, _ := os.ReadFile(prof); code != 1 || !strings.Contains(errs, "p.bin: load profiles: checksum mismatch") || string(data) != "ENTDEVP\x00garbage!!" {
		t.Errorf("damaged profiles: exit %d %s", code, errs)
	}
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

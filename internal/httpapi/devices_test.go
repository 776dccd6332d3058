package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/httpapi"
	"github.com/entente-cti/entente/internal/node"
)

// deviceConfig classes the camera by its network and lets it talk to
// Germany only.
const deviceConfig = `constituency = ["192.168.1.0/24"]
learn = "0"

[[class]]
name = "cameras"
networks = ["192.168.1.129/32"]
countries = ["DE"]
`

// deviceGeo places 198.51.100.0/24 in Singapore and 203.0.113.0/24 in
// Germany (documentation ranges, public for the watch's purpose here).
const deviceGeo = "198.51.100.0,198.51.100.255,SG\n203.0.113.0,203.0.113.255,DE\n"

// cameraConnLog is a Zeek conn.log of a camera that calls Singapore
// every 10 minutes, 12 times.
func cameraConnLog() []byte {
	var b bytes.Buffer
	b.WriteString("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n")
	b.WriteString("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n")
	b.WriteString("#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\n")
	for i := range 12 {
		fmt.Fprintf(&b, "%d.000000\tC%d\t192.168.1.129\t%d\t198.51.100.7\t443\ttcp\t-\t0.5\t300\t1200\tSF\n", 1767225600+600*i, i, 40000+i)
	}
	return b.Bytes()
}

func withDevices(t *testing.T, e *env) {
	t.Helper()
	cfg, err := devices.ParseConfig([]byte(deviceConfig), "devices.toml")
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.LoadCSV(strings.NewReader(deviceGeo), "geo.csv")
	if err != nil {
		t.Fatal(err)
	}
	w, err := devicenode.New(devicenode.Options{Config: *cfg, Geo: loc, Key: bytes.Repeat([]byte{7}, 32), Identity: org})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.SetDevices(w)
}

// TestDeviceRoutesAuthz: who may post logs, list devices, export and
// explain class policies.
func TestDeviceRoutesAuthz(t *testing.T) {
	e := newEnv(t)
	// Without a device watch the routes say so.
	if r := e.get("/api/v1/devices"); r.status != 404 {
		t.Fatalf("devices without a watch: %d %s", r.status, r.body)
	}
	withDevices(t, e)
	if _, err := e.svc.CreateCollection(context.Background(), node.LocalAdmin(org), entente.Collection{Alias: node.CollectionSightings, Title: "Sightings",
		ReadRoles: []entente.Role{entente.RoleAnalyst, entente.RolePartner}, WriteRoles: []entente.Role{entente.RoleAnalyst, entente.RoleSensor}}); err != nil {
		t.Fatal(err)
	}
	post := func(key string, body []byte) response {
		return e.do(req{method: "POST", path: httpapi.DeviceEventsPath + "?name=conn.log", key: key, body: body,
			header: map[string]string{"Content-Type": "text/plain"}})
	}
	// The sensor posts; its findings are sightings.
	r := post(e.keys[entente.RoleSensor], cameraConnLog())
	if r.status != 200 {
		t.Fatalf("sensor posts: %d %s", r.status, r.body)
	}
	var res struct {
		Lines, Events, Findings int
		Status                  *struct {
			SuccessCount int `json:"success_count"`
		}
	}
	r.json(t, &res)
	if res.Events != 12 || res.Findings < 2 || res.Status == nil || res.Status.SuccessCount == 0 {
		t.Fatalf("post: %s", r.body)
	}
	var list httpapi.DeviceList
	r = e.get("/api/v1/devices?class=cameras")
	r.json(t, &list)
	if len(list.Devices) != 1 || list.Devices[0].Device != "192.168.1.129" || len(list.Devices[0].Findings) < 2 {
		t.Fatalf("devices: %s", r.body)
	}
	pseudonym := list.Devices[0].Pseudonym
	if r := e.get("/api/v1/devices?limit=1&top=1"); r.status != 200 || !strings.Contains(string(r.body), `"total":1`) {
		t.Errorf("devices with a limit: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		method, path string
		body         []byte
		codes        map[entente.Role]int // by role; "" is no key
	}{
		{"GET", "/api/v1/devices", nil, map[entente.Role]int{entente.RoleAdmin: 200, entente.RoleAnalyst: 200, entente.RolePartner: 403, entente.RoleSensor: 403, "": 401}},
		{"GET", "/api/v1/devices/" + pseudonym, nil, map[entente.Role]int{entente.RoleAdmin: 200, entente.RoleAnalyst: 200, entente.RolePartner: 403, entente.RoleSensor: 403, "": 401}},
		{"GET", "/api/v1/devices/192.168.1.129", nil, map[entente.Role]int{entente.RoleAnalyst: 200, entente.RolePartner: 403}},
		{"GET", "/api/v1/devices/dev-nosuchdevice", nil, map[entente.Role]int{entente.RoleAnalyst: 404}},
		{"POST", httpapi.DeviceEventsPath, cameraConnLog(), map[entente.Role]int{entente.RoleAdmin: 200, entente.RoleSensor: 200, entente.RoleAnalyst: 403, entente.RolePartner: 403, "": 401}},
		{"GET", "/export/nftables?class=cameras", nil, map[entente.Role]int{entente.RoleAdmin: 200, entente.RoleAnalyst: 200, entente.RoleSensor: 200, entente.RolePartner: 403, "": 401}},
		{"GET", "/export/plain?class=cameras", nil, map[entente.Role]int{entente.RoleSensor: 200, entente.RolePartner: 403}},
		{"GET", "/export/csv?class=cameras", nil, map[entente.Role]int{entente.RoleAnalyst: 400}},
		{"GET", "/export/nftables?class=cameras&tlp=red", nil, map[entente.Role]int{entente.RoleAnalyst: 400}},
		{"GET", "/export/nftables?class=dogs", nil, map[entente.Role]int{entente.RoleAnalyst: 404}},
		{"GET", "/api/v1/explain?class=cameras&value=198.51.100.7", nil, map[entente.Role]int{entente.RoleAdmin: 200, entente.RoleAnalyst: 200, entente.RoleSensor: 200, entente.RolePartner: 403}},
		{"GET", "/api/v1/devices?clas=cameras", nil, map[entente.Role]int{entente.RoleAnalyst: 400}},
	} {
		for role, want := range tc.codes {
			h := map[string]string{}
			if tc.body != nil {
				h["Content-Type"] = "text/plain"
			}
			r := e.do(req{method: tc.method, path: tc.path, key: e.keys[role], body: tc.body, header: h})
			if r.status != want {
				t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, role, r.status, r.body, want)
			}
		}
	}

	// The class policy: Germany's ranges permitted, the camera a member;
	// a client holding it gets 304.
	r = e.do(req{path: "/export/plain?class=cameras", key: e.keys[entente.RoleSensor]})
	if r.status != 200 || !strings.Contains(string(r.body), "203.0.113.0/24") || strings.Contains(string(r.body), "198.51.100.0/24") {
		t.Fatalf("plain class policy: %d %s", r.status, r.body)
	}
	if r2 := e.do(req{path: "/export/plain?class=cameras", key: e.keys[entente.RoleSensor], header: map[string]string{"If-None-Match": r.header.Get("ETag")}}); r2.status != http.StatusNotModified {
		t.Errorf("unchanged class policy: %d, want 304", r2.status)
	}
	// The ruleset the node serves loads into real nft (in a network
	// namespace of its own), twice, with the camera a member and only
	// Germany's range permitted.
	r = e.do(req{path: "/export/nftables?class=cameras", key: e.keys[entente.RoleSensor]})
	if r.status != 200 {
		t.Fatalf("nftables class policy: %d %s", r.status, r.body)
	}
	loadClassRuleset(t, r.body, map[string]bool{"members_v4 192.168.1.129": true, "permitted_v4 203.0.113.5": true, "permitted_v4 198.51.100.7": false})
	var ex httpapi.ClassExplanation
	r = e.get("/api/v1/explain?class=cameras&value=198.51.100.7")
	r.json(t, &ex)
	if len(ex.Lines) == 0 || !strings.Contains(ex.Lines[0], "out") || !strings.Contains(ex.Lines[0], "SG") {
		t.Errorf("explain: %s", r.body)
	}

	// A body over the bound is refused, unread.
	big := bytes.Repeat([]byte("x"), httpapi.MaxDeviceEventsBody+1)
	if r := post(e.keys[entente.RoleSensor], big); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized post: %d", r.status)
	}
	// Garbage is bad lines, not a failure of the node.
	r = post(e.keys[entente.RoleSensor], []byte("{\"event_type\":\"flow\",\"src_ip\":\"nonsense\"}\n"))
	var bad struct {
		Bad int64 `json:"bad_lines"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &bad) != nil || bad.Bad != 1 {
		t.Errorf("bad line post: %d %s", r.status, r.body)
	}
}

// loadClassRuleset loads a class policy's nftables ruleset into a fresh
// network namespace, twice (it replaces its own table), and checks
// which "set address" elements are in table entente_class_cameras. It
// skips, saying so, without nft, ip(8) or root.
func loadClassRuleset(t *testing.T, rules []byte, want map[string]bool) {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Log("nft not installed (apt-get install nftables): the served ruleset is not loaded")
		return
	}
	ip, err := exec.LookPath("ip")
	if err != nil || os.Geteuid() != 0 {
		t.Log("loading rulesets needs root and ip(8) for a network namespace: not loaded")
		return
	}
	ns := fmt.Sprintf("entente-httpapi-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Logf("cannot make a network namespace here: %v %s", err, out)
		return
	}
	defer exec.Command(ip, "netns", "del", ns).Run()
	run := func(args ...string) (string, error) {
		out, err := exec.Command(ip, append([]string{"netns", "exec", ns, nft}, args...)...).CombinedOutput()
		return string(out), err
	}
	path := filepath.Join(t.TempDir(), "cameras.nft")
	if err := os.WriteFile(path, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if out, err := run("-f", path); err != nil {
			t.Fatalf("nft -f (load %d): %v\n%s", i+1, err, out)
		}
	}
	for k, in := range want {
		set, addr, _ := strings.Cut(k, " ")
		_, err := run("get", "element", "inet", "entente_class_cameras", set, "{ "+addr+" }")
		if (err == nil) != in {
			t.Errorf("%s in set %s: %v, want %v", addr, set, err == nil, in)
		}
	}
}

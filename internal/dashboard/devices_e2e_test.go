package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/geo"
)

// cameraLog is a Zeek conn.log of a camera (192.168.1.129) that calls a
// server in China every 10 minutes and one in Germany twice.
func cameraLog() []byte {
	var b bytes.Buffer
	b.WriteString("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\n")
	b.WriteString("#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\tcount\tcount\n")
	for i := range 12 {
		fmt.Fprintf(&b, "%d.0\tC%d\t192.168.1.129\t%d\t198.51.100.7\t443\ttcp\t0.5\t300\t1200\n", 1767225600+600*i, i, 40000+i)
	}
	for i := range 2 {
		fmt.Fprintf(&b, "%d.5\tD%d\t192.168.1.129\t%d\t203.0.113.9\t443\ttcp\t0.5\t100\t100\n", 1767225600+900*i, i, 50000+i)
	}
	return b.Bytes()
}

// withCamera gives the node a device watch that has seen the camera.
func withCamera(t *testing.T, tn *testNode) {
	t.Helper()
	cfg, err := devices.ParseConfig([]byte("constituency = [\"192.168.1.0/24\"]\nlearn = \"0\"\n[[class]]\nname = \"cameras\"\nnetworks = [\"192.168.1.129/32\"]\ncountries = [\"DE\"]\n"), "devices.toml")
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.LoadCSV(strings.NewReader("198.51.100.0,198.51.100.255,CN\n203.0.113.0,203.0.113.255,DE\n"), "geo.csv")
	if err != nil {
		t.Fatal(err)
	}
	w, err := devicenode.New(devicenode.Options{Config: *cfg, Geo: loc, Key: bytes.Repeat([]byte{1}, 32), Identity: orgID(0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Ingest(context.Background(), "conn.log", cameraLog()); err != nil {
		t.Fatal(err)
	}
	tn.svc.SetDevices(w)
}

// TestDevicesPageInBrowser opens the Devices page: the camera is listed
// with its class, a map on which China (a breach of its class policy) is
// marked and Germany shaded, its destinations and its findings.
func TestDevicesPageInBrowser(t *testing.T) {
	ctx := browser(t)
	tn := newTestNode(t)
	withCamera(t, tn)
	dir := artifacts(t)
	signIn(t, ctx, tn.srv.URL, tn.keys[entente.RoleAnalyst])
	card := `.device[data-device="192.168.1.129"]`
	var text string
	var kinds string
	step(t, ctx, "devices page",
		chromedp.Click(chromedp.CSS(`#nav a[data-page="devices"]`)),
		chromedp.WaitVisible(chromedp.CSS(card+` svg.map path[data-cc="CN"].alerted`)),
		chromedp.WaitVisible(chromedp.CSS(card+` svg.map path[data-cc="DE"].s1, `+card+` svg.map path[data-cc="DE"].s2, `+card+` svg.map path[data-cc="DE"].s3`)),
		screenshot(t, dir, "20-devices"),
		into(&text, chromedp.Text(chromedp.CSS(card))),
		into(&kinds, chromedp.Evaluate[string](`[...document.querySelectorAll('`+card+` .device-findings tr')].map(r => r.dataset.kind).join(",")`)))
	for _, want := range []string{"cameras", "198.51.100.7", "203.0.113.9", "dev-"} {
		if !strings.Contains(text, want) {
			t.Errorf("the device's card lacks %q: %s", want, text)
		}
	}
	if !strings.Contains(kinds, "beacon") || !strings.Contains(kinds, "class-policy") {
		t.Errorf("findings shown: %q, want a beacon and a class-policy breach", kinds)
	}
	if strings.Contains(text, "undefined") || strings.Contains(text, "null") {
		t.Errorf("the card shows a JavaScript null: %s", text)
	}
}

// TestDevicesAPI: the dashboard's devices route answers analysts with
// the same view as the node API, and says when the node has no watch.
func TestDevicesAPI(t *testing.T) {
	tn := newTestNode(t)
	c := newClient(t, tn)
	if resp := c.login(tn.keys[entente.RoleAnalyst]); resp.StatusCode != 200 {
		t.Fatalf("login: %s", resp.Status)
	}
	if resp, m := c.do("GET", "/ui/api/devices", "", nil); resp.StatusCode != 404 {
		t.Errorf("devices without a watch: %s %v", resp.Status, m)
	}
	withCamera(t, tn)
	resp, m := c.do("GET", "/ui/api/devices", "", nil)
	list, _ := m["devices"].([]any)
	if resp.StatusCode != 200 || len(list) != 1 {
		t.Fatalf("devices: %s %v", resp.Status, m)
	}
	d := list[0].(map[string]any)
	fs, _ := d["findings"].([]any)
	if d["device"] != "192.168.1.129" || d["class"] != "cameras" || len(fs) < 2 {
		t.Errorf("device: %v", d)
	}
}

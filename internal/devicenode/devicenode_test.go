package devicenode

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/testutil"
)

const identity = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"

const cameraConfig = `constituency = ["192.168.1.0/24"]
learn = "0"

[[class]]
name = "cameras"
networks = ["192.168.1.129/32"]
countries = ["DE", "NL"]
`

func newWatch(t testing.TB, loc geo.Locator) *Watch {
	t.Helper()
	cfg, err := devices.ParseConfig([]byte(cameraConfig), "devices.toml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Options{Config: *cfg, Geo: loc, Key: bytes.Repeat([]byte{3}, 32), Identity: identity,
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestIngestSaveLoad posts the real Slips test6 capture (gzip, as a
// sensor may) in two pieces, then saves and loads the profiles.
func TestIngestSaveLoad(t *testing.T) {
	eve, err := os.ReadFile(testutil.SharedData(t, "logs", "suricata", "slips-test6-malicious", "eve.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.LoadFiles(filepath.Join(testutil.SharedData(t, "geo"), "geo-whois-asn-country-ipv4.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWatch(t, loc)
	res, err := w.Ingest(context.Background(), "eve.json.gz", eve)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[devices.Kind]int{}
	for _, f := range res.Findings {
		kinds[f.Kind]++
	}
	if res.Lines == 0 || kinds[devices.KindBeacon] != 3 || kinds[devices.KindPolicy] == 0 || res.Bundle == nil {
		t.Fatalf("%d lines, findings %v, bundle %d bytes", res.Lines, kinds, len(res.Bundle))
	}
	if bytes.Contains(res.Bundle, []byte("192.168.1.129")) || !bytes.Contains(res.Bundle, []byte(`"x_entente_device"`)) {
		t.Errorf("the sightings bundle names the device or lacks its pseudonym")
	}
	// The same capture again: nothing new to report (beacons once a day).
	res2, err := w.Ingest(context.Background(), "eve.json.gz", eve)
	if err != nil || len(res2.Findings) != 0 || res2.Bundle != nil {
		t.Errorf("the same log again: %v, %d findings", err, len(res2.Findings))
	}
	data, changed := w.Save()
	if !changed {
		t.Error("Save after an ingest: not changed")
	}
	if _, changed := w.Save(); changed {
		t.Error("Save twice: changed")
	}
	list := w.Devices("cameras")
	if len(list) != 1 || list[0].ID.String() != "192.168.1.129" || len(w.Devices("nosuch")) != 0 {
		t.Fatalf("devices: %+v", list)
	}
	for _, name := range []string{"192.168.1.129", list[0].Pseudonym} {
		if d, ok := w.Device(name); !ok || d.Pseudonym != list[0].Pseudonym {
			t.Errorf("Device(%q): %v", name, ok)
		}
	}
	if _, ok := w.Device("dev-aaaaaaaaaaaaaaaa"); ok {
		t.Error("an unknown pseudonym names a device")
	}
	w2 := newWatch(t, loc)
	if err := w2.Load(data); err != nil {
		t.Fatal(err)
	}
	if got := w2.Devices(""); len(got) != 1 || got[0].Connections != list[0].Connections || got[0].Pseudonym != list[0].Pseudonym {
		t.Errorf("loaded: %+v", got)
	}
	if err := w2.Load(data[:len(data)-1]); err == nil || !strings.Contains(err.Error(), "load device profiles") {
		t.Errorf("a truncated file: %v", err)
	}
	// Class policies from the profiles and the geo data.
	b, err := w.ClassPolicy("cameras", "nftables", exportOptions())
	if err != nil || !bytes.Contains(b, []byte("192.168.1.129")) || !bytes.Contains(b, []byte("entente_class_cameras")) {
		t.Errorf("class policy: %v\n%.300s", err, b)
	}
	lines, err := w.Explain("cameras", "122.248.234.231")
	if err != nil || len(lines) == 0 || !strings.Contains(lines[0], "out") {
		t.Errorf("explain: %v %q", err, lines)
	}
	if _, err := newWatch(t, nil).ClassPolicy("cameras", "plain", exportOptions()); err == nil {
		t.Error("a class policy without geo data")
	}
}

// TestConcurrentUse: posts, listings and saves at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	w := newWatch(t, nil)
	conn := testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed", "conn.log")
	data, err := os.ReadFile(conn)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 5 {
				switch i {
				case 0, 1:
					if _, err := w.Ingest(context.Background(), "conn.log", data); err != nil {
						t.Error(err)
					}
				case 2:
					w.Devices("")
					w.Clock()
				case 3:
					w.Save()
				}
			}
		})
	}
	wg.Wait()
}

// FuzzIngest: whatever a sensor posts, the watch does not fail other
// than with an error, and its profiles still save and load.
func FuzzIngest(f *testing.F) {
	f.Add([]byte("#separator \\x09\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n1.0\t192.168.1.129\t1\t8.8.8.8\t53\tudp\n"))
	f.Add([]byte(`{"event_type":"flow","src_ip":"192.168.1.129","dest_ip":"8.8.8.8","proto":"UDP","flow":{"start":"2026-01-01T00:00:00Z"}}` + "\n"))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	w := newWatch(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := w.Ingest(context.Background(), "fuzz", body)
		if err == nil && res == nil {
			t.Fatal("no result and no error")
		}
		data, _ := w.Save()
		if err := newWatch(t, nil).Load(data); err != nil {
			t.Fatalf("saved profiles do not load: %v", err)
		}
	})
}

func exportOptions() export.Options {
	return export.Options{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

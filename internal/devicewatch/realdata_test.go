package devicewatch

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/devices"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/sensor"
	"github.com/entente-cti/entente/internal/testutil"
)

var (
	geoOnce sync.Once
	geoLoc  *geo.Table
	geoErr  error
)

// realGeo is the shared IP-to-country data.
func realGeo(t *testing.T) geo.Locator {
	t.Helper()
	dir := testutil.SharedData(t, "geo")
	geoOnce.Do(func() {
		geoLoc, geoErr = geo.LoadFiles(filepath.Join(dir, "geo-whois-asn-country-ipv4.csv.gz"), filepath.Join(dir, "geo-whois-asn-country-ipv6.csv.gz"))
	})
	if geoErr != nil {
		t.Fatal(geoErr)
	}
	return geoLoc
}

func inputsOf(paths ...string) []sensor.Input {
	var in []sensor.Input
	for _, p := range paths {
		in = append(in, sensor.Input{Name: p, Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	return in
}

func watch(t *testing.T, cfg devices.Config, loc geo.Locator, paths ...string) (*devices.Watcher, []devices.Finding) {
	t.Helper()
	w, err := devices.New(cfg, loc, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := SortInputs(inputsOf(paths...), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Run(context.Background(), Options{Watcher: w, Logs: inputs, Scan: sensor.Options{ChunkSize: 64 << 10}})
	if err != nil || st.Bad != 0 {
		t.Fatalf("run: %v; %d bad lines %v", err, st.Bad, st.BadLines)
	}
	return w, w.Findings()
}

// TestSlipsTest6Camera: the Slips test6 capture (Suricata EVE) is a
// honeypot, 192.168.1.129, that resolves www.myedimax.com (an Edimax
// camera's cloud) to 122.248.252.67 and keeps UDP flows to it on ports
// 8760 and 9765, and to 122.248.234.231 on 8760: the established flow to
// 122.248.252.67:8760/udp is the one Slips's own integration test
// documents ("Connection to unknown destination port"). The watch must
// find exactly those three as beacons, about every 1153 s, and a camera
// class that permits only DE and NL must be breached by Singapore.
func TestSlipsTest6Camera(t *testing.T) {
	eve := testutil.SharedData(t, "logs", "suricata", "slips-test6-malicious", "eve.json.gz")
	cfg := devices.Config{Constituency: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}, Learn: -1,
		Classes: []devices.Class{{Name: "cameras", Networks: []netip.Prefix{netip.MustParsePrefix("192.168.1.129/32")}, Countries: []string{"DE", "NL"}}}}
	w, fs := watch(t, cfg, realGeo(t), eve)
	st := w.Stats()
	if st.Flows != 3512 || st.Devices != 1 {
		t.Errorf("stats %+v: want the 3512 flows of SOURCES.md and one device talking out", st)
	}
	var beacons, breaches []string
	for _, f := range fs {
		if f.Device.String() != "192.168.1.129" || f.Class != "cameras" {
			t.Errorf("finding of %s (class %q)", f.Device, f.Class)
		}
		switch f.Kind {
		case devices.KindBeacon:
			beacons = append(beacons, f.Dest.String()+":"+itoa(f.Port)+" "+f.DestName)
			if p := f.Beacon.Period; p < 1152*time.Second || p > 1154*time.Second || f.Score < 0.8 || f.Country != "SG" {
				t.Errorf("beacon to %s: period %v, score %.2f, country %s", f.Dest, p, f.Score, f.Country)
			}
		case devices.KindPolicy:
			breaches = append(breaches, f.Dest.String()+" "+f.Country)
		case devices.KindLongConnection, devices.KindLargeUpload:
			t.Errorf("no flow of this capture lasts an hour or sends 100 MB: %s", f.Evidence)
		}
	}
	slices.Sort(beacons)
	want := []string{"122.248.234.231:8760 ", "122.248.252.67:8760 www.myedimax.com", "122.248.252.67:9765 www.myedimax.com"}
	if !slices.Equal(beacons, want) {
		t.Errorf("beacons %q, want %q", beacons, want)
	}
	for _, b := range []string{"122.248.252.67 SG", "122.248.234.231 SG"} {
		if !slices.Contains(breaches, b) {
			t.Errorf("no class-policy breach for %s (breaches %q)", b, breaches)
		}
	}
	d, _ := w.Device(devices.AddrDevice(netip.MustParseAddr("192.168.1.129")))
	var ccs []string
	for _, c := range d.Countries {
		ccs = append(ccs, c.Country)
	}
	if !slices.Equal(ccs, []string{"SG", "US"}) || d.Connections != 162 {
		t.Errorf("camera: countries %v, %d connections", ccs, d.Connections)
	}
	// Permitting the vendor's domain clears the breach of the address
	// resolved from it, not the other.
	cfg.Classes[0].AllowDomains = []string{"*.myedimax.com"}
	_, fs = watch(t, cfg, realGeo(t), eve)
	breaches = nil
	for _, f := range fs {
		if f.Kind == devices.KindPolicy && strings.HasPrefix(f.Dest.String(), "122.248.") {
			breaches = append(breaches, f.Dest.String())
		}
	}
	if !slices.Equal(breaches, []string{"122.248.234.231"}) {
		t.Errorf("with *.myedimax.com permitted, breaches %q", breaches)
	}
}

func itoa(n uint16) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// TestSlipsTest9DHCP: the Slips test9 capture (Zeek JSON, times relative
// to its start) is one Windows machine, "John-PC", whose DHCP lease
// (dhcp.log) gives its MAC 08:00:27:7f:09:e1 for 10.0.2.15. The watch
// must profile the MAC, not the address, class it by its DHCP host name,
// and name its destinations from dns.log. Four minutes of browsing hold
// no beacon, and Slips documents none for this capture.
func TestSlipsTest9DHCP(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek", "slips-test9-mixed")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	cfg := devices.Config{Constituency: []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")},
		Classes: []devices.Class{{Name: "pcs", Hostnames: []string{"*-PC"}, DenyCountries: []string{"TH"}}}}
	w, fs := watch(t, cfg, realGeo(t), paths...)
	list := w.Devices()
	if len(list) != 1 {
		t.Fatalf("%d devices, want 1", len(list))
	}
	d := list[0]
	if d.ID.String() != "08:00:27:7f:09:e1" || d.Hostname != "John-PC" || d.Class != "pcs" || !strings.Contains(d.ClassReason, "DHCP host name") {
		t.Errorf("device %s %q class %q (%s)", d.ID, d.Hostname, d.Class, d.ClassReason)
	}
	if d.Connections != 532 || !d.Learning {
		t.Errorf("%d connections (learning %v), want 532 out of the constituency, in the learning period", d.Connections, d.Learning)
	}
	named := 0
	for _, x := range d.Destinations {
		if x.Name != "" {
			named++
		}
	}
	if named < len(d.Destinations)/2 {
		t.Errorf("%d of %d destinations named from dns.log", named, len(d.Destinations))
	}
	var kinds []string
	for _, f := range fs {
		kinds = append(kinds, f.Kind.String()+" "+f.Dest.String())
		if f.Kind == devices.KindBeacon {
			t.Errorf("beacon in four minutes of browsing: %s", f.Evidence)
		}
	}
	// In its learning period nothing is new; the class still breaches on
	// Thailand (152.163.56.3, at.atwola.com, placed in TH by the geo data).
	if !slices.Equal(kinds, []string{"class-policy 152.163.56.3"}) {
		t.Errorf("findings %q", kinds)
	}
}

// TestSlipsTest10IPv6: the Slips test10 capture (Zeek TSV, IPv4 and
// IPv6) has two devices talking out of the CTU networks in its minute;
// their destinations are named from its dns.log.
func TestSlipsTest10IPv6(t *testing.T) {
	dir := testutil.SharedData(t, "logs", "zeek", "slips-test10-mixed")
	cfg := devices.Config{Constituency: []netip.Prefix{netip.MustParsePrefix("147.32.0.0/16"), netip.MustParsePrefix("2001:718:2::/48")}}
	w, fs := watch(t, cfg, realGeo(t), filepath.Join(dir, "conn.log"), filepath.Join(dir, "dns.log"))
	var ids []string
	for _, d := range w.Devices() {
		ids = append(ids, d.ID.String())
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"147.32.83.156", "2001:718:2:1663:dc58:6d9:ef13:51a5"}) || len(fs) != 0 {
		t.Errorf("devices %q, findings %d", ids, len(fs))
	}
	d, _ := w.Device(devices.AddrDevice(netip.MustParseAddr("2001:718:2:1663:dc58:6d9:ef13:51a5")))
	top := d.Destinations[0]
	if top.Addr.String() != "2620:0:862:ed1a::2:b" || top.Name != "upload.wikimedia.org" || top.Connections != 6 || top.Country != "US" {
		t.Errorf("top destination %+v", top)
	}
}

// TestWorkersDoNotChangeResults: the same logs give the same profiles
// with one worker or several, any chunk size, one shard or three.
func TestWorkersDoNotChangeResults(t *testing.T) {
	dir := testutil.SharedData(t, "logs")
	paths := []string{filepath.Join(dir, "suricata", "slips-test6-malicious", "eve.json.gz"), filepath.Join(dir, "zeek", "slips-test10-mixed", "conn.log")}
	cfg := devices.Config{Constituency: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("147.32.0.0/16")}, Learn: -1}
	var saved [][]byte
	for i, o := range []sensor.Options{{Workers: 1, ChunkSize: 1 << 20}, {Workers: 4, ChunkSize: 8 << 10}} {
		w, _ := devices.New(cfg, nil, []byte("0123456789abcdef"))
		if _, err := Run(context.Background(), Options{Watcher: w, Logs: inputsOf(paths...), Scan: o, Shards: 1 + 2*i}); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, w.Save())
	}
	if string(saved[0]) != string(saved[1]) {
		t.Error("profiles depend on the number of workers or the chunk size")
	}
}

package devices

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// fakeGeo places addresses by their first byte: a table of prefixes.
type fakeGeo map[netip.Prefix]string

func (g fakeGeo) Lookup(a netip.Addr) (string, bool) {
	best, cc := -1, ""
	for p, c := range g {
		if p.Contains(a) && p.Bits() > best {
			best, cc = p.Bits(), c
		}
	}
	return cc, best >= 0
}

func (g fakeGeo) CountryPrefixes(cc ...string) []netip.Prefix {
	var out []netip.Prefix
	for p, c := range g {
		if slices.Contains(cc, c) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

var testGeo = fakeGeo{
	netip.MustParsePrefix("5.0.0.0/8"):        "DE",
	netip.MustParsePrefix("31.0.0.0/8"):       "NL",
	netip.MustParsePrefix("122.0.0.0/8"):      "SG",
	netip.MustParsePrefix("203.0.0.0/8"):      "CN",
	netip.MustParsePrefix("8.0.0.0/8"):        "US",
	netip.MustParsePrefix("2a00::/16"):        "DE",
	netip.MustParsePrefix("2400::/16"):        "CN",
	netip.MustParsePrefix("203.0.113.0/24"):   "AU",
	netip.MustParsePrefix("122.248.0.0/16"):   "SG",
	netip.MustParsePrefix("31.13.64.0/18"):    "IE",
	netip.MustParsePrefix("5.9.0.0/16"):       "DE",
	netip.MustParsePrefix("122.248.252.0/24"): "SG",
}

var lan = netip.MustParsePrefix("192.168.1.0/24")

func mustWatcher(t testing.TB, cfg Config) *Watcher {
	t.Helper()
	if len(cfg.Constituency) == 0 {
		cfg.Constituency = []netip.Prefix{lan}
	}
	w, err := New(cfg, testGeo, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func flow(src, dst string, at time.Duration, port uint16) *Flow {
	return &Flow{Time: t0 + int64(at), Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), DstPort: port, Proto: 6, SrcBytes: 300, DstBytes: 1200}
}

func kinds(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind.String()+" "+f.Dest.String())
	}
	return out
}

func TestMACPrefix(t *testing.T) {
	for _, tc := range []struct {
		in, str, first, last string
	}{
		{"bc:ad:28", "bc:ad:28", "bc:ad:28:00:00:00", "bc:ad:28:ff:ff:ff"},
		{"BC-AD-28-A0/28", "bc:ad:28:a0/28", "bc:ad:28:a0:00:00", "bc:ad:28:af:ff:ff"},
		{"00:11:22:33:44:55", "00:11:22:33:44:55", "00:11:22:33:44:55", "00:11:22:33:44:55"},
		{"f0/4", "f0/4", "f0:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"},
	} {
		p, err := ParseMACPrefix(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if p.String() != tc.str || p.MAC.String() != tc.first || p.Last().String() != tc.last {
			t.Errorf("%q: %s %s..%s, want %s %s..%s", tc.in, p, p.MAC, p.Last(), tc.str, tc.first, tc.last)
		}
		first, _ := ParseMAC(tc.first)
		last, _ := ParseMAC(tc.last)
		if !p.Contains(first) || !p.Contains(last) {
			t.Errorf("%q does not contain its own ends", tc.in)
		}
		out := last
		out[0] ^= 0x80
		if p.Bits > 0 && p.Contains(out) && p.Bits >= 1 {
			t.Errorf("%q contains %s", tc.in, out)
		}
	}
	for _, bad := range []string{"", "bc:ad", "bcad28", "bc:ad:28:00:00:00:00", "bc::28", "bc:ad:2g", "bc:ad:28/25", "bc:ad:28/0", "bc:ad:28/x"} {
		if bad == "bc:ad" {
			continue // two bytes are a valid 16-bit prefix
		}
		if _, err := ParseMACPrefix(bad); err == nil {
			t.Errorf("ParseMACPrefix(%q) accepted", bad)
		}
	}
}

func TestDeviceIDAndPseudonym(t *testing.T) {
	for _, s := range []string{"bc:ad:28:00:00:01", "192.168.1.20", "2001:db8::7"} {
		id, err := ParseDeviceID(s)
		if err != nil || id.String() != s {
			t.Fatalf("ParseDeviceID(%q) = %v, %v", s, id, err)
		}
	}
	if _, err := ParseDeviceID("cam-door"); err == nil {
		t.Error("a host name accepted as a device")
	}
	a := MACDevice(MAC{0xbc, 0xad, 0x28, 0, 0, 1})
	b := AddrDevice(netip.MustParseAddr("192.168.1.20"))
	pa, pb := Pseudonym(testKey, a), Pseudonym(testKey, b)
	if pa == pb || pa != Pseudonym(testKey, a) || !strings.HasPrefix(pa, "dev-") || len(pa) != 20 {
		t.Errorf("pseudonyms %q %q", pa, pb)
	}
	other := slices.Clone(testKey)
	other[0] ^= 1
	if Pseudonym(other, a) == pa {
		t.Error("the pseudonym does not depend on the key")
	}
	// The pseudonym reveals neither the MAC nor the address.
	for _, s := range []string{"bcad28", "bc:ad", "192", "168"} {
		if strings.Contains(pa+pb, s) {
			t.Errorf("pseudonym contains %q", s)
		}
	}
	// An IPv4-mapped address is the IPv4 device.
	if AddrDevice(netip.MustParseAddr("::ffff:192.168.1.20")) != b {
		t.Error("IPv4-mapped address is another device")
	}
}

func TestParseConfig(t *testing.T) {
	good := `constituency = ["192.168.0.0/16", "2001:db8:1::/48", "10.1.2.3"]
learn = "3d"
top_destinations = 16
long_connection = "2h"
large_bytes = 5000000
[beacon]
threshold = 0.8
min_gap = "2s"
[[class]]
name = "cameras"
mac_prefixes = ["bc:ad:28", "00:80:f0:a0/28"]
hostnames = ["cam-*"]
dhcp_fingerprints = ["1,3,6,*"]
networks = ["192.168.10.0/24"]
countries = ["de", "NL"]
allow_networks = ["52.58.0.0/15"]
allow_domains = ["*.vendor.example"]
[[class]]
name = "tvs"
software = ["*Tizen*"]
deny_countries = ["CN"]
`
	c, err := ParseConfig([]byte(good), "devices.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := c.withDefaults()
	if d.Learn != 72*time.Hour || d.TopDestinations != 16 || d.LongConnection != 2*time.Hour || d.LargeBytes != 5e6 ||
		d.Beacon.Threshold != 0.8 || d.Beacon.MinGap != 2*time.Second || d.Beacon.Window != 32 || len(d.Constituency) != 3 ||
		d.Constituency[2] != netip.MustParsePrefix("10.1.2.3/32") {
		t.Errorf("config %+v", d)
	}
	cl, ok := c.Class("cameras")
	if !ok || !slices.Equal(cl.Countries, []string{"DE", "NL"}) || len(cl.MACPrefixes) != 2 || cl.MACPrefixes[1].Bits != 28 {
		t.Errorf("class %+v", cl)
	}
	zero, err := ParseConfig([]byte(`learn = "0"`), "z.toml")
	if err != nil || zero.withDefaults().Learn != 0 {
		t.Errorf("learn 0: %v %v", zero, err)
	}
	for _, tc := range []struct{ toml, want string }{
		{`constituncy = ["10.0.0.0/8"]`, "unknown setting constituncy"},
		{`constituency = ["10.0.0.0/33"]`, `constituency: "10.0.0.0/33"`},
		{`learn = "a week"`, `duration "a week"`},
		{`top_destinations = 5000`, "top_destinations: 5000"},
		{"[beacon]\nwindow = 300", "beacon.window: 300"},
		{"[beacon]\nthreshold = 1.5", "beacon.threshold: 1.5"},
		{"[beacon]\nmin_events = 40", "beacon.min_events: 40"},
		{"[[class]]\nname = \"x\"\nnetworks = [\"10.0.0.0/8\"]\ncountries = [\"DE\"]\ndeny_countries = [\"CN\"]", "not both"},
		{"[[class]]\nname = \"x\"\nnetworks = [\"10.0.0.0/8\"]\ncountries = [\"Germany\"]", `"Germany" is not an ISO 3166-1`},
		{"[[class]]\nname = \"x\"\ncountries = [\"DE\"]", "no rule assigns devices"},
		{"[[class]]\nname = \"bad name\"\nnetworks = [\"10.0.0.0/8\"]", "name must be"},
		{"[[class]]\nname = \"x\"\nmac_prefixes = [\"zz:00\"]", "mac_prefixes"},
		{"[[class]]\nname = \"x\"\nhostnames = [\"[\"]", "pattern \"[\""},
		{"[[class]]\nname = \"x\"\nnetworks = [\"10.0.0.0/8\"]\n[[class]]\nname = \"x\"\nnetworks = [\"10.0.0.0/8\"]", "used twice"},
		{`constituency = "10.0.0.0/8"`, "devices.toml"},
	} {
		_, err := ParseConfig([]byte(tc.toml), "devices.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "devices.toml") {
			t.Errorf("%q: error %v, want one naming devices.toml and containing %q", tc.toml, err, tc.want)
		}
	}
}

// TestClassPolicyTable: which devices a class takes, and what its policy
// says of destinations.
func TestClassPolicyTable(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
[[class]]
name = "cameras"
mac_prefixes = ["bc:ad:28"]
hostnames = ["IPC*", "cam-*"]
dhcp_fingerprints = ["1,3,6,12,15,28,42"]
networks = ["192.168.10.0/24"]
countries = ["DE", "NL"]
allow_networks = ["122.248.252.0/24"]
allow_domains = ["*.myedimax.com"]
[[class]]
name = "tvs"
software = ["*Tizen*"]
deny_countries = ["CN", "RU"]
allow_unknown_country = true
[[class]]
name = "printers"
networks = ["192.168.20.0/24"]
`), "classes.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		a     attrs
		class string
		why   string
	}{
		{"vendor prefix", attrs{mac: MAC{0xbc, 0xad, 0x28, 1, 2, 3}}, "cameras", "MAC vendor prefix bc:ad:28"},
		{"host name", attrs{hostname: "ipc-kitchen"}, "cameras", `DHCP host name matches "IPC*"`},
		{"fingerprint", attrs{fingerprint: "1,3,6,12,15,28,42"}, "cameras", "DHCP fingerprint"},
		{"network", attrs{addrs: [2]netip.Addr{netip.MustParseAddr("192.168.10.7")}}, "cameras", "address in 192.168.10.0/24"},
		{"software", attrs{software: []string{"Samsung Tizen 5.0"}}, "tvs", "software"},
		{"first class wins", attrs{hostname: "cam-1", software: []string{"Tizen"}}, "cameras", "host name"},
		{"second network", attrs{addrs: [2]netip.Addr{netip.MustParseAddr("192.168.20.7")}}, "printers", "192.168.20.0/24"},
		{"none", attrs{mac: MAC{0x00, 0x11, 0x22, 1, 2, 3}, hostname: "laptop"}, "", ""},
	} {
		got, why := "", ""
		for _, c := range cfg.Classes {
			if ok, r := c.match(&tc.a); ok {
				got, why = c.Name, r
				break
			}
		}
		if got != tc.class || !strings.Contains(why, tc.why) {
			t.Errorf("%s: class %q (%s), want %q (%s)", tc.name, got, why, tc.class, tc.why)
		}
	}
	cam, _ := cfg.Class("cameras")
	tv, _ := cfg.Class("tvs")
	pr, _ := cfg.Class("printers")
	for _, tc := range []struct {
		c        *Class
		addr, cc string
		name     string
		ok       bool
		why      string
	}{
		{cam, "5.9.1.1", "DE", "", true, "permitted by class cameras (DE, NL)"},
		{cam, "31.1.1.1", "NL", "", true, "permitted"},
		{cam, "203.0.113.9", "CN", "", false, "203.0.113.9 is in CN; class cameras permits only DE, NL"},
		{cam, "8.8.8.8", "", "", false, "the geo data cannot place 8.8.8.8"},
		{cam, "122.248.252.67", "SG", "", true, "permitted network 122.248.252.0/24"},
		{cam, "122.248.234.231", "SG", "www.myedimax.com", true, "permitted domain (*.myedimax.com)"},
		{cam, "122.248.234.231", "SG", "myedimax.com.", true, "permitted domain"},
		{cam, "122.248.234.231", "SG", "myedimax.com.evil.example", false, "permits only"},
		{tv, "203.0.113.9", "CN", "", false, "denied by class tvs (CN, RU)"},
		{tv, "5.9.1.1", "DE", "", true, "not denied"},
		{tv, "8.8.8.8", "", "", true, "permits unknown countries"},
		{pr, "203.0.113.9", "CN", "", true, "no country policy"},
	} {
		v := tc.c.Judge(netip.MustParseAddr(tc.addr), tc.cc, tc.name)
		if v.Permitted != tc.ok || !strings.Contains(v.Reason, tc.why) {
			t.Errorf("%s: %s (%s, %q): %v %q, want %v %q", tc.c.Name, tc.addr, tc.cc, tc.name, v.Permitted, v.Reason, tc.ok, tc.why)
		}
	}
}

func TestSketches(t *testing.T) {
	var h hll
	for _, n := range []int{0, 10, 100, 1000, 20000} {
		h = hll{}
		for i := 0; i < n; i++ {
			a := netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
			h.add(hashAddr(a))
			h.add(hashAddr(a)) // twice: distinct values only
		}
		est := float64(h.estimate())
		if math.Abs(est-float64(n)) > 3*0.092*float64(n)+1 {
			t.Errorf("HyperLogLog of %d distinct values estimates %.0f", n, est)
		}
	}
	var cs countrySet
	for _, c := range []string{"DE", "ZZ", "AA", ""} {
		cs.add(ccOf(c))
	}
	if got := cs.list(); !slices.Equal(got, []string{"AA", "DE", "ZZ", "??"}) || !cs.has(ccOf("de")) || cs.has(ccOf("FR")) {
		t.Errorf("country set %v", got)
	}
	var ns netSet
	for i := uint32(0); i < 10; i++ {
		if !ns.add(i*7, 5) && i < 5 {
			t.Errorf("network %d not added", i)
		}
	}
	if len(ns.fp) != 5 || !ns.saturated || ns.add(0, 5) || !slices.IsSorted(ns.fp) {
		t.Errorf("network set %+v", ns)
	}
}

// beats makes a window from times (seconds) and sizes.
func windowOf(times []float64, size func(i int) uint64) *window {
	w := &window{}
	for i, s := range times {
		w.add(int64(s*1000), size(i), 255)
	}
	return w
}

func TestBeaconScore(t *testing.T) {
	cfg := Config{}.withDefaults().Beacon
	r := rand.New(rand.NewPCG(1, 2))
	regular := func(n int, period, jitter, missed float64) []float64 {
		var out []float64
		t := 1000.0
		for len(out) < n {
			t += period * (1 - jitter*r.Float64())
			if r.Float64() < missed {
				continue
			}
			out = append(out, t)
		}
		return out
	}
	poisson := func(n int, mean float64) []float64 {
		var out []float64
		t := 1000.0
		for range n {
			t += r.ExpFloat64() * mean
			out = append(out, t)
		}
		return out
	}
	constant := func(int) uint64 { return 256 }
	noisy := func(int) uint64 { return uint64(100 + r.IntN(5000)) }
	var s scratch
	for _, tc := range []struct {
		name     string
		times    []float64
		size     func(int) uint64
		min, max float64
	}{
		{"exact beacon", regular(32, 60, 0, 0), constant, 0.99, 1},
		{"10% jitter", regular(32, 600, 0.1, 0), constant, 0.85, 0.97},
		{"20% jitter, missed beats", regular(32, 60, 0.2, 0.2), constant, 0.7, 0.9},
		{"exact, random sizes", regular(32, 60, 0, 0), noisy, 0.7, 0.8},
		{"too few events", regular(5, 60, 0, 0), constant, 0, 0},
		{"few events: discounted", regular(8, 60, 0, 0), constant, 0.45, 0.48},
		{"poisson, constant size", poisson(32, 300), constant, 0, 0.5},
		{"poisson, random sizes", poisson(32, 300), noisy, 0, 0.3},
	} {
		st, ok := scoreBeacon(windowOf(tc.times, tc.size), &cfg, &s)
		if !ok {
			st.Score = 0
		}
		if st.Score < tc.min || st.Score > tc.max {
			t.Errorf("%s: score %.3f (%+v), want in [%.2f, %.2f]", tc.name, st.Score, st, tc.min, tc.max)
		}
	}
	// The period survives missed beats (intervals of several periods).
	st, _ := scoreBeacon(windowOf(regular(32, 1153, 0, 0.4), constant), &cfg, &s)
	if d := st.Period - 1153*time.Second; d < -time.Second || d > time.Second || st.Missed < 0.2 {
		t.Errorf("period %v (missed %.2f), want 1153s", st.Period, st.Missed)
	}
	// Connections within MinGap are one event.
	st, _ = scoreBeacon(windowOf([]float64{0, 0.2, 60, 60.5, 120, 180, 240, 300, 360}, constant), &cfg, &s)
	if st.Events != 7 || st.Connections != 9 {
		t.Errorf("events %d of %d connections, want 7 of 9", st.Events, st.Connections)
	}
}

// TestWindowOrder: the window keeps the latest connections by time,
// whatever order they arrive in, and survives a long gap.
func TestWindowOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var times []int64
	for i := range 200 {
		times = append(times, int64(i)*60_000)
	}
	shuffled := slices.Clone(times)
	// Out of order by up to 5 positions, as logs written at the end of
	// connections are.
	for i := range shuffled {
		j := min(len(shuffled)-1, i+r.IntN(5))
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	w := &window{}
	for _, ms := range shuffled {
		w.add(1_700_000_000_000+ms, 1, 32)
	}
	var got []int64
	for i := range w.beats {
		got = append(got, w.base+int64(w.at(i).t)-1_700_000_000_000)
	}
	if !slices.Equal(got, times[len(times)-32:]) {
		t.Errorf("window %v, want the last 32 minutes", got)
	}
	// 60 days later: the old beats go, the new one stays.
	w.add(1_700_000_000_000+60*86400_000, 1, 32)
	if len(w.beats) != 1 || w.base != 1_700_000_000_000+60*86400_000 {
		t.Errorf("after a long gap: %d beats, base %d", len(w.beats), w.base)
	}
	// An older connection arriving late goes to its place.
	w.add(1_700_000_000_000+60*86400_000-5000, 1, 32)
	if len(w.beats) != 2 || w.at(0).t != 0 || w.at(1).t != 5000 {
		t.Errorf("late beat: %+v base %d", w.beats, w.base)
	}
}

func TestDeviceIdentity(t *testing.T) {
	w := mustWatcher(t, Config{Learn: -1})
	// By address, then the lease names its MAC: the device moves to it.
	w.Flow(flow("192.168.1.20", "5.9.1.1", 0, 443))
	w.Lease(&Lease{Time: t0 + 1e9, MAC: MAC{0xbc, 0xad, 0x28, 0, 0, 1}, Addr: netip.MustParseAddr("192.168.1.20"), Hostname: "cam-door"})
	w.Flow(flow("192.168.1.20", "5.9.1.1", time.Minute, 443))
	// A flow with its own MAC: that MAC.
	f := flow("192.168.1.30", "5.9.1.1", 2*time.Minute, 443)
	f.SrcMAC = MAC{0x00, 0x11, 0x22, 0, 0, 2}
	w.Flow(f)
	// Inbound, internal and multicast connections are not profiled.
	w.Flow(flow("5.9.1.1", "192.168.1.20", 3*time.Minute, 22))
	w.Flow(flow("192.168.1.20", "192.168.1.1", 3*time.Minute, 53))
	w.Flow(flow("192.168.1.20", "239.255.255.250", 3*time.Minute, 1900))
	w.Flow(flow("192.168.1.20", "10.9.9.9", 3*time.Minute, 53))
	var ids []string
	for _, d := range w.Devices() {
		ids = append(ids, d.ID.String()+" "+d.Hostname+fmt.Sprintf(" %d", d.Connections))
	}
	if !slices.Equal(ids, []string{"bc:ad:28:00:00:01 cam-door 2", "00:11:22:00:00:02  1"}) {
		t.Errorf("devices %q", ids)
	}
	st := w.Stats()
	if st.Flows != 7 || st.Egress != 3 || st.Inbound != 1 || st.Internal != 1 || st.Other != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestFirstContactsAfterLearning(t *testing.T) {
	w := mustWatcher(t, Config{Learn: time.Hour})
	w.Flow(flow("192.168.1.20", "5.9.1.1", 0, 443))
	w.Flow(flow("192.168.1.20", "31.1.1.1", 30*time.Minute, 443)) // learning: silent
	w.Flow(flow("192.168.1.20", "5.9.1.2", 2*time.Hour, 443))     // same /24, same country: nothing
	w.Flow(flow("192.168.1.20", "5.9.7.7", 2*time.Hour, 443))     // new network in DE
	w.Flow(flow("192.168.1.20", "122.248.252.67", 3*time.Hour, 8760))
	w.Flow(flow("192.168.1.20", "122.248.252.99", 3*time.Hour, 8760)) // known country and network
	w.Flow(flow("192.168.1.20", "100.100.100.100", 4*time.Hour, 80))  // unknown to the geo data
	got := kinds(w.Findings())
	want := []string{"new-network 5.9.7.7", "new-country 122.248.252.67", "new-country 100.100.100.100"}
	if !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
}

func TestLongAndLarge(t *testing.T) {
	w := mustWatcher(t, Config{Learn: -1, LongConnection: time.Hour, LargeBytes: 1e6, ReportEvery: 24 * time.Hour})
	w.Findings()
	f := flow("192.168.1.20", "5.9.1.1", 0, 22)
	f.Duration = int64(2 * time.Hour)
	w.Flow(f)
	w.Findings() // the first contact with DE
	f = flow("192.168.1.20", "5.9.1.1", time.Hour, 22)
	f.Duration = int64(3 * time.Hour) // same pair, within a day: not repeated
	w.Flow(f)
	f = flow("192.168.1.20", "5.9.1.1", 2*time.Hour, 22)
	f.SrcBytes = 2e6
	w.Flow(f)
	f = flow("192.168.1.20", "5.9.1.1", 26*time.Hour, 22)
	f.Duration = int64(90 * time.Minute) // a day later: again
	w.Flow(f)
	fs := w.Findings()
	if got := kinds(fs); !slices.Equal(got, []string{"large-upload 5.9.1.1", "long-connection 5.9.1.1"}) {
		t.Fatalf("findings %q", got)
	}
	if !strings.Contains(fs[0].Evidence, "2.0 MB sent") || !strings.Contains(fs[1].Evidence, "1h30m0s") || fs[1].Port != 22 {
		t.Errorf("evidence %q / %q", fs[0].Evidence, fs[1].Evidence)
	}
}

func TestClassPolicyFindings(t *testing.T) {
	cfg := Config{Learn: -1, Classes: []Class{{Name: "cameras", Hostnames: []string{"cam-*"}, Countries: []string{"DE"},
		AllowDomains: []string{"*.vendor.example"}}}}
	w := mustWatcher(t, cfg)
	w.Flow(flow("192.168.1.20", "122.248.252.67", 0, 8760)) // no class yet: nothing
	w.Resolved(t0, "api.vendor.example", []netip.Addr{netip.MustParseAddr("203.0.113.50")})
	w.Lease(&Lease{Time: t0, MAC: MAC{2, 0, 0, 0, 0, 1}, Addr: netip.MustParseAddr("192.168.1.20"), Hostname: "cam-1"})
	w.Findings()
	w.Sweep()                                                         // the class is known now: the earlier destination breaches
	w.Flow(flow("192.168.1.20", "122.248.252.67", time.Minute, 9765)) // another port: reported once per address
	w.Flow(flow("192.168.1.20", "5.9.1.1", time.Minute, 443))         // DE: permitted
	w.Flow(flow("192.168.1.20", "203.0.113.50", time.Minute, 443))    // permitted by name
	w.Flow(flow("192.168.1.20", "203.0.113.51", time.Minute, 443))    // AU: breach
	w.Sweep()
	fs := w.Findings()
	var got []string
	for _, f := range fs {
		if f.Kind == KindPolicy {
			got = append(got, f.Dest.String()+" "+f.Class)
		}
	}
	if !slices.Equal(got, []string{"122.248.252.67 cameras", "203.0.113.51 cameras"}) {
		t.Errorf("policy findings %q (all: %q)", got, kinds(fs))
	}
	d, _ := w.Device(MACDevice(MAC{2, 0, 0, 0, 0, 1}))
	if d.Class != "cameras" || !strings.Contains(d.ClassReason, "cam-*") {
		t.Errorf("device %+v", d)
	}
}

func TestTopKKeepsBeacon(t *testing.T) {
	w := mustWatcher(t, Config{Learn: -1, TopDestinations: 8, MaxFindingsPerDay: 1000})
	// An hourly beacon; after eight quiet hours, ten one-off destinations
	// an hour (more than the top-K can hold) for a day and a half.
	for i := range 48 {
		at := time.Duration(i) * time.Hour
		w.Flow(flow("192.168.1.20", "122.248.252.67", at, 8760))
		for j := range 10 {
			if i < 8 && j > 0 {
				break
			}
			w.Flow(flow("192.168.1.20", fmt.Sprintf("5.9.%d.%d", i, j+1), at+time.Duration(j+1)*time.Minute, 443))
		}
		if i%24 == 23 {
			w.Sweep()
		}
	}
	w.Sweep()
	var beacons []string
	for _, f := range w.Findings() {
		if f.Kind == KindBeacon {
			beacons = append(beacons, f.Dest.String())
		}
	}
	d := w.Devices()[0]
	if len(d.Destinations) != 8 || !slices.Equal(beacons, []string{"122.248.252.67", "122.248.252.67"}) {
		t.Errorf("%d destinations kept, beacons %q", len(d.Destinations), beacons)
	}
	if d.Destinations[0].Addr.String() != "122.248.252.67" || d.Destinations[0].Overestimate != 0 {
		t.Errorf("top destination %+v, want the beacon, never evicted", d.Destinations[0])
	}
	if est := d.DistinctDestinations; est < 350 || est > 500 {
		t.Errorf("distinct destinations estimated %d, want about 409", est)
	}
	// Most one-off destinations are seen once and never admitted (the
	// doorkeeper); those whose mark collides push entries out. Every
	// connection still counts in its country.
	if ev := w.Stats().Evictions; ev < 50 || ev > 300 {
		t.Errorf("%d evictions for 400 one-off destinations", ev)
	}
	var de uint64
	for _, c := range d.Countries {
		if c.Country == "DE" {
			de = c.Connections
		}
	}
	if de != 408 || d.Connections != 456 {
		t.Errorf("%d connections to DE, %d in all; want 408 and 456", de, d.Connections)
	}
}

func TestDailyLimitAndForgetting(t *testing.T) {
	w := mustWatcher(t, Config{Learn: -1, MaxFindingsPerDay: 3, MaxDevices: 10})
	for i := range 10 {
		w.Flow(flow("192.168.1.20", fmt.Sprintf("5.9.%d.1", i), time.Duration(i)*time.Minute, 443))
	}
	if n := len(w.Findings()); n != 3 || w.Stats().Suppressed != 7 {
		t.Errorf("%d findings, %d suppressed; want 3 and 7 (one new country, nine new networks)", n, w.Stats().Suppressed)
	}
	for i := range 30 {
		w.Flow(flow(fmt.Sprintf("192.168.1.%d", 100+i), "5.9.1.1", time.Duration(i)*time.Hour, 443))
	}
	st := w.Stats()
	if st.Devices != 10 || st.Forgotten != 21 {
		t.Errorf("%d devices, %d forgotten; want 10 and 21", st.Devices, st.Forgotten)
	}
	if _, ok := w.Device(AddrDevice(netip.MustParseAddr("192.168.1.129"))); !ok {
		t.Error("the most recent device was forgotten")
	}
}

// TestIndexAfterEvictions: after heavy churn (evictions delete from the
// open-addressing index), every kept destination is found by its index
// and the index holds nothing else.
func TestIndexAfterEvictions(t *testing.T) {
	w := mustWatcher(t, Config{Learn: -1, TopDestinations: 16, MaxFindingsPerDay: 1})
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 20000 {
		w.Flow(flow("192.168.1.20", fmt.Sprintf("5.9.%d.%d", r.IntN(8), r.IntN(40)), time.Duration(i)*time.Second, uint16(80+r.IntN(3))))
	}
	d := w.list[0]
	used := 0
	for _, j := range d.idx {
		if j != 0 {
			used++
		}
	}
	if used != len(d.dests) || len(d.dests) != 16 {
		t.Fatalf("%d index slots used for %d destinations", used, len(d.dests))
	}
	mask := len(d.idx) - 1
	for i := range d.dests {
		e := &d.dests[i]
		found := false
		for j := idxHash(e.addr, e.proto, e.port, mask); d.idx[j] != 0; j = (j + 1) & mask {
			if int(d.idx[j]) == i+1 {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("destination %d (%s:%d) not reachable from its home slot", i, e.addr, e.port)
		}
	}
	if w.Stats().Evictions < 5000 {
		t.Errorf("%d evictions", w.Stats().Evictions)
	}
}

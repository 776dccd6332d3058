package devices

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/testutil"
)

func realGeo(t testing.TB) *geo.Table {
	t.Helper()
	tab, err := geo.LoadFiles(testutil.SharedData(t, "geo", "geo-whois-asn-country-ipv4.csv.gz"),
		filepath.Join(filepath.Dir(testutil.SharedData(t, "geo", "geo-whois-asn-country-ipv4.csv.gz")), "geo-whois-asn-country-ipv6.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// plainLocator hides a table's ranges: a watcher given it looks every
// destination up (the path without the cache).
type plainLocator struct{ geo.Locator }

// TestCountryCache: the watcher's country cache answers as the geo data
// does, for addresses it holds (hits), addresses of a /24 whose entry
// holds another range or another /24 (replaced), and IPv6 (not cached).
func TestCountryCache(t *testing.T) {
	tab := realGeo(t)
	w := mustWatcher(t, Config{})
	w2, err := New(w.cfg, tab, testKey)
	if err != nil {
		t.Fatal(err)
	}
	w = w2
	if w.rloc == nil {
		t.Fatal("a geo.Table gives no ranges")
	}
	r := rand.New(rand.NewPCG(3, 4))
	var addrs []netip.Addr
	// Destinations clustered in a few thousand /24s (more than the cache
	// holds), each seen several times, and some anywhere, and IPv6.
	nets := make([][3]byte, 6000)
	for i := range nets {
		nets[i] = [3]byte{byte(1 + r.IntN(222)), byte(r.IntN(256)), byte(r.IntN(256))}
	}
	for range 200_000 {
		switch k := r.IntN(20); {
		case k < 17:
			n := nets[int(r.ExpFloat64()*500)%len(nets)]
			addrs = append(addrs, netip.AddrFrom4([4]byte{n[0], n[1], n[2], byte(r.IntN(256))}))
		case k < 19:
			addrs = append(addrs, netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}))
		default:
			var b [16]byte
			b[0], b[1] = 0x2a, byte(r.IntN(16))
			for i := 2; i < 16; i++ {
				b[i] = byte(r.IntN(256))
			}
			addrs = append(addrs, netip.AddrFrom16(b))
		}
	}
	var hits, replaced int
	for _, a := range addrs {
		if a.Is4() && w.geo != nil {
			b := a.As4()
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			switch e := &w.geo.e[geoSlot(v)]; {
			case e.set && e.lo <= v && v <= e.hi:
				hits++
			case e.set:
				replaced++
			}
		}
		got := w.countryOf(a)
		var want [2]byte
		if c, ok := tab.Lookup(a); ok {
			want = ccOf(c)
		}
		if got != want {
			t.Fatalf("%s: cached country %q, the geo data says %q", a, got, want)
		}
	}
	if hits < len(addrs)/2 || replaced < 1000 {
		t.Errorf("%d lookups: %d hits, %d entries replaced: the test does not exercise the cache", len(addrs), hits, replaced)
	}
}

// TestCountryCacheKeepsProfiles: a day of connections profiled with the
// cache and without it gives the same profiles and findings.
func TestCountryCacheKeepsProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("a population of devices and the real geo data")
	}
	tab := realGeo(t)
	flows := benchFlows(500, 200, 120)
	cfg := Config{Constituency: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, TopDestinations: 16, Learn: time.Hour}
	var saved [][]byte
	var found []string
	for _, loc := range []geo.Locator{tab, plainLocator{tab}} {
		w, err := New(cfg, loc, testKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, cached := loc.(rangeLocator); cached != (w.rloc != nil) {
			t.Fatalf("%T: cache %v", loc, w.rloc != nil)
		}
		fs := append([]Flow(nil), flows...)
		for i := 0; i < len(fs); i += 10_000 {
			w.Flows(fs[i:min(i+10_000, len(fs))])
		}
		w.Sweep()
		saved = append(saved, w.Save())
		found = append(found, strings.Join(kinds(w.Findings()), "\n"))
		if st := w.Stats(); st.Evictions == 0 {
			t.Fatalf("no evictions: destinations are not admitted again")
		}
	}
	if !bytes.Equal(saved[0], saved[1]) {
		t.Error("the profiles differ with the country cache")
	}
	if found[0] != found[1] || !strings.Contains(found[0], "new-country") {
		t.Errorf("findings differ with the country cache, or there are no first contacts:\n%.500s\n---\n%.500s", found[0], found[1])
	}
}

// TestNetSetSearch: the search from the expected place finds what a
// binary search finds, in sets of every size up to the limit, for
// fingerprints in the set and not, and for sets whose fingerprints are
// not spread evenly (all in a corner of the range).
func TestNetSetSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, spread := range []uint32{0, 1 << 20} {
		var s netSet
		for !s.saturated && len(s.fp) < 256 {
			f := r.Uint32()
			if spread != 0 {
				f %= spread
			}
			s.add(f, 256)
			for range 20 {
				q := r.Uint32()
				if spread != 0 {
					q %= spread
				}
				if len(s.fp) > 0 && r.IntN(2) == 0 {
					q = s.fp[r.IntN(len(s.fp))]
				}
				i, found := s.search(q)
				wi, wfound := slices.BinarySearch(s.fp, q)
				if i != wi || found != wfound {
					t.Fatalf("%d fingerprints: search(%d) = %d, %v; binary search: %d, %v", len(s.fp), q, i, found, wi, wfound)
				}
			}
			if !slices.IsSorted(s.fp) {
				t.Fatalf("%d fingerprints: not sorted", len(s.fp))
			}
		}
		for _, q := range []uint32{0, 1, ^uint32(0), s.fp[0], s.fp[len(s.fp)-1]} {
			i, found := s.search(q)
			if wi, wfound := slices.BinarySearch(s.fp, q); i != wi || found != wfound {
				t.Fatalf("search(%d) = %d, %v; binary search: %d, %v", q, i, found, wi, wfound)
			}
		}
	}
}

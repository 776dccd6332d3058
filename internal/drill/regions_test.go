package drill

import (
	"strings"
	"testing"
	"time"
)

// TestEveryCountryHasARegion checks that every country the drill can
// use has a region and a round trip to every other.
func TestEveryCountryHasARegion(t *testing.T) {
	ccs := strings.Fields(countryRank)
	for _, a := range ccs {
		for _, b := range ccs {
			rtt, err := RTT(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if rtt < 10*time.Millisecond || rtt > 400*time.Millisecond {
				t.Errorf("RTT %s-%s = %s", a, b, rtt)
			}
			if back, _ := RTT(b, a); back != rtt {
				t.Errorf("RTT %s-%s %s, back %s", a, b, rtt, back)
			}
		}
	}
	if r, _ := RTT("US", "FR"); r != 77*time.Millisecond {
		t.Errorf("US-FR %s, want the measured 77 ms", r)
	}
}

// TestOpenFilesForTheFullDrill checks the descriptor estimate of the
// 259-node world: above the 20,000 a default limit gives, which is why
// processes mode raises it.
func TestOpenFilesForTheFullDrill(t *testing.T) {
	w, err := newWorld(259, 78, 1, 6*time.Hour, 5*time.Minute, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	links := 2*(259-78) + 78*77
	if linksOf(w) != links {
		t.Errorf("%d links, want %d", linksOf(w), links)
	}
	if got := openFilesFor(w); got < uint64(3*links) || got > 100000 {
		t.Errorf("open files for 259 nodes: %d, want between %d and 100000", got, 3*links)
	}
	// Split, the proxy fits any limit that holds a share of the links:
	// as few processes as keep each under it, and the drill's process
	// then needs only what it holds per node.
	for _, tc := range []struct {
		limit uint64
		want  int
	}{{20000, 5}, {12000, 8}, {8192, 12}, {4096, 28}} {
		n, err := proxySplit(w, tc.limit)
		if err != nil || n != tc.want {
			t.Errorf("limit %d: %d proxy processes (%v), want %d", tc.limit, n, err, tc.want)
			continue
		}
		if proxyFilesFor(w, n) > tc.limit || proxyFilesFor(w, n-1) <= tc.limit && n > 2 {
			t.Errorf("limit %d: %d processes of %d open files each, not the fewest under it", tc.limit, n, proxyFilesFor(w, n))
		}
	}
	if d := drillFilesFor(w); d > 20000/3 {
		t.Errorf("the drill's process needs %d open files with the proxy split off, want a third of 20,000 at most", d)
	}
	if _, err := proxySplit(w, 1500); err == nil {
		t.Error("a limit below what a proxy process holds besides its links was accepted")
	}
}

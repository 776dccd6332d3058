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
	if got := openFilesFor(w); got < uint64(3*links) || got > 100000 {
		t.Errorf("open files for 259 nodes: %d, want between %d and 100000", got, 3*links)
	}
}

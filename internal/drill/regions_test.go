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

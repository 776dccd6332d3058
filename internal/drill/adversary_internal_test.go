package drill

import (
	"net/netip"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/safety"
)

// TestTargetsAndTheNet: with the warninglists of the shared checkout,
// the net every drill node derives its own from protects each benign
// target adversaries aim at (resolvers, CDN ranges, top-list domains)
// and each junk network, and none of what must stay actionable: the
// unlisted benign hosts (only corroboration guards them), the
// outbreak's C2 addresses, the false positive's address, and the
// organisations' networks (each node adds its own).
func TestTargetsAndTheNet(t *testing.T) {
	net, err := loadNet("../../../shared/data/warninglists")
	if err != nil {
		t.Fatal(err)
	}
	decide := func(v string) safety.Decision {
		k, canon, err := observable.Detect(v)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		return net.Decide(k, canon)
	}
	for _, l := range [][]string{benignResolvers, benignCDNs, benignDomains, junkNetworks} {
		for _, v := range l {
			if d := decide(v); d.Action == safety.Keep || d.Action == safety.Cut {
				t.Errorf("%s: %v by %v; want it protected whole", v, d.Action, d.Rule)
			}
		}
	}
	keep := append([]string{fpAddress}, benignUnlisted...)
	for _, th := range threatCatalogue {
		keep = append(keep, th.IP)
	}
	w, err := newWorld(MaxNodes, 78, 1, 6*time.Hour, 5*time.Minute, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.placeNetworks(net); err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Prefix]bool{}
	for _, o := range w.orgs {
		keep = append(keep, o.Network.String())
		seen[o.Network] = true
	}
	if len(seen) != MaxNodes {
		t.Errorf("%d distinct organisation networks for %d organisations", len(seen), MaxNodes)
	}
	for _, v := range keep {
		if d := decide(v); d.Action != safety.Keep {
			t.Errorf("%s: %v by %v; want it actionable", v, d.Action, d.Rule)
		}
	}
}

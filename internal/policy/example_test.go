package policy_test

import (
	"fmt"
	"time"

	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// An AMBER object received from one partner is never passed on to
// another, even under an agreement that allows re-sharing.
func ExampleGate_Decide() {
	self := policy.Party{ID: "identity--00000000-0000-4000-8000-000000000001", Country: "FR"}
	de := policy.Party{ID: "identity--00000000-0000-4000-8000-0000000000de", Country: "DE"}
	be := "identity--00000000-0000-4000-8000-0000000000be"
	a := &policy.Agreement{ID: "fr-de", Partner: de, Collections: []string{"main"}, MaxTLP: stix.TLPAmber, AllowReshare: true}
	gate := policy.NewGate(self, nil)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, o := range []policy.ObjectMeta{
		{ID: "indicator--1", Type: "indicator", Collection: "main", TLP: stix.TLPAmber},
		{ID: "indicator--2", Type: "indicator", Collection: "main", TLP: stix.TLPGreen, Origin: be},
		{ID: "indicator--3", Type: "indicator", Collection: "main", TLP: stix.TLPAmber, Origin: be},
	} {
		d := gate.Decide(a, de, o, now)
		fmt.Printf("%s allow=%v rule=%s\n", o.ID, d.Allow, d.Rule)
	}
	// Output:
	// indicator--1 allow=true rule=agreement
	// indicator--2 allow=true rule=agreement
	// indicator--3 allow=false rule=reshare.third-party-amber
}

package safety_test

import (
	"testing"

	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/safety"
)

// FuzzPartnerConstituency: any entry a partner record accepts
// (policy.Party.Validate) the safety net protects (CheckPartner and
// SetPartners accept it), and neither panics on any input.
func FuzzPartnerConstituency(f *testing.F) {
	for _, s := range []string{"81.20.8.0/24", "192.0.2.7", "2001:db8::/32", "cert.example", "www.bund.de.", "AS64500",
		"10.0.0.300", "a_b.example", "xn--bcher-kva.example", "::ffff:10.0.0.1/128", " 81.20.8.0/24 ", "-a.example", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, e string) {
		p := policy.Party{ID: "identity--00000000-0000-4000-8000-0000000000de", Country: "DE", Constituency: []string{e}}
		entries := []safety.Entry{{Value: e, Where: "fuzz"}}
		checked := safety.CheckPartner(entries)
		if p.Validate() == nil && checked != nil {
			t.Fatalf("%q: a valid partner record, but the net refuses it: %v", e, checked)
		}
		n, err := safety.New(safety.Config{IANA: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.SetPartners(entries); (err == nil) != (checked == nil) {
			t.Fatalf("%q: CheckPartner %v, SetPartners %v", e, checked, err)
		}
	})
}

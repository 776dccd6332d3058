package policy_test

import (
	"strings"
	"testing"

	"github.com/entente-cti/entente/internal/policy"
)

// TestPartyConstituency: a partner's declared constituency holds
// networks, addresses and domains; anything else is refused, named.
func TestPartyConstituency(t *testing.T) {
	base := policy.Party{ID: "identity--00000000-0000-4000-8000-0000000000de", Country: "DE"}
	for _, tc := range []struct {
		entries []string
		want    string // "" when valid, else a fragment of the error
	}{
		{[]string{"81.20.8.0/24", "192.0.2.7", "2001:db8::/32", "cert.example", "www.bund.de."}, ""},
		{[]string{"81.20.8.0/24", "not a network"}, `constituency[1]: "not a network"`},
		{[]string{"10.0.0.300"}, `constituency[0]: "10.0.0.300"`},
		{[]string{"AS64500"}, `"AS64500" is not a network`},
		{[]string{""}, `constituency[0]: ""`},
		{[]string{"fe80::1%eth0"}, `"fe80::1%eth0" is not a network`},
	} {
		p := base
		p.Constituency = tc.entries
		err := p.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.entries, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.entries, err, tc.want)
		}
	}
}

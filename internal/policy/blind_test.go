package policy_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// TestCheckBlindDataDriven runs testdata/blind.json through CheckBlind
// and DecideBlind, and checks that release (Decide) is not what decides
// blind membership: RED members are never released.
func TestCheckBlindDataDriven(t *testing.T) {
	b, err := os.ReadFile("testdata/blind.json")
	if err != nil {
		t.Fatal(err)
	}
	var f caseFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("testdata/blind.json: %v", err)
	}
	g := policy.NewGate(f.Self, nil)
	known := policy.Catalog{Collections: []string{"c-main", "c-red"}}
	for name, a := range f.Agreements {
		if err := a.Validate(known); err != nil {
			t.Errorf("agreement %s: %v", name, err)
		}
	}
	rules := map[string]bool{}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			p := f.Partners[c.Partner]
			var a *policy.Agreement
			if c.Agreement != "" {
				a = f.Agreements[c.Agreement]
			}
			o := policy.ObjectMeta{ID: c.Object.ID, Type: c.Object.Type, Collection: c.Object.Collection,
				TLP: c.Object.TLP, Origin: c.Object.Origin}
			if c.Object.Residency != nil {
				o.Residency = append([]string{}, *c.Object.Residency...)
			}
			d := g.CheckBlind(a, p, o, f.Now)
			if d.Allow != c.Want.Allow || d.Rule != c.Want.Rule {
				t.Errorf("CheckBlind = %v %s, want %v %s", d.Allow, d.Rule, c.Want.Allow, c.Want.Rule)
			}
			if d.Reason != "" {
				t.Errorf("CheckBlind gave a reason: %q", d.Reason)
			}
			dd := g.DecideBlind(a, p, o, f.Now)
			if dd.Allow != d.Allow || dd.Rule != d.Rule || dd.Reason == "" || dd.Reason == dd.Rule {
				t.Errorf("DecideBlind = %+v, CheckBlind = %+v", dd, d)
			}
			if !strings.Contains(dd.Reason, o.ID) && d.Rule != policy.RuleBlindNone && d.Rule != policy.RulePartnerMismatch &&
				d.Rule != policy.RuleNotYetValid && d.Rule != policy.RuleExpired && d.Rule != policy.RuleBlindCollection {
				t.Errorf("reason %q does not name %s", dd.Reason, o.ID)
			}
			if o.TLP == stix.TLPRed && g.Check(a, p, o, f.Now).Allow {
				t.Errorf("a RED object was released")
			}
			rules[d.Rule] = true
		})
	}
	for _, r := range []string{policy.RuleBlindNone, policy.RuleBlindType, policy.RuleBlindCollection, policy.RuleBlindResidency,
		policy.RuleBlindReshare, policy.RuleBlindMember, policy.RuleExpired, policy.RuleNotYetValid, policy.RulePartnerMismatch} {
		if !rules[r] {
			t.Errorf("no case decided by rule %s", r)
		}
	}
}

func TestBlindAccessValidate(t *testing.T) {
	party := policy.Party{ID: "identity--00000000-0000-4000-8000-0000000000de", Country: "DE"}
	known := policy.Catalog{Collections: []string{"c1", "c2"}}
	day := blind.Budget{Limit: 1000, Period: 24 * time.Hour}
	for _, tc := range []struct {
		name string
		a    policy.Agreement
		want []string // substrings of the error; none for a valid agreement
	}{
		{"blind only", policy.Agreement{ID: "a", Partner: party, MaxTLP: stix.TLPGreen,
			Blind: &policy.BlindAccess{Collections: []string{"c2"}, Budget: day}}, nil},
		{"neither", policy.Agreement{ID: "a", Partner: party, MaxTLP: stix.TLPGreen}, []string{"collections: must name"}},
		{"blind without collections", policy.Agreement{ID: "a", Partner: party, MaxTLP: stix.TLPGreen,
			Blind: &policy.BlindAccess{Budget: day}}, []string{"blind.collections: must name"}},
		{"unknown blind collection", policy.Agreement{ID: "a", Partner: party, Collections: []string{"c1"}, MaxTLP: stix.TLPGreen,
			Blind: &policy.BlindAccess{Collections: []string{"c1", "c9"}, Budget: day}}, []string{`blind.collections[1]: unknown collection "c9"`}},
		{"no budget", policy.Agreement{ID: "a", Partner: party, MaxTLP: stix.TLPGreen,
			Blind: &policy.BlindAccess{Collections: []string{"c1"}}}, []string{"blind.budget: "}},
		{"a period under a minute", policy.Agreement{ID: "a", Partner: party, MaxTLP: stix.TLPGreen,
			Blind: &policy.BlindAccess{Collections: []string{"c1"}, Budget: blind.Budget{Limit: 5, Period: time.Second}}}, []string{"blind.budget: ", "shorter than a minute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.Validate(known)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestBlindAccessJSON: the budget is written as people write it, and
// read back to the same agreement; a malformed budget is an error
// naming it.
func TestBlindAccessJSON(t *testing.T) {
	a := policy.Agreement{ID: "a", Partner: policy.Party{ID: "identity--x", Country: "DE"},
		Blind: &policy.BlindAccess{Collections: []string{"c"}, Budget: blind.Budget{Limit: 100000, Period: 24 * time.Hour}}}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"blind":{"collections":["c"],"budget":"100000/day"}`) {
		t.Fatalf("JSON %s", b)
	}
	var back policy.Agreement
	if err := json.Unmarshal(b, &back); err != nil || back.Blind == nil || back.Blind.Budget != a.Blind.Budget {
		t.Fatalf("read back %+v: %v", back.Blind, err)
	}
	if err := json.Unmarshal([]byte(`{"blind":{"collections":["c"],"budget":"lots"}}`), &back); err == nil || !strings.Contains(err.Error(), "lots") {
		t.Fatalf("malformed budget: %v", err)
	}
	var plain policy.Agreement
	if err := json.Unmarshal([]byte(`{"id":"a"}`), &plain); err != nil || plain.Blind != nil {
		t.Fatalf("an agreement without blind access: %+v, %v", plain.Blind, err)
	}
}

package policy_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// caseFile is the shape of testdata/decide.json.
type caseFile struct {
	Self       policy.Party                 `json:"self"`
	Now        time.Time                    `json:"now"`
	Partners   map[string]policy.Party      `json:"partners"`
	Agreements map[string]*policy.Agreement `json:"agreements"`
	Cases      []struct {
		Name      string `json:"name"`
		Agreement string `json:"agreement"`
		Partner   string `json:"partner"`
		Object    struct {
			ID         string    `json:"id"`
			Type       string    `json:"type"`
			Collection string    `json:"collection"`
			TLP        stix.TLP  `json:"tlp"`
			Residency  *[]string `json:"residency"`
			Origin     string    `json:"origin"`
			Peer       string    `json:"peer"`
			Retraction bool      `json:"retraction"`
		} `json:"object"`
		Want struct {
			Allow      bool     `json:"allow"`
			Rule       string   `json:"rule"`
			Redactions []string `json:"redactions"`
		} `json:"want"`
	} `json:"cases"`
}

func TestDecideDataDriven(t *testing.T) {
	b, err := os.ReadFile("testdata/decide.json")
	if err != nil {
		t.Fatal(err)
	}
	var f caseFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("testdata/decide.json: %v", err)
	}
	if len(f.Cases) < 20 {
		t.Fatalf("testdata/decide.json: only %d cases", len(f.Cases))
	}
	g := policy.NewGate(f.Self, nil)
	known := policy.Catalog{Collections: []string{"c-main", "c-alerts"}}
	for name, a := range f.Agreements {
		if err := a.Validate(known); err != nil {
			t.Errorf("agreement %s: %v", name, err)
		}
	}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			p, ok := f.Partners[c.Partner]
			if !ok {
				t.Fatalf("unknown partner %q", c.Partner)
			}
			var a *policy.Agreement
			if c.Agreement != "" {
				if a, ok = f.Agreements[c.Agreement]; !ok {
					t.Fatalf("unknown agreement %q", c.Agreement)
				}
			}
			o := policy.ObjectMeta{ID: c.Object.ID, Type: c.Object.Type, Collection: c.Object.Collection,
				TLP: c.Object.TLP, Origin: c.Object.Origin, ReceivedFromPeer: c.Object.Peer, Retraction: c.Object.Retraction}
			if c.Object.Residency != nil {
				o.Residency = append([]string{}, *c.Object.Residency...)
			}
			d := g.Decide(a, p, o, f.Now)
			got := struct {
				Allow      bool
				Rule       string
				Redactions []string
			}{d.Allow, d.Rule, d.Redactions}
			want := struct {
				Allow      bool
				Rule       string
				Redactions []string
			}{c.Want.Allow, c.Want.Rule, c.Want.Redactions}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nreason: %s", diff, d.Reason)
			}
			if d.Reason == "" {
				t.Error("decision has no reason")
			}
		})
	}
}

// model is the reference model of the sharing rules, written independently
// of Gate.Decide as a plain statement of the policy: it answers only
// whether partner p may receive object o.
func model(self string, a *policy.Agreement, p policy.Party, o policy.ObjectMeta, now time.Time) bool {
	if o.TLP == stix.TLPRed {
		return false
	}
	if o.Residency != nil && !slices.Contains(o.Residency, p.Country) {
		return false
	}
	if a != nil && a.Partner.ID != p.ID {
		return false
	}
	own := o.Origin == "" || o.Origin == self
	public := own && o.TLP == stix.TLPClear
	inForce := a != nil && (a.ValidFrom.IsZero() || !now.Before(a.ValidFrom)) && (a.ValidUntil.IsZero() || now.Before(a.ValidUntil))
	if !inForce {
		return public
	}
	if a.Redact.RemoveThirdPartyIdentities && o.Type == "identity" && o.ID != self && o.ID != p.ID {
		return false
	}
	if a.Redact.StripFreeText && o.Type == "note" {
		return false
	}
	covered := slices.Contains(a.Collections, o.Collection) &&
		(len(a.ObjectTypes) == 0 || slices.Contains(a.ObjectTypes, o.Type)) &&
		o.TLP <= a.MaxTLP &&
		(own || o.Origin == p.ID || (a.AllowReshare && o.TLP <= stix.TLPGreen))
	return covered || public
}

var allowRules = map[string]bool{policy.RulePublic: true, policy.RuleOriginator: true, policy.RuleAgreement: true, policy.RuleRetraction: true}

var denyRules = map[string]bool{
	policy.RuleRed: true, policy.RuleResidency: true, policy.RulePartnerMismatch: true, policy.RuleNoAgreement: true,
	policy.RuleNotYetValid: true, policy.RuleExpired: true, policy.RuleCollection: true, policy.RuleObjectType: true,
	policy.RuleAboveMaxTLP: true, policy.RuleReshareNone: true, policy.RuleReshareNotAllowed: true,
	policy.RuleReshareAmber: true, policy.RuleThirdPartyID: true, policy.RuleFreeTextNote: true,
}

func TestDecideMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(2026, 11))
	self := policy.Party{ID: "identity--self", Country: "FR"}
	parties := []policy.Party{
		{ID: "identity--p1", Country: "DE"}, {ID: "identity--p2", Country: "US"},
		{ID: "identity--p3", Country: "BE"}, {ID: "identity--p4", Country: "FR"},
	}
	origins := []string{"", "", self.ID, "identity--p1", "identity--p2", "identity--p3", "identity--x"}
	colls := []string{"c1", "c2", "c3"}
	types := []string{"indicator", "sighting", "identity", "note", "malware"}
	countries := []string{"FR", "DE", "US", "BE", "GB"}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	subset := func(xs []string) []string {
		var out []string
		for _, x := range xs {
			if r.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	randTime := func() time.Time {
		if r.IntN(2) == 0 {
			return time.Time{}
		}
		return now.Add(time.Duration(r.IntN(21)-10) * 24 * time.Hour)
	}
	g := policy.NewGate(self, nil)
	const n = 200000
	allowed, withheld := 0, 0
	for i := range n {
		p := parties[r.IntN(len(parties))]
		var a *policy.Agreement
		if r.IntN(5) > 0 {
			a = &policy.Agreement{ID: "a", Partner: p, Collections: subset(colls), MaxTLP: stix.TLP(r.IntN(5)),
				AllowReshare: r.IntN(2) == 0, ValidFrom: randTime(), ValidUntil: randTime(),
				Redact: policy.Redaction{SightingVictimsToCountry: r.IntN(2) == 0, RemoveThirdPartyIdentities: r.IntN(2) == 0, StripFreeText: r.IntN(2) == 0}}
			if r.IntN(2) == 0 {
				a.ObjectTypes = subset(types)
			}
			if r.IntN(20) == 0 {
				a.Partner = parties[r.IntN(len(parties))]
			}
		}
		o := policy.ObjectMeta{ID: "x--" + string(rune('a'+r.IntN(3))), Type: types[r.IntN(len(types))],
			Collection: colls[r.IntN(len(colls))], TLP: stix.TLP(r.IntN(5)), Origin: origins[r.IntN(len(origins))]}
		if o.Type == "identity" {
			o.ID = []string{self.ID, "identity--p1", "identity--p2", "identity--x"}[r.IntN(4)]
		}
		if r.IntN(3) == 0 {
			o.Residency = subset(countries)
			if o.Residency == nil {
				o.Residency = []string{}
			}
		}
		d := g.Decide(a, p, o, now)
		if c := g.Check(a, p, o, now); c.Allow != d.Allow || c.Rule != d.Rule || !slices.Equal(c.Redactions, d.Redactions) || c.Reason != "" {
			t.Fatalf("case %d: Check %+v disagrees with Decide %+v", i, c, d)
		}
		if d.Reason == "" || d.Reason == d.Rule {
			t.Fatalf("case %d: rule %s has no explanation", i, d.Rule)
		}
		want := model(self.ID, a, p, o, now)
		if d.Allow != want {
			t.Fatalf("case %d: Decide allow=%v (rule %s: %s), model says %v\nagreement=%+v\npartner=%+v\nobject=%+v",
				i, d.Allow, d.Rule, d.Reason, want, a, p, o)
		}
		if d.Allow && !allowRules[d.Rule] || !d.Allow && !denyRules[d.Rule] {
			t.Fatalf("case %d: allow=%v with rule %q", i, d.Allow, d.Rule)
		}
		if d.Allow {
			allowed++
		} else {
			withheld++
		}
	}
	// The generator must exercise both outcomes substantially.
	if allowed < n/20 || withheld < n/20 {
		t.Fatalf("unbalanced generator: %d allowed, %d withheld", allowed, withheld)
	}
}

func TestAgreementValidate(t *testing.T) {
	known := policy.Catalog{Collections: []string{"c1"}}
	good := policy.Agreement{ID: "a", Partner: policy.Party{ID: "identity--p", Country: "DE"}, Collections: []string{"c1"}, MaxTLP: stix.TLPAmber}
	if err := good.Validate(known); err != nil {
		t.Fatalf("valid agreement: %v", err)
	}
	tests := []struct {
		name string
		edit func(a *policy.Agreement)
		want string
	}{
		{"unknown collection", func(a *policy.Agreement) { a.Collections = []string{"c1", "c9"} }, `agreement "a": collections[1]: unknown collection "c9"`},
		{"unknown country", func(a *policy.Agreement) { a.Partner.Country = "XX" }, `agreement "a": partner: country: "XX" is not an ISO 3166-1 alpha-2 code (e.g. FR, DE, US)`},
		{"lower-case country", func(a *policy.Agreement) { a.Partner.Country = "de" }, `agreement "a": partner: country: "de" is not an ISO 3166-1 alpha-2 code (e.g. FR, DE, US)`},
		{"no collections", func(a *policy.Agreement) { a.Collections = nil }, `agreement "a": collections: must name at least one collection (or the agreement must grant blind access)`},
		{"bad partner id", func(a *policy.Agreement) { a.Partner.ID = "org-1" }, `agreement "a": partner: id: "org-1" is not a STIX identity id (identity--<uuid>)`},
		{"bad type", func(a *policy.Agreement) { a.ObjectTypes = []string{"Indicator"} }, `agreement "a": object_types[0]: "Indicator" is not a STIX type name`},
		{"max_tlp red", func(a *policy.Agreement) { a.MaxTLP = stix.TLPRed }, `agreement "a": max_tlp: red is not allowed: TLP:RED never leaves the node, so the highest level an agreement may release is amber+strict`},
		{"max_tlp out of range", func(a *policy.Agreement) { a.MaxTLP = stix.TLPRed + 1 }, `agreement "a": max_tlp: invalid TLP level 5`},
		{"dates reversed", func(a *policy.Agreement) {
			a.ValidFrom = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
			a.ValidUntil = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		}, `agreement "a": valid_until: 2026-01-01T00:00:00Z is not after valid_from 2026-02-01T00:00:00Z`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := good
			tc.edit(&a)
			err := a.Validate(known)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestIsCountry(t *testing.T) {
	for _, c := range []string{"FR", "DE", "US", "AX", "ZW", "SS"} {
		if !policy.IsCountry(c) {
			t.Errorf("IsCountry(%q) = false", c)
		}
	}
	for _, c := range []string{"", "fr", "FRA", "XX", "EU", "UK"} {
		if policy.IsCountry(c) {
			t.Errorf("IsCountry(%q) = true", c)
		}
	}
}

func TestPreviewExplainsEachObject(t *testing.T) {
	self := policy.Party{ID: "identity--self", Country: "FR"}
	p := policy.Party{ID: "identity--p", Country: "DE"}
	a := &policy.Agreement{ID: "a", Partner: p, Collections: []string{"c"}, MaxTLP: stix.TLPGreen}
	objs := []policy.ObjectMeta{
		{ID: "indicator--1", Type: "indicator", Collection: "c", TLP: stix.TLPGreen},
		{ID: "indicator--2", Type: "indicator", Collection: "c", TLP: stix.TLPAmber},
		{ID: "indicator--3", Type: "indicator", Collection: "c", TLP: stix.TLPRed},
	}
	got := policy.NewGate(self, nil).Preview(a, p, objs, time.Now())
	var rules []string
	for _, e := range got {
		rules = append(rules, e.Object.ID+" "+e.Decision.Rule)
	}
	want := []string{"indicator--1 agreement", "indicator--2 tlp.above-agreement", "indicator--3 tlp.red"}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Fatalf("preview (-want +got):\n%s", diff)
	}
}

// BenchmarkCheck measures one decision without explanation, the egress
// hot path.
func BenchmarkCheck(b *testing.B) {
	self := policy.Party{ID: "identity--self", Country: "FR"}
	p := policy.Party{ID: "identity--p", Country: "DE"}
	a := &policy.Agreement{ID: "a", Partner: p, Collections: []string{"c0", "c1", "c2"}, MaxTLP: stix.TLPAmber,
		ObjectTypes: []string{"indicator", "sighting", "malware"}, AllowReshare: true}
	o := policy.ObjectMeta{ID: "indicator--1", Type: "indicator", Collection: "c2", TLP: stix.TLPGreen,
		Origin: "identity--q", Residency: []string{"FR", "DE"}}
	g := policy.NewGate(self, nil)
	now := time.Now()
	for b.Loop() {
		if d := g.Check(a, p, o, now); !d.Allow {
			b.Fatal(d.Rule)
		}
	}
}

// BenchmarkDecide measures one decision with its explanation.
func BenchmarkDecide(b *testing.B) {
	self := policy.Party{ID: "identity--self", Country: "FR"}
	p := policy.Party{ID: "identity--p", Country: "DE"}
	a := &policy.Agreement{ID: "a", Partner: p, Collections: []string{"c0", "c1", "c2"}, MaxTLP: stix.TLPAmber,
		ObjectTypes: []string{"indicator", "sighting", "malware"}, AllowReshare: true}
	o := policy.ObjectMeta{ID: "indicator--1", Type: "indicator", Collection: "c2", TLP: stix.TLPGreen,
		Origin: "identity--q", Residency: []string{"FR", "DE"}}
	g := policy.NewGate(self, nil)
	now := time.Now()
	for b.Loop() {
		if d := g.Decide(a, p, o, now); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}

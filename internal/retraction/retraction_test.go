package retraction_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/retraction"
	"github.com/entente-cti/entente/internal/stix"
)

const (
	self    = "identity--0a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	partner = "identity--1b9c8d7e-6f5a-4b4c-8d3e-2f1a0b9c8d7e"
	other   = "identity--2cad9e8f-7a6b-4c5d-9e4f-3a2b1c0dae8f"
	ind1    = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
	ind2    = "indicator--9f3f3e3c-28e5-4dc0-a49f-a9ff57c4de40"
	sight   = "sighting--ee20065d-2555-424f-ad9e-0f8113ac8c3e"
)

// TestNewIsAValidOpinion: what New writes is a valid STIX opinion that
// Parse reads back, carrying every marking of the objects it names.
func TestNewIsAValidOpinion(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	raw, err := retraction.New(self, []retraction.Ref{{ID: ind1, MarkingRefs: []string{stix.TLPAmber.MarkingID()}}, {ID: sight}, {ID: ind1}}, "resolver, not C2", now)
	if err != nil {
		t.Fatal(err)
	}
	o, err := stix.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := stix.Validate(o); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	r, ok := retraction.Parse(raw)
	if !ok || !slices.Equal(r.Refs, []string{ind1, sight}) || r.CreatedBy != self || r.Reason != "resolver, not C2" || !r.Created.Equal(now) {
		t.Fatalf("parsed %+v, %v from %s", r, ok, raw)
	}
	var m struct {
		Marks []string `json:"object_marking_refs"`
	}
	if json.Unmarshal(raw, &m) != nil || !slices.Equal(m.Marks, []string{stix.TLPAmber.MarkingID()}) {
		t.Fatalf("markings %v, want the indicator's AMBER", m.Marks)
	}
	if !retraction.IsRetraction(raw) {
		t.Fatal("IsRetraction is false for a retraction")
	}
}

// TestNewRefusesBadRefs names the field at fault.
func TestNewRefusesBadRefs(t *testing.T) {
	many := make([]retraction.Ref, retraction.MaxRefs+1)
	for i := range many {
		many[i] = retraction.Ref{ID: ind1}
	}
	for _, tt := range []struct {
		name string
		refs []retraction.Ref
		want string
	}{
		{"none", nil, "at least one"},
		{"not an id", []retraction.Ref{{ID: "8.8.8.8"}}, `"8.8.8.8" is not a STIX id`},
		{"too many", many, "at most 1000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := retraction.New(self, tt.refs, "", time.Now())
			if entente.ErrorCode(err) != entente.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want EINVALID with %q", err, tt.want)
			}
		})
	}
}

// TestParseReadsOnlyRetractions: an opinion that does not strongly
// disagree, a revoked one, or another object is no retraction.
func TestParseReadsOnlyRetractions(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want bool
	}{
		{`{"type":"opinion","id":"opinion--1","opinion":"strongly-disagree","object_refs":["` + ind1 + `"]}`, true},
		{`{"type":"opinion","id":"opinion--1","opinion":"disagree","object_refs":["` + ind1 + `"]}`, false},
		{`{"type":"opinion","id":"opinion--1","opinion":"strongly-disagree","object_refs":["` + ind1 + `"],"revoked":true}`, false},
		{`{"type":"opinion","id":"opinion--1","opinion":"strongly-disagree","object_refs":[]}`, false},
		{`{"type":"note","id":"note--1","opinion":"strongly-disagree","object_refs":["` + ind1 + `"]}`, false},
		{`not json`, false},
	} {
		if _, ok := retraction.Parse([]byte(tt.raw)); ok != tt.want {
			t.Errorf("Parse(%s) = %v, want %v", tt.raw, ok, tt.want)
		}
	}
}

// TestDecide: the node's own retraction withdraws everything it names
// from every source; a partner's only what that partner contributed.
func TestDecide(t *testing.T) {
	r := retraction.Retraction{ID: "opinion--x", Refs: []string{ind1, ind2, sight}}
	origins := map[string]string{ind1: partner, ind2: other, sight: partner}
	originOf := func(id string) string { return origins[id] }
	for _, tt := range []struct {
		name   string
		origin string
		want   retraction.Effect
	}{
		{"own analyst", "", retraction.Effect{Withhold: []string{ind1, ind2, sight}, AnySource: true}},
		{"own identity", self, retraction.Effect{Withhold: []string{ind1, ind2, sight}, AnySource: true}},
		{"the partner that contributed two", partner, retraction.Effect{Withhold: []string{ind1, sight}, Source: partner}},
		{"a partner that contributed none of them", "identity--3dbe0f9a-8b7c-4d6e-af5a-4b3c2d1ebf9a", retraction.Effect{Source: "identity--3dbe0f9a-8b7c-4d6e-af5a-4b3c2d1ebf9a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := retraction.Decide(r, tt.origin, self, originOf)
			if !slices.Equal(got.Withhold, tt.want.Withhold) || got.AnySource != tt.want.AnySource || got.Source != tt.want.Source {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

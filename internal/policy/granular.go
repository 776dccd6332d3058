package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/stix"
)

// RuleGranularWithheld is the rule of an object withheld because content
// its audience may not receive, marked by a granular marking, cannot be
// removed from it (an identity property, or content whose removal leaves
// the object invalid).
const RuleGranularWithheld = "granular.withheld"

// FieldMarking is one granular marking of an object, resolved: the TLP
// and residency of the content its selectors name. A granular marking
// adds to the object's own markings, never relaxes them: the content it
// names is as restricted as the most restrictive of the two.
type FieldMarking struct {
	// Selectors name the content (STIX 2.1 section 7.2.3.1).
	Selectors []string `json:"selectors"`
	// TLP is the marking's TLP level when HasTLP.
	TLP    stix.TLP `json:"tlp"`
	HasTLP bool     `json:"has_tlp"`
	// Residency lists the jurisdictions of a residency marking; nil when
	// the marking is not one.
	Residency []string `json:"residency,omitempty"`
}

// FieldRemoval is content removed from an object as it is released: a
// selector of a granular marking and the rule that keeps it from the
// audience.
type FieldRemoval struct {
	Selector string `json:"selector"`
	Rule     string `json:"rule"`
}

// ClassifyGranular resolves an object's granular markings to the
// restrictions they put on the content they name. Markings that are
// neither TLP nor a residency marking the node knows (a language, a
// statement) restrict nothing and are left out.
func (m Markings) ClassifyGranular(gms []stix.GranularMarking) []FieldMarking {
	var out []FieldMarking
	for _, gm := range gms {
		ref := stix.CanonicalRef(gm.MarkingRef)
		if ref == "" {
			continue
		}
		if t, ok := stix.TLPFromMarking(ref); ok {
			out = append(out, FieldMarking{Selectors: gm.Selectors, TLP: t, HasTLP: true})
			continue
		}
		if js, ok := m.Residency[ref]; ok {
			if js == nil {
				js = []string{}
			}
			out = append(out, FieldMarking{Selectors: gm.Selectors, Residency: js})
		}
	}
	return out
}

// fieldRemovals decides the granular markings of obj, an object the gate
// releases: the content of each marking the audience could not receive
// were it the whole object (the object's TLP raised to the marking's,
// its residency narrowed to the marking's) is removed. It returns the
// selectors to remove and why.
func (g *Gate) fieldRemovals(a *Agreement, partner Party, obj ObjectMeta, now time.Time) ([]string, []FieldRemoval) {
	var sels []string
	var why []FieldRemoval
	for _, fm := range obj.Granular {
		m := obj
		m.Granular = nil
		stricter := false
		if fm.HasTLP && fm.TLP > m.TLP {
			m.TLP, stricter = fm.TLP, true
		}
		if fm.Residency != nil {
			m.Residency, stricter = intersect(obj.Residency, fm.Residency), true
		}
		if !stricter {
			continue
		}
		if d := g.Check(a, partner, m, now); !d.Allow {
			for _, s := range fm.Selectors {
				if !slices.Contains(sels, s) {
					sels = append(sels, s)
					why = append(why, FieldRemoval{Selector: s, Rule: d.Rule})
				}
			}
		}
	}
	return sels, why
}

// intersect returns the jurisdictions of both restrictions (nil: none).
func intersect(a, b []string) []string {
	if a == nil {
		return slices.Clone(b)
	}
	out := []string{}
	for _, j := range a {
		if slices.Contains(b, j) {
			out = append(out, j)
		}
	}
	return out
}

// removeFields applies the removals of a granular decision to raw. It
// returns the object without the content, or a decision that withholds
// it when the content cannot be removed.
func removeFields(obj *ObjectMeta, raw []byte, sels []string) ([]byte, *Decision) {
	out, err := stix.RemoveSelected(raw, sels)
	if err == nil {
		var o *stix.Object
		if o, err = stix.Decode(out); err == nil {
			err = stix.Validate(o)
		}
	}
	if err != nil {
		return nil, &Decision{Rule: RuleGranularWithheld, Reason: fmt.Sprintf(
			"%s: content the partner may not receive (%s) cannot be removed: %v", obj.ID, strings.Join(sels, ", "), err)}
	}
	return out, nil
}

package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/entente-cti/entente/internal/stix"
)

// ResidencyExtensionID is the id of the STIX extension definition that
// defines Entente's residency marking (see [ResidencyExtensionDefinition]).
const ResidencyExtensionID = "extension-definition--5b0a6c6e-2f64-4b8e-9d0a-6e3b1d0c7a11"

// residencyNamespace is the UUIDv5 namespace of residency marking ids, so
// that the same set of jurisdictions always gives the same id.
var residencyNamespace = uuid.MustParse("0d4f6c0e-8b7a-4f3e-9a55-2f8e3c1b9d70")

// residencyCreated is the fixed created timestamp of residency markings
// (marking definitions cannot be versioned, and deterministic ids need
// deterministic content).
const residencyCreated = "2026-01-01T00:00:00.000Z"

// ResidencyExtensionDefinition returns the STIX extension-definition object
// that defines the residency marking, for publishing alongside objects that
// use it.
func ResidencyExtensionDefinition() json.RawMessage {
	return json.RawMessage(`{"type":"extension-definition","spec_version":"2.1","id":"` + ResidencyExtensionID +
		`","created":"` + residencyCreated + `","modified":"` + residencyCreated +
		`","created_by_ref":"identity--0c9a2e0b-1a7e-4f60-8d1b-7a0c0e5e7e11","name":"Entente residency marking",` +
		`"description":"A marking naming the jurisdictions (ISO 3166-1 alpha-2 codes) in which the marked object may be stored.",` +
		`"schema":"https://entente-cti.github.io/schemas/residency-marking.json","version":"1.0.0","extension_types":["property-extension"]}`)
}

// ResidencyMarking returns the marking-definition object that restricts
// storage to the given jurisdictions (ISO 3166-1 alpha-2 codes; they are
// upper-cased, sorted and deduplicated). Its id is derived from the
// jurisdictions, so equal sets give equal ids. The JSON is:
//
//	{"type":"marking-definition","spec_version":"2.1",
//	 "id":"marking-definition--<UUIDv5 of the sorted codes>",
//	 "created":"2026-01-01T00:00:00.000Z","name":"Residency: DE, FR",
//	 "extensions":{"extension-definition--5b0a6c6e-…":{
//	   "extension_type":"property-extension","jurisdictions":["DE","FR"]}}}
func ResidencyMarking(jurisdictions ...string) json.RawMessage {
	js := normJurisdictions(jurisdictions)
	list, _ := json.Marshal(js)
	return json.RawMessage(`{"type":"marking-definition","spec_version":"2.1","id":"` + ResidencyMarkingID(js...) +
		`","created":"` + residencyCreated + `","name":"Residency: ` + strings.Join(js, ", ") +
		`","extensions":{"` + ResidencyExtensionID + `":{"extension_type":"property-extension","jurisdictions":` +
		string(list) + `}}}`)
}

// ResidencyMarkingID returns the id of the residency marking for the given
// jurisdictions, as [ResidencyMarking] writes it.
func ResidencyMarkingID(jurisdictions ...string) string {
	js := normJurisdictions(jurisdictions)
	return "marking-definition--" + uuid.NewSHA1(residencyNamespace, []byte(strings.Join(js, ","))).String()
}

func normJurisdictions(js []string) []string {
	out := make([]string, 0, len(js))
	for _, j := range js {
		out = append(out, strings.ToUpper(strings.TrimSpace(j)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ParseResidencyMarking reads a marking-definition object. ok is false
// (with a nil error) when it is a valid marking definition of another kind
// (TLP, statement); err says what is wrong when it is a residency marking
// whose jurisdictions are missing or not ISO 3166-1 alpha-2 codes.
func ParseResidencyMarking(raw json.RawMessage) (id string, jurisdictions []string, ok bool, err error) {
	var m struct {
		Type       string                     `json:"type"`
		ID         string                     `json:"id"`
		Extensions map[string]json.RawMessage `json:"extensions"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", nil, false, fmt.Errorf("parse marking definition: %w", err)
	}
	if m.Type != "marking-definition" {
		return "", nil, false, fmt.Errorf("parse marking definition %s: type is %q, not marking-definition", m.ID, m.Type)
	}
	ext, found := m.Extensions[ResidencyExtensionID]
	if !found {
		return stix.CanonicalRef(m.ID), nil, false, nil
	}
	var e struct {
		Jurisdictions *[]string `json:"jurisdictions"`
	}
	if err := json.Unmarshal(ext, &e); err != nil {
		return m.ID, nil, false, fmt.Errorf("marking definition %s: residency extension: %w", m.ID, err)
	}
	if e.Jurisdictions == nil || len(*e.Jurisdictions) == 0 {
		return m.ID, nil, false, fmt.Errorf("marking definition %s: residency extension: property jurisdictions: must list at least one country", m.ID)
	}
	for i, j := range *e.Jurisdictions {
		if !IsCountry(j) {
			return m.ID, nil, false, fmt.Errorf("marking definition %s: residency extension: property jurisdictions[%d]: %q is not an ISO 3166-1 alpha-2 code", m.ID, i, j)
		}
	}
	return stix.CanonicalRef(m.ID), normJurisdictions(*e.Jurisdictions), true, nil
}

// Markings resolves the marking-definition ids an object refers to.
// Residency maps the id of each residency marking the node knows to its
// jurisdictions (see [ParseResidencyMarking]).
type Markings struct {
	Residency map[string][]string
}

// Classify resolves an object's TLP and residency from its
// object_marking_refs. The TLP is the most restrictive TLP marking among
// refs, or def (the collection's default) when refs hold none. The
// residency is nil (unrestricted) when refs hold no residency marking, and
// otherwise the intersection of the jurisdictions of all of them (possibly
// empty: stored nowhere outside the node). A ref to an unknown marking
// definition is ignored.
func (m Markings) Classify(refs []string, def stix.TLP) (stix.TLP, []string) {
	tlp, found := stix.TLPClear, false
	var res []string
	resFound := false
	for _, r := range refs {
		r = stix.CanonicalRef(r)
		if t, ok := stix.TLPFromMarking(r); ok {
			if !found || t > tlp {
				tlp = t
			}
			found = true
			continue
		}
		js, ok := m.Residency[r]
		if !ok {
			continue
		}
		if !resFound {
			res = slices.Clone(js)
			resFound = true
			continue
		}
		res = slices.DeleteFunc(res, func(j string) bool { return !slices.Contains(js, j) })
	}
	if !found {
		tlp = def
	}
	if resFound && res == nil {
		res = []string{}
	}
	return tlp, res
}

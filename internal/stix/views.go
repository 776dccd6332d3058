package stix

import (
	"encoding/json"
	"fmt"
	"time"
)

// Typed views of the objects the node reasons about. Each is decoded
// from the object's JSON on demand and carries only the properties the
// node uses; the object's JSON stays the authority.

// Identity is the view of an identity object.
type Identity struct {
	Name               string
	IdentityClass      string
	Sectors            []string
	ContactInformation string
	// Country is the ISO 3166-1 alpha-2 code in the custom property
	// x_country, when the producer set one.
	Country string
}

// Indicator is the view of an indicator object.
type Indicator struct {
	Name           string
	IndicatorTypes []string
	Pattern        string
	PatternType    string
	PatternVersion string
	ValidFrom      time.Time
	ValidUntil     time.Time // zero when absent
	// Confidence is -1 when the indicator does not state one.
	Confidence int
	Labels     []string
}

// Sighting is the view of a sighting object.
type Sighting struct {
	SightingOfRef    string
	WhereSightedRefs []string
	ObservedDataRefs []string
	// Count is -1 when the sighting does not state one.
	Count     int
	FirstSeen time.Time // zero when absent
	LastSeen  time.Time // zero when absent
}

// Relationship is the view of a relationship object.
type Relationship struct {
	RelationshipType string
	SourceRef        string
	TargetRef        string
}

// MarkingDefinition is the view of a marking-definition object.
type MarkingDefinition struct {
	Name           string
	DefinitionType string // "statement", "tlp", or "" for extension-based markings
	Statement      string
	// TLP is the level of a TLP marking (TLP 2.0 extension or TLP 1.0
	// definition); IsTLP says whether the marking is one.
	TLP   TLP
	IsTLP bool
}

// view decodes o's JSON into v after checking its type.
func (o *Object) view(want string, v any) error {
	if o.Type != want {
		return fmt.Errorf("%s is a %s, not a %s", o.ID, o.Type, want)
	}
	if err := json.Unmarshal(o.Raw, v); err != nil {
		return fmt.Errorf("%s: %w", o.ID, err)
	}
	return nil
}

// timestamps parses optional timestamp properties into the targets.
func timestamps(id string, props []string, values []string, dst []*time.Time) error {
	for i, s := range values {
		if s == "" {
			continue
		}
		t, err := ParseTimestamp(s)
		if err != nil {
			return fmt.Errorf("%s: property %q: %w", id, props[i], err)
		}
		*dst[i] = t
	}
	return nil
}

// Identity decodes the identity view of o.
func (o *Object) Identity() (*Identity, error) {
	var j struct {
		Name          string   `json:"name"`
		IdentityClass string   `json:"identity_class"`
		Sectors       []string `json:"sectors"`
		Contact       string   `json:"contact_information"`
		Country       string   `json:"x_country"`
	}
	if err := o.view("identity", &j); err != nil {
		return nil, err
	}
	return &Identity{Name: j.Name, IdentityClass: j.IdentityClass, Sectors: j.Sectors, ContactInformation: j.Contact, Country: j.Country}, nil
}

// Indicator decodes the indicator view of o.
func (o *Object) Indicator() (*Indicator, error) {
	var j struct {
		Name           string   `json:"name"`
		IndicatorTypes []string `json:"indicator_types"`
		Pattern        string   `json:"pattern"`
		PatternType    string   `json:"pattern_type"`
		PatternVersion string   `json:"pattern_version"`
		ValidFrom      string   `json:"valid_from"`
		ValidUntil     string   `json:"valid_until"`
		Confidence     *int     `json:"confidence"`
		Labels         []string `json:"labels"`
	}
	if err := o.view("indicator", &j); err != nil {
		return nil, err
	}
	in := &Indicator{Name: j.Name, IndicatorTypes: j.IndicatorTypes, Pattern: j.Pattern, PatternType: j.PatternType,
		PatternVersion: j.PatternVersion, Confidence: -1, Labels: j.Labels}
	if j.Confidence != nil {
		in.Confidence = *j.Confidence
	}
	if err := timestamps(o.ID, []string{"valid_from", "valid_until"}, []string{j.ValidFrom, j.ValidUntil}, []*time.Time{&in.ValidFrom, &in.ValidUntil}); err != nil {
		return nil, err
	}
	return in, nil
}

// Sighting decodes the sighting view of o.
func (o *Object) Sighting() (*Sighting, error) {
	var j struct {
		SightingOfRef    string   `json:"sighting_of_ref"`
		WhereSightedRefs []string `json:"where_sighted_refs"`
		ObservedDataRefs []string `json:"observed_data_refs"`
		Count            *int     `json:"count"`
		FirstSeen        string   `json:"first_seen"`
		LastSeen         string   `json:"last_seen"`
	}
	if err := o.view("sighting", &j); err != nil {
		return nil, err
	}
	s := &Sighting{SightingOfRef: j.SightingOfRef, WhereSightedRefs: j.WhereSightedRefs, ObservedDataRefs: j.ObservedDataRefs, Count: -1}
	if j.Count != nil {
		s.Count = *j.Count
	}
	if err := timestamps(o.ID, []string{"first_seen", "last_seen"}, []string{j.FirstSeen, j.LastSeen}, []*time.Time{&s.FirstSeen, &s.LastSeen}); err != nil {
		return nil, err
	}
	return s, nil
}

// Relationship decodes the relationship view of o.
func (o *Object) Relationship() (*Relationship, error) {
	var j struct {
		RelationshipType string `json:"relationship_type"`
		SourceRef        string `json:"source_ref"`
		TargetRef        string `json:"target_ref"`
	}
	if err := o.view("relationship", &j); err != nil {
		return nil, err
	}
	return &Relationship{RelationshipType: j.RelationshipType, SourceRef: j.SourceRef, TargetRef: j.TargetRef}, nil
}

// MarkingDefinition decodes the marking-definition view of o.
func (o *Object) MarkingDefinition() (*MarkingDefinition, error) {
	var j struct {
		Name           string `json:"name"`
		DefinitionType string `json:"definition_type"`
		Definition     struct {
			Statement string `json:"statement"`
			TLP       string `json:"tlp"`
		} `json:"definition"`
		Extensions map[string]struct {
			TLP20 string `json:"tlp_2_0"`
		} `json:"extensions"`
	}
	if err := o.view("marking-definition", &j); err != nil {
		return nil, err
	}
	m := &MarkingDefinition{Name: j.Name, DefinitionType: j.DefinitionType, Statement: j.Definition.Statement}
	if e, ok := j.Extensions[TLP20Extension]; ok && e.TLP20 != "" {
		t, err := ParseTLP(e.TLP20)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.ID, err)
		}
		m.TLP, m.IsTLP = t, true
	} else if j.DefinitionType == "tlp" {
		t, err := ParseTLP(j.Definition.TLP)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.ID, err)
		}
		m.TLP, m.IsTLP = t, true
	}
	return m, nil
}

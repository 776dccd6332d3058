package correlate

import (
	"encoding/json"
	"fmt"

	"time"

	"github.com/entente-cti/entente"
)

// STIXSighting is what correlation reads of a STIX 2.1 sighting object.
type STIXSighting struct {
	ID               string
	SightingOfRef    string
	WhereSightedRefs []string
	CreatedByRef     string
	// FirstSeen and LastSeen are zero when absent.
	FirstSeen time.Time
	LastSeen  time.Time
	Count     int
}

type sightingJSON struct {
	Type             string   `json:"type"`
	ID               string   `json:"id"`
	SightingOfRef    string   `json:"sighting_of_ref"`
	WhereSightedRefs []string `json:"where_sighted_refs"`
	CreatedByRef     string   `json:"created_by_ref"`
	FirstSeen        string   `json:"first_seen"`
	LastSeen         string   `json:"last_seen"`
	Count            *int     `json:"count"`
}

// ParseSighting reads a STIX sighting object. Errors are *entente.Error
// (EINVALID) naming the sighting and the property at fault.
func ParseSighting(raw []byte) (STIXSighting, error) {
	var j sightingJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return STIXSighting{}, &entente.Error{Code: entente.EINVALID, Message: "sighting is not a valid JSON object: " + err.Error(), Err: err}
	}
	bad := func(prop, format string, args ...any) error {
		return entente.Errorf(entente.EINVALID, "sighting %s: property %s: %s", j.ID, prop, fmt.Sprintf(format, args...))
	}
	if j.Type != "sighting" {
		return STIXSighting{}, bad("type", "%q is not \"sighting\"", j.Type)
	}
	if typeOf(j.ID) != "sighting" {
		return STIXSighting{}, bad("id", "%q is not a sighting id", j.ID)
	}
	if j.SightingOfRef == "" {
		return STIXSighting{}, bad("sighting_of_ref", "missing")
	}
	s := STIXSighting{
		ID: j.ID, SightingOfRef: j.SightingOfRef, WhereSightedRefs: j.WhereSightedRefs,
		CreatedByRef: j.CreatedByRef, Count: 1,
	}
	var err error
	if s.FirstSeen, err = parseOptional(j.FirstSeen); err != nil {
		return STIXSighting{}, bad("first_seen", "%v", err)
	}
	if s.LastSeen, err = parseOptional(j.LastSeen); err != nil {
		return STIXSighting{}, bad("last_seen", "%v", err)
	}
	if j.Count != nil {
		if *j.Count < 0 || *j.Count > 999999999 {
			return STIXSighting{}, bad("count", "%d is outside 0…999999999", *j.Count)
		}
		s.Count = *j.Count
	}
	return s, nil
}

// Sightings turns a STIX sighting into the sightings the engine counts:
// one per organisation in where_sighted_refs (or the creator when it
// names none). The threat is resolved with r, known says whether the
// sighted object exists on the node, and country gives each organisation's
// country ("" when unknown, which the engine refuses).
func (s STIXSighting) Sightings(r *ThreatResolver, known func(id string) bool, country func(org string) string) []Sighting {
	threat := r.Resolve(s.SightingOfRef, known(s.SightingOfRef))
	orgs := s.WhereSightedRefs
	if len(orgs) == 0 && s.CreatedByRef != "" {
		orgs = []string{s.CreatedByRef}
	}
	if len(orgs) == 0 {
		orgs = []string{""} // refused by the engine as having no organisation
	}
	out := make([]Sighting, 0, len(orgs))
	for _, o := range orgs {
		out = append(out, Sighting{ID: s.ID, Threat: threat, Org: o, Country: country(o), FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, Count: s.Count})
	}
	return out
}

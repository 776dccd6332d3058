package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente/internal/stix"
)

// FreeTextProperties are the top-level properties removed by the
// StripFreeText redaction, in addition to every custom property (a name
// starting with "x_") and the description of each external reference.
// Required free-text properties ("name" of most SDOs) are kept, so that
// released objects stay valid; notes, which are nothing but free text, are
// withheld instead (rule [RuleFreeTextNote]).
var FreeTextProperties = []string{
	"description",         // every SDO and SRO
	"explanation",         // opinion
	"abstract", "content", // note
	"objective",           // campaign
	"goals",               // intrusion-set, threat-actor
	"contact_information", // identity
	"x_mitre_detection",   // also caught by the x_ prefix; listed as the common case
}

// requiredRefs are reference properties that an object cannot lose and
// stay valid: when one of them points to a third-party identity the object
// is withheld rather than redacted.
var requiredRefs = map[string]bool{
	"source_ref": true, "target_ref": true, "sighting_of_ref": true,
}

// requiredLists are list properties that must not become empty.
var requiredLists = map[string]bool{
	"object_refs": true,
}

// locationNamespace is the UUIDv5 namespace of the country locations the
// victims-to-country redaction emits.
var locationNamespace = uuid.MustParse("6a3e1f0a-7b5c-4d9e-8f21-0c4b2a9d7e33")

// CountryLocation returns the STIX location object for a country that the
// victims-to-country redaction emits, and its id. The id is derived from
// the country code, so every release names the same object.
func CountryLocation(country string) (string, json.RawMessage) {
	id := "location--" + uuid.NewSHA1(locationNamespace, []byte("country:"+country)).String()
	return id, json.RawMessage(`{"type":"location","spec_version":"2.1","id":"` + id +
		`","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"` + country +
		`","country":"` + country + `","object_marking_refs":["` + stix.TLPClear.MarkingID() + `"]}`)
}

// Released is an object as it leaves the node: redacted, with the objects
// the redaction introduced (country locations) that must be sent with it.
type Released struct {
	Object  json.RawMessage
	Related []json.RawMessage
}

// Release decides obj like [Gate.Check] (the decision has no Reason,
// except when a redaction withholds the object) and, when it is allowed, applies
// the redactions the decision lists to raw, the object's JSON. When no
// redaction applies raw is returned unchanged (same bytes). A redaction
// can still withhold the object (a relationship whose source_ref or
// target_ref is a third party's identity, a report whose object_refs are
// all third parties): the returned decision then says so. err is non-nil
// only when raw is not a JSON object.
func (g *Gate) Release(a *Agreement, partner Party, obj ObjectMeta, raw json.RawMessage, now time.Time) (Released, Decision, error) {
	d := g.Check(a, partner, obj, now)
	if d.Allow && len(obj.Granular) > 0 {
		if sels, why := g.fieldRemovals(a, partner, obj, now); len(sels) > 0 {
			out, withheld := removeFields(&obj, raw, sels)
			if withheld != nil {
				return Released{}, *withheld, nil
			}
			raw, d.Removed = out, why
		}
	}
	if !d.Allow || len(d.Redactions) == 0 {
		if !d.Allow {
			return Released{}, d, nil
		}
		return Released{Object: raw}, d, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return Released{}, Decision{Rule: d.Rule, Reason: "object is not valid JSON"}, fmt.Errorf("release %s: %w", obj.ID, err)
	}
	var rel Released
	changed := false
	for _, r := range d.Redactions {
		switch r {
		case RedactFreeText:
			changed = stripFreeText(m) || changed
		case RedactVictimsToCountry:
			ch, locs := g.victimsToCountry(m)
			changed = ch || changed
			rel.Related = append(rel.Related, locs...)
		case RedactThirdPartyRefs:
			ch, withhold := g.removeThirdPartyRefs(m, partner)
			if withhold != "" {
				return Released{}, Decision{Rule: RuleThirdPartyID, Reason: fmt.Sprintf(
					"%s refers to a third party's identity in %s, which cannot be removed; agreement %s removes third-party identities",
					obj.ID, withhold, a.ID)}, nil
			}
			changed = ch || changed
		}
	}
	if !changed {
		rel.Object = raw
		return rel, d, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return Released{}, Decision{Rule: d.Rule, Reason: "encode failed"}, fmt.Errorf("release %s: encode: %w", obj.ID, err)
	}
	rel.Object = json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n"))
	// A redaction may have removed content that granular markings name:
	// their selectors must name only what is left.
	if len(obj.Granular) > 0 || bytes.Contains(rel.Object, []byte("granular_markings")) {
		pruned, _, err := stix.PruneGranular(rel.Object)
		if err != nil {
			return Released{}, Decision{Rule: d.Rule, Reason: "granular markings do not decode"}, fmt.Errorf("release %s: %w", obj.ID, err)
		}
		rel.Object = pruned
	}
	return rel, d, nil
}

func stripFreeText(m map[string]json.RawMessage) bool {
	changed := false
	for k := range m {
		if strings.HasPrefix(k, "x_") || slices.Contains(FreeTextProperties, k) {
			delete(m, k)
			changed = true
		}
	}
	if er, ok := m["external_references"]; ok {
		var refs []map[string]json.RawMessage
		if json.Unmarshal(er, &refs) == nil {
			strip := false
			for _, r := range refs {
				if _, ok := r["description"]; ok {
					delete(r, "description")
					strip = true
				}
			}
			if strip {
				if b, err := json.Marshal(refs); err == nil {
					m["external_references"] = b
					changed = true
				}
			}
		}
	}
	return changed
}

// victimsToCountry replaces where_sighted_refs by the country locations of
// the victims. Victims whose country is unknown are dropped.
func (g *Gate) victimsToCountry(m map[string]json.RawMessage) (bool, []json.RawMessage) {
	v, ok := m["where_sighted_refs"]
	if !ok {
		return false, nil
	}
	var refs []string
	_ = json.Unmarshal(v, &refs) // a malformed list is dropped below
	var ids []string
	var locs []json.RawMessage
	seen := map[string]bool{}
	for _, r := range refs {
		c, ok := "", false
		if g.CountryOf != nil {
			c, ok = g.CountryOf(r)
		}
		if !ok || !IsCountry(c) || seen[c] {
			continue
		}
		seen[c] = true
		id, loc := CountryLocation(c)
		ids = append(ids, id)
		locs = append(locs, loc)
	}
	if len(ids) == 0 {
		delete(m, "where_sighted_refs")
		return true, nil
	}
	b, _ := json.Marshal(ids)
	m["where_sighted_refs"] = b
	return true, locs
}

// removeThirdPartyRefs removes references to identities other than the
// node's and the partner's. withhold names a property whose loss would
// make the object invalid.
func (g *Gate) removeThirdPartyRefs(m map[string]json.RawMessage, partner Party) (changed bool, withhold string) {
	third := func(ref string) bool {
		return strings.HasPrefix(ref, "identity--") && ref != g.Self.ID && ref != partner.ID
	}
	for k, v := range m {
		switch {
		case strings.HasSuffix(k, "_ref"):
			var ref string
			if json.Unmarshal(v, &ref) != nil || !third(ref) {
				continue
			}
			if requiredRefs[k] {
				return false, k
			}
			delete(m, k)
			changed = true
		case strings.HasSuffix(k, "_refs"):
			var refs []string
			if json.Unmarshal(v, &refs) != nil {
				continue
			}
			kept := slices.DeleteFunc(slices.Clone(refs), third)
			if len(kept) == len(refs) {
				continue
			}
			changed = true
			if len(kept) == 0 {
				if requiredLists[k] {
					return false, k
				}
				delete(m, k)
				continue
			}
			b, _ := json.Marshal(kept)
			m[k] = b
		}
	}
	return changed, ""
}

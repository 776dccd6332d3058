package blind

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente/internal/feed"
	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
)

// Hit is what a blind match reports of one blinded reference its logs
// hit.
type Hit struct {
	Ref Ref
	// Count, FirstSeen and LastSeen aggregate the lines that hit it.
	Count               int64
	FirstSeen, LastSeen time.Time
	// Observed are the log values that hit it.
	Observed []string
	// Released are the partner's indicators the reference resolved to,
	// as the partner released them (STIX JSON): none when the partner
	// was not asked, or withheld them.
	Released []json.RawMessage
}

// BlindRefProperty is the custom property that carries a blinded
// reference in the objects of a blind report. (A name ending in _ref
// would declare a STIX identifier.)
const BlindRefProperty = "x_entente_blinded_reference"

// BlindPartnerProperty names the partner whose set a blind report's
// reference belongs to.
const BlindPartnerProperty = "x_entente_blind_partner"

// stubNamespace is the UUIDv5 namespace of the stub indicators of blind
// reports, so that one partner's reference always gets the same id.
var stubNamespace = uuid.MustParse("6a0c3f5e-0b8e-4f0e-9d2a-3c1b7e5d9a41")

// maxCount is the largest sighting count STIX allows.
const maxCount = 999999999

// SightingsBundle returns a STIX 2.1 bundle that reports hits as
// sightings by identity (an identity--… id, the organisation whose logs
// were matched), created at now; partner names the node whose set was
// matched (its identity id, or its URL).
//
// A hit whose reference resolved to released indicators is one sighting
// of each of them (sighting_of_ref is the partner's indicator id), and
// the released indicators are in the bundle. Any other hit names the
// partner's indicator by its blinded reference only: its sighting is of
// a stub indicator made by identity — a deterministic id per partner and
// reference, a pattern of the values identity's own logs showed, and the
// reference in x_entente_blinded_reference — so that sighting_of_ref stays a
// valid STIX id and nothing of the partner's indicator is written. The
// partner can resolve the reference under its own rules.
func SightingsBundle(hits []Hit, identity, partner string, now time.Time) ([]byte, error) {
	if !strings.HasPrefix(identity, "identity--") {
		return nil, fmt.Errorf("blind sightings: %q is not an identity id", identity)
	}
	created := stix.FormatTimestamp(now.UTC().Truncate(time.Millisecond))
	var objs []json.RawMessage
	add := func(o map[string]any) error {
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		objs = append(objs, b)
		return nil
	}
	for _, h := range hits {
		first, last := h.FirstSeen, h.LastSeen
		if last.Before(first) {
			first, last = last, first
		}
		sighting := func(of string) map[string]any {
			return map[string]any{
				"type": "sighting", "spec_version": "2.1", "id": stix.NewID("sighting"),
				"created": created, "modified": created, "created_by_ref": identity,
				"sighting_of_ref": of, "count": min(h.Count, maxCount),
				"first_seen": stix.FormatTimestamp(first), "last_seen": stix.FormatTimestamp(last),
				"where_sighted_refs": []string{identity},
				BlindRefProperty:     h.Ref.String(), BlindPartnerProperty: partner,
			}
		}
		var released []string
		for _, raw := range h.Released {
			o, err := stix.Decode(raw)
			if err != nil || o.Type != "indicator" {
				return nil, fmt.Errorf("blind sightings: %s: a released object that is not an indicator", h.Ref)
			}
			if slices.Contains(released, o.ID) {
				continue
			}
			released = append(released, o.ID)
			objs = append(objs, raw)
			if err := add(sighting(o.ID)); err != nil {
				return nil, err
			}
		}
		if len(released) > 0 {
			continue
		}
		pattern := observedPattern(h.Observed)
		if pattern == "" {
			return nil, fmt.Errorf("blind sightings: %s: no observed value makes a pattern", h.Ref)
		}
		stub := "indicator--" + uuid.NewSHA1(stubNamespace, []byte(partner+"|"+h.Ref.String())).String()
		if err := add(map[string]any{
			"type": "indicator", "spec_version": "2.1", "id": stub,
			"created": created, "modified": created, "created_by_ref": identity,
			"name":        "Blind match against " + partner,
			"description": "Values of " + identity + "'s logs that are in " + partner + "'s blinded set under reference " + h.Ref.String() + "; " + partner + " can resolve it.",
			"pattern":     pattern, "pattern_type": "stix", "valid_from": created,
			"indicator_types":    []string{"unknown"},
			BlindRefProperty:     h.Ref.String(),
			BlindPartnerProperty: partner,
		}); err != nil {
			return nil, err
		}
		if err := add(sighting(stub)); err != nil {
			return nil, err
		}
	}
	return json.Marshal(map[string]any{"type": "bundle", "id": stix.NewID("bundle"), "objects": objs})
}

// observedPattern returns the STIX pattern that matches any of the
// observed values (those that are values of a known kind), "" when none
// is.
func observedPattern(observed []string) string {
	var parts []string
	for _, v := range observed {
		k, n, err := observable.Detect(v)
		if err != nil {
			continue
		}
		if k == observable.CIDR4 || k == observable.CIDR6 {
			continue
		}
		p := feed.Pattern(k, n)
		if p == "" || slices.Contains(parts, p) {
			continue
		}
		parts = append(parts, p)
	}
	slices.Sort(parts)
	return strings.Join(parts, " OR ")
}

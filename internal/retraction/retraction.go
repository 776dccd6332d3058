// Package retraction is how a node says, and hears, that intelligence was
// wrong: a false positive is marked with a STIX 2.1 opinion of
// strongly-disagree on the objects it names (an indicator, a sighting…),
// which travels through the policy gate to every partner that received
// them; and it holds the rules by which a node honours a retraction — its
// own analysts' always, a partner's for what that partner contributed —
// so that the same rules apply on every node.
//
// It is domain logic: it builds and reads objects, and decides; the
// caller stores, releases and correlates.
package retraction

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/google/uuid"
)

// Property is the custom property that marks an opinion as a retraction
// made by Entente (any strongly-disagree opinion is read as one; this
// one says the node that wrote it withdrew the objects it names).
const Property = "x_entente_retraction"

// MaxRefs is the most objects one retraction names; more are split over
// several opinions.
const MaxRefs = 1000

// Ref is an object a retraction names, with the markings it carries: the
// opinion carries the most restrictive of them, so that it never goes
// where the objects it names could not.
type Ref struct {
	ID          string
	MarkingRefs []string
}

// Retraction is a retraction as read from a stored opinion.
type Retraction struct {
	// ID is the opinion's id.
	ID string
	// Refs are the objects it retracts.
	Refs []string
	// CreatedBy is the opinion's created_by_ref (informative only: who
	// honours it is decided by provenance, see [Decide]).
	CreatedBy string
	// Reason is the opinion's explanation.
	Reason string
	// Created is when it was made.
	Created time.Time
	// Quarantine is the partner whose quarantine made it ("" for a false
	// positive).
	Quarantine string
}

// New returns the STIX opinion that retracts refs (at most [MaxRefs]),
// made by the organisation by at now, explaining why. It carries the
// markings of every ref (the gate then releases it only where the most
// restrictive of them allows). EINVALID when refs is empty, too long or
// names an id that is not a STIX id.
func New(by string, refs []Ref, reason string, now time.Time) (json.RawMessage, error) {
	return newOpinion(by, refs, reason, now, "")
}

// QuarantineProperty names, on a retraction made when a partner was
// quarantined, that partner: releasing it revokes these retractions.
const QuarantineProperty = "x_entente_quarantine_ref"

// NewForQuarantine is New for the retraction of what partner contributed,
// made when it was quarantined.
func NewForQuarantine(by, partner string, refs []Ref, reason string, now time.Time) (json.RawMessage, error) {
	return newOpinion(by, refs, reason, now, partner)
}

func newOpinion(by string, refs []Ref, reason string, now time.Time, quarantine string) (json.RawMessage, error) {
	if len(refs) == 0 {
		return nil, entente.Errorf(entente.EINVALID, "a retraction names at least one object")
	}
	if len(refs) > MaxRefs {
		return nil, entente.Errorf(entente.EINVALID, "a retraction names at most %d objects, not %d", MaxRefs, len(refs))
	}
	ids := make([]string, 0, len(refs))
	var marks []string
	for _, r := range refs {
		if !stix.ValidID(r.ID) {
			return nil, entente.Errorf(entente.EINVALID, "object_refs: %q is not a STIX id", r.ID)
		}
		if !slices.Contains(ids, r.ID) {
			ids = append(ids, r.ID)
		}
		for _, m := range r.MarkingRefs {
			if !slices.Contains(marks, m) {
				marks = append(marks, m)
			}
		}
	}
	slices.Sort(marks)
	if reason == "" {
		reason = "false positive"
	}
	ts := stix.FormatTimestamp(now)
	o := struct {
		Type        string   `json:"type"`
		SpecVersion string   `json:"spec_version"`
		ID          string   `json:"id"`
		CreatedBy   string   `json:"created_by_ref,omitempty"`
		Created     string   `json:"created"`
		Modified    string   `json:"modified"`
		Opinion     string   `json:"opinion"`
		Explanation string   `json:"explanation"`
		ObjectRefs  []string `json:"object_refs"`
		Markings    []string `json:"object_marking_refs,omitempty"`
		Retraction  bool     `json:"x_entente_retraction"`
		Quarantine  string   `json:"x_entente_quarantine_ref,omitempty"`
	}{"opinion", "2.1", "opinion--" + uuid.NewString(), by, ts, ts, "strongly-disagree", reason, ids, marks, true, quarantine}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode retraction: %w", err)
	}
	return b, nil
}

// Parse reads a retraction from a STIX object: an opinion of
// strongly-disagree. ok is false for any other object (an opinion that
// agrees is an analyst's view, not a retraction).
func Parse(raw []byte) (r Retraction, ok bool) {
	r, revoked, ok := ParseAny(raw)
	return r, ok && !revoked
}

// ParseAny is Parse that also reads a revoked retraction (revoked true),
// which must follow the retraction it revokes.
func ParseAny(raw []byte) (r Retraction, revoked, ok bool) {
	var o struct {
		Type        string   `json:"type"`
		ID          string   `json:"id"`
		Opinion     string   `json:"opinion"`
		ObjectRefs  []string `json:"object_refs"`
		CreatedBy   string   `json:"created_by_ref"`
		Explanation string   `json:"explanation"`
		Created     string   `json:"created"`
		Revoked     bool     `json:"revoked"`
		Quarantine  string   `json:"x_entente_quarantine_ref"`
	}
	if json.Unmarshal(raw, &o) != nil || o.Type != "opinion" || o.Opinion != "strongly-disagree" || len(o.ObjectRefs) == 0 {
		return Retraction{}, false, false
	}
	r = Retraction{ID: o.ID, Refs: o.ObjectRefs, CreatedBy: o.CreatedBy, Reason: o.Explanation, Quarantine: o.Quarantine}
	r.Created, _ = stix.ParseTimestamp(o.Created)
	return r, o.Revoked, true
}

// IsRetraction reports, cheaply, whether raw may be a retraction, or a
// revoked one: an opinion that strongly disagrees.
func IsRetraction(raw []byte) bool {
	return strings.Contains(string(raw), `"strongly-disagree"`) && strings.Contains(string(raw), `"opinion"`)
}

// Effect is what honouring a retraction does on a node.
type Effect struct {
	// Withhold are the retracted objects that leave every export,
	// snapshot and release to partners.
	Withhold []string
	// AnySource, when true, removes from correlation every sighting of,
	// and every sighting among, the retracted objects whatever source
	// vouched for it; otherwise only those vouched for by Source.
	AnySource bool
	// Source is the origin whose contributions are removed when
	// AnySource is false.
	Source string
}

// Decide says what a node does with a retraction r that came from origin
// ("" or self: the node's own analysts), given where each retracted
// object came from (originOf: "" or self for the node's own objects and
// for objects the node does not hold).
//
// The rules are the same on every node:
//   - the node's own retraction withdraws every object it names from the
//     node's outputs and removes every sighting of them from correlation:
//     its analysts decided;
//   - a partner's retraction withdraws from the node's outputs the
//     objects that partner contributed (their origin is that partner),
//     and removes from correlation only what that partner vouched for:
//     the node keeps its own independent evidence, and a partner cannot
//     withdraw what others contributed.
func Decide(r Retraction, origin, self string, originOf func(id string) string) Effect {
	if origin == "" || origin == self {
		return Effect{Withhold: slices.Clone(r.Refs), AnySource: true}
	}
	e := Effect{Source: origin}
	for _, id := range r.Refs {
		if originOf(id) == origin {
			e.Withhold = append(e.Withhold, id)
		}
	}
	return e
}

// IsRevoked reports whether raw is a retraction that was revoked (its
// objects are acted on again).
func IsRevoked(raw []byte) bool {
	var o struct {
		Type    string `json:"type"`
		Opinion string `json:"opinion"`
		Revoked bool   `json:"revoked"`
	}
	return json.Unmarshal(raw, &o) == nil && o.Type == "opinion" && o.Opinion == "strongly-disagree" && o.Revoked
}

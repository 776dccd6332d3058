package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/stix"
)

// Rule ids. They are stable: audit records, previews and tests refer to
// them. The package documentation describes each.
const (
	RuleRed               = "tlp.red"
	RuleResidency         = "residency"
	RulePartnerMismatch   = "agreement.partner"
	RulePublic            = "tlp.clear.public"
	RuleNoAgreement       = "agreement.none"
	RuleNotYetValid       = "agreement.not-yet-valid"
	RuleExpired           = "agreement.expired"
	RuleCollection        = "agreement.collection"
	RuleObjectType        = "agreement.object-type"
	RuleAboveMaxTLP       = "tlp.above-agreement"
	RuleReshareNone       = "reshare.no-agreement"
	RuleReshareNotAllowed = "reshare.not-allowed"
	RuleReshareAmber      = "reshare.third-party-amber"
	RuleOriginator        = "reshare.originator"
	RuleThirdPartyID      = "redact.third-party-identity"
	RuleFreeTextNote      = "redact.free-text-note"
	RuleAgreement         = "agreement"
	RuleRetraction        = "retraction"
)

// Redaction names, as listed in [Decision.Redactions].
const (
	RedactVictimsToCountry = "sighting.victims-to-country"
	RedactThirdPartyRefs   = "identity.third-party-refs"
	RedactFreeText         = "free-text"
)

// ObjectMeta is what the gate needs to know about an object. The caller
// fills it from the store: TLP and Residency with [Markings.Classify],
// Origin and ReceivedFromPeer from the object's provenance.
type ObjectMeta struct {
	// ID and Type are the object's STIX id and type.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Collection is the id of the collection the object is released from.
	Collection string `json:"collection"`
	// TLP is the object's resolved TLP level: its own marking, or its
	// collection's default when it has none.
	TLP stix.TLP `json:"tlp"`
	// Residency lists the jurisdictions the object may be stored in; nil
	// means unrestricted, an empty non-nil list means nowhere.
	Residency []string `json:"residency,omitempty"`
	// Origin is the identity id of the organisation the node received the
	// object from; "" (or the node's own identity id) means the node's own.
	Origin string `json:"origin,omitempty"`
	// ReceivedFromPeer names the peer the object was pulled from or pushed
	// by ("" for the node's own objects). It is informative only.
	ReceivedFromPeer string `json:"received_from_peer,omitempty"`
	// CreatedByRef is the object's created_by_ref. It is informative only:
	// Origin, not CreatedByRef, decides re-sharing, because anyone can
	// write any created_by_ref.
	CreatedByRef string `json:"created_by_ref,omitempty"`
	// Granular are the object's granular markings that restrict the
	// content they name (see [Markings.ClassifyGranular]).
	Granular []FieldMarking `json:"granular,omitempty"`
	// Retraction is set on a retraction (an opinion that strongly
	// disagrees) whose every object the partner received: it follows
	// them whatever types the agreement covers (rule "retraction"), so
	// that a false positive is withdrawn wherever it went. The caller
	// checks what the partner received and names only that.
	Retraction bool `json:"retraction,omitempty"`
}

// Decision is the gate's verdict on one object for one partner.
type Decision struct {
	// Allow is true when the object may be released.
	Allow bool `json:"allow"`
	// Rule is the id of the rule that allowed or withheld the object.
	Rule string `json:"rule"`
	// Reason explains the decision to people, naming the object and the
	// values that decided. [Gate.Check] leaves it empty.
	Reason string `json:"reason,omitempty"`
	// Redactions lists the redactions that apply to the object when it is
	// released (names like [RedactFreeText]). The slice may be shared
	// between decisions: do not modify it.
	Redactions []string `json:"redactions,omitempty"`
	// Removed lists the content removed from the object because a
	// granular marking keeps it from the partner (the object itself is
	// released).
	Removed []FieldRemoval `json:"removed,omitempty"`
}

// Gate is the one policy gate: every object that leaves the node is
// decided by it. A Gate is immutable and safe for concurrent use.
type Gate struct {
	// Self is the node's own organisation.
	Self Party
	// CountryOf returns the ISO 3166-1 alpha-2 country of an identity or
	// location id, for reducing sighting victims to their country. It may
	// be nil (victims are then removed without a country).
	CountryOf func(ref string) (string, bool)
}

// NewGate returns a gate for the node whose organisation is self.
func NewGate(self Party, countryOf func(ref string) (string, bool)) *Gate {
	return &Gate{Self: self, CountryOf: countryOf}
}

// own reports whether the object is the node's own (not received from a
// third party).
func (g *Gate) own(o *ObjectMeta) bool { return o.Origin == "" || o.Origin == g.Self.ID }

// Decide says whether obj may be released to partner under agreement a
// (nil when the partner has none) at time now, by which rule, and why
// (Decision.Reason). The rules, in the order they are applied, are the
// table of the package documentation; the first that decides wins.
func (g *Gate) Decide(a *Agreement, partner Party, obj ObjectMeta, now time.Time) Decision {
	d := g.Check(a, partner, obj, now)
	d.Reason = g.explain(d, a, partner, &obj, now)
	if d.Allow && len(obj.Granular) > 0 {
		if _, why := g.fieldRemovals(a, partner, obj, now); len(why) > 0 {
			d.Removed = why
			var parts []string
			for _, r := range why {
				parts = append(parts, r.Selector+" ("+r.Rule+")")
			}
			d.Reason += "; released without " + strings.Join(parts, ", ") + ", which granular markings keep from " + partner.ID
		}
	}
	return d
}

// Check is [Gate.Decide] without the explanation (Reason is empty): the
// decision and its rule id only, without allocating. Egress paths that
// serve many objects call Check and record the rule id; previews call
// Decide.
func (g *Gate) Check(a *Agreement, partner Party, obj ObjectMeta, now time.Time) Decision {
	if obj.TLP >= stix.TLPRed || obj.TLP < stix.TLPClear {
		return Decision{Rule: RuleRed}
	}
	if a != nil && a.Partner.ID != partner.ID {
		return Decision{Rule: RulePartnerMismatch}
	}
	if obj.Residency != nil && !slices.Contains(obj.Residency, partner.Country) {
		return Decision{Rule: RuleResidency}
	}
	own := g.own(&obj)
	// public decides an object outside any agreement in force: only the
	// node's own CLEAR objects go; rule says why others do not.
	public := func(rule string, redactions []string) Decision {
		switch {
		case obj.TLP == stix.TLPClear && own:
			return Decision{Allow: true, Rule: RulePublic, Redactions: redactions}
		case obj.TLP == stix.TLPClear:
			return Decision{Rule: RuleReshareNone}
		}
		return Decision{Rule: rule}
	}
	if a == nil {
		return public(RuleNoAgreement, nil)
	}
	if rule, ok := a.inForce(now); !ok {
		return public(rule, nil)
	}
	redactions := g.redactions(a, &obj)
	if obj.Type == "identity" && a.Redact.RemoveThirdPartyIdentities && obj.ID != g.Self.ID && obj.ID != partner.ID {
		return Decision{Rule: RuleThirdPartyID}
	}
	if obj.Type == "note" && a.Redact.StripFreeText {
		return Decision{Rule: RuleFreeTextNote}
	}
	if !slices.Contains(a.Collections, obj.Collection) {
		return public(RuleCollection, redactions)
	}
	typeCovered := len(a.ObjectTypes) == 0 || slices.Contains(a.ObjectTypes, obj.Type)
	if !typeCovered && !obj.Retraction {
		return public(RuleObjectType, redactions)
	}
	if obj.TLP > a.MaxTLP {
		return Decision{Rule: RuleAboveMaxTLP}
	}
	if !own {
		if obj.Origin == partner.ID {
			return Decision{Allow: true, Rule: RuleOriginator, Redactions: redactions}
		}
		if !a.AllowReshare {
			return Decision{Rule: RuleReshareNotAllowed}
		}
		if obj.TLP >= stix.TLPAmber {
			return Decision{Rule: RuleReshareAmber}
		}
	}
	if !typeCovered {
		return Decision{Allow: true, Rule: RuleRetraction, Redactions: redactions}
	}
	return Decision{Allow: true, Rule: RuleAgreement, Redactions: redactions}
}

// explain returns the reason of decision d, naming the object and the
// values that decided.
func (g *Gate) explain(d Decision, a *Agreement, partner Party, obj *ObjectMeta, now time.Time) string {
	agreement := func() string {
		switch {
		case a == nil:
			return "partner " + partner.ID + " has no agreement"
		case a.ValidFrom.After(now) || !a.ValidUntil.IsZero() && !now.Before(a.ValidUntil):
			return fmt.Sprintf("agreement %s is in force from %s until %s", a.ID, fmtTime(a.ValidFrom), fmtTime(a.ValidUntil))
		case !slices.Contains(a.Collections, obj.Collection):
			return fmt.Sprintf("agreement %s does not cover collection %q", a.ID, obj.Collection)
		default:
			return fmt.Sprintf("agreement %s does not cover type %s", a.ID, obj.Type)
		}
	}
	switch d.Rule {
	case RuleRed:
		return fmt.Sprintf("%s is %s: it never leaves the node", obj.ID, stix.TLPRed)
	case RulePartnerMismatch:
		return fmt.Sprintf("agreement %s is with %s, not with %s", a.ID, a.Partner.ID, partner.ID)
	case RuleResidency:
		return fmt.Sprintf("%s may be stored only in %v; partner %s is in %q", obj.ID, obj.Residency, partner.ID, partner.Country)
	case RulePublic:
		return fmt.Sprintf("%s is the node's own %s object: released to anyone with a key", obj.ID, stix.TLPClear)
	case RuleReshareNone:
		return fmt.Sprintf("%s was received from %s; a third party's objects are passed on only under an agreement in force that covers them and allows it (%s)", obj.ID, obj.Origin, agreement())
	case RuleNoAgreement, RuleNotYetValid, RuleExpired, RuleCollection, RuleObjectType:
		return fmt.Sprintf("%s is %s and is not released: %s", obj.ID, obj.TLP, agreement())
	case RuleThirdPartyID:
		return fmt.Sprintf("%s is the identity of a third party; agreement %s removes third-party identities", obj.ID, a.ID)
	case RuleFreeTextNote:
		return fmt.Sprintf("%s is a note, which is free text; agreement %s strips free text", obj.ID, a.ID)
	case RuleAboveMaxTLP:
		return fmt.Sprintf("%s is %s; agreement %s allows up to %s", obj.ID, obj.TLP, a.ID, a.MaxTLP)
	case RuleOriginator:
		return fmt.Sprintf("%s came from %s and is sent back to its originator under agreement %s", obj.ID, obj.Origin, a.ID)
	case RuleReshareNotAllowed:
		return fmt.Sprintf("%s was received from %s; agreement %s does not allow passing on a third party's objects", obj.ID, obj.Origin, a.ID)
	case RuleReshareAmber:
		return fmt.Sprintf("%s was received from %s and is %s: it is never passed on to another party", obj.ID, obj.Origin, obj.TLP)
	case RuleAgreement:
		return fmt.Sprintf("%s (%s, %s, collection %q) is covered by agreement %s", obj.ID, obj.Type, obj.TLP, obj.Collection, a.ID)
	case RuleRetraction:
		return fmt.Sprintf("%s retracts objects partner %s received under agreement %s: it follows them", obj.ID, partner.ID, a.ID)
	}
	return d.Rule
}

// redactionSets holds every combination of redactions, indexed by a bit
// mask (1: victims to country, 2: third-party refs, 4: free text), so that
// decisions share them instead of allocating. They must not be modified.
var redactionSets = func() (sets [8][]string) {
	for m := 1; m < 8; m++ {
		if m&1 != 0 {
			sets[m] = append(sets[m], RedactVictimsToCountry)
		}
		if m&2 != 0 {
			sets[m] = append(sets[m], RedactThirdPartyRefs)
		}
		if m&4 != 0 {
			sets[m] = append(sets[m], RedactFreeText)
		}
	}
	return sets
}()

// redactions lists the redactions of agreement a that apply to obj. The
// slice is shared and must not be modified.
func (g *Gate) redactions(a *Agreement, obj *ObjectMeta) []string {
	m := 0
	if a.Redact.SightingVictimsToCountry && obj.Type == "sighting" {
		m |= 1
	}
	if a.Redact.RemoveThirdPartyIdentities {
		m |= 2
	}
	if a.Redact.StripFreeText {
		m |= 4
	}
	return redactionSets[m]
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "unbounded"
	}
	return t.UTC().Format(time.RFC3339)
}

// Explanation is one line of a preview: an object and the decision on it.
type Explanation struct {
	Object   ObjectMeta `json:"object"`
	Decision Decision   `json:"decision"`
	// Blind is the blind-membership decision on the object (see
	// [Gate.CheckBlind]), for indicators when the agreement grants blind
	// access.
	Blind *Decision `json:"blind,omitempty"`
}

// Preview decides every object of objs for partner, for showing an
// operator what the partner would receive and why each object is allowed
// or withheld. It returns one explanation per object, in order.
func (g *Gate) Preview(a *Agreement, partner Party, objs []ObjectMeta, now time.Time) []Explanation {
	out := make([]Explanation, len(objs))
	for i, o := range objs {
		out[i] = Explanation{Object: o, Decision: g.Decide(a, partner, o, now)}
	}
	return out
}

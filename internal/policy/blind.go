package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/entente-cti/entente/internal/stix"
)

// Rule ids of blind membership ([Gate.CheckBlind]). Like the release
// rules they are stable: audit records, previews and tests refer to them.
const (
	RuleBlindNone       = "blind.none"
	RuleBlindType       = "blind.type"
	RuleBlindTLP        = "blind.invalid-tlp"
	RuleBlindCollection = "blind.collection"
	RuleBlindResidency  = "blind.residency"
	RuleBlindReshare    = "blind.reshare"
	RuleBlindMember     = "blind.member"
)

// CheckBlind says whether the values of indicator obj may be in the
// blinded set of partner under agreement a (nil when the partner has
// none) at time now: whether the partner may test its own values against
// them. Nothing of the indicator leaves the node — only the OPRF outputs
// of its values under the partner's key of the epoch — so TLP does not
// decide: RED and AMBER+STRICT indicators are members. What does:
//
//	| # | rule id                 | decision | when |
//	|---|-------------------------|----------|------|
//	| 1 | agreement.partner       | withhold | the agreement passed is not with this partner (a caller error) |
//	| 2 | blind.none              | withhold | no agreement, or it grants no blind access |
//	| 3 | agreement.not-yet-valid | withhold | the agreement is not in force yet |
//	|   | agreement.expired       | withhold | the agreement is no longer in force |
//	| 4 | blind.type              | withhold | the object is not an indicator |
//	| 5 | blind.invalid-tlp       | withhold | the object's TLP is not a TLP level (never produced by Markings.Classify) |
//	| 6 | blind.collection        | withhold | its collection is not among the blind access's collections |
//	| 7 | blind.residency         | withhold | it has residency markings and the partner's country is not among their jurisdictions |
//	| 8 | blind.reshare           | withhold | a third party's indicator (not the partner's own) when the agreement does not allow passing such objects on, or when it is above GREEN |
//	| 9 | blind.member            | allow    | everything above passed |
//
// Residency (rule 7) applies although no value leaves: a membership
// answer is information derived from the value, kept by the partner
// outside the jurisdiction, and a hit confirms the value to it. A
// third party's intelligence (rule 8) is tested blindly only where it
// could be passed on in the clear: the originator decided who may know
// of it, and a membership answer is partial knowledge.
func (g *Gate) CheckBlind(a *Agreement, partner Party, obj ObjectMeta, now time.Time) Decision {
	if a != nil && a.Partner.ID != partner.ID {
		return Decision{Rule: RulePartnerMismatch}
	}
	if a == nil || a.Blind == nil {
		return Decision{Rule: RuleBlindNone}
	}
	if rule, ok := a.inForce(now); !ok {
		return Decision{Rule: rule}
	}
	if obj.Type != "indicator" {
		return Decision{Rule: RuleBlindType}
	}
	if obj.TLP < stix.TLPClear || obj.TLP > stix.TLPRed {
		return Decision{Rule: RuleBlindTLP}
	}
	if !slices.Contains(a.Blind.Collections, obj.Collection) {
		return Decision{Rule: RuleBlindCollection}
	}
	if obj.Residency != nil && !slices.Contains(obj.Residency, partner.Country) {
		return Decision{Rule: RuleBlindResidency}
	}
	if !g.own(&obj) && obj.Origin != partner.ID && (!a.AllowReshare || obj.TLP > stix.TLPGreen) {
		return Decision{Rule: RuleBlindReshare}
	}
	return Decision{Allow: true, Rule: RuleBlindMember}
}

// DecideBlind is [Gate.CheckBlind] with the reason, for previews.
func (g *Gate) DecideBlind(a *Agreement, partner Party, obj ObjectMeta, now time.Time) Decision {
	d := g.CheckBlind(a, partner, obj, now)
	d.Reason = g.explainBlind(d, a, partner, &obj)
	return d
}

// explainBlind returns the reason of blind decision d.
func (g *Gate) explainBlind(d Decision, a *Agreement, partner Party, obj *ObjectMeta) string {
	switch d.Rule {
	case RulePartnerMismatch:
		return fmt.Sprintf("agreement %s is with %s, not with %s", a.ID, a.Partner.ID, partner.ID)
	case RuleBlindNone:
		if a == nil {
			return "partner " + partner.ID + " has no agreement, so no blind access"
		}
		return fmt.Sprintf("agreement %s grants no blind access", a.ID)
	case RuleNotYetValid, RuleExpired:
		return fmt.Sprintf("agreement %s is in force from %s until %s", a.ID, fmtTime(a.ValidFrom), fmtTime(a.ValidUntil))
	case RuleBlindType:
		return fmt.Sprintf("%s is a %s: blind access covers indicators only", obj.ID, obj.Type)
	case RuleBlindTLP:
		return fmt.Sprintf("%s has no valid TLP level", obj.ID)
	case RuleBlindCollection:
		return fmt.Sprintf("agreement %s grants no blind access to collection %q", a.ID, obj.Collection)
	case RuleBlindResidency:
		return fmt.Sprintf("%s may be stored only in %v; partner %s is in %q, and a membership answer about its values would be kept there", obj.ID, obj.Residency, partner.ID, partner.Country)
	case RuleBlindReshare:
		if !a.AllowReshare {
			return fmt.Sprintf("%s was received from %s; agreement %s does not allow passing on a third party's objects, blindly or not", obj.ID, obj.Origin, a.ID)
		}
		return fmt.Sprintf("%s was received from %s and is %s: a third party's objects above GREEN are never passed on, blindly or not", obj.ID, obj.Origin, obj.TLP)
	case RuleBlindMember:
		return fmt.Sprintf("%s (%s, collection %q) may be tested blindly under agreement %s: its values' OPRF outputs are in the partner's set, no value is released", obj.ID, obj.TLP, obj.Collection, a.ID)
	}
	return d.Rule
}

package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/stix"
)

// Party is an organisation: the node's own or a partner's. It is described
// as the STIX identity that stands for it, with the country it is in and
// the sector it belongs to.
type Party struct {
	// ID is the id of the organisation's STIX identity ("identity--…").
	ID string `json:"id"`
	// Name is the organisation's name, for people.
	Name string `json:"name,omitempty"`
	// Country is the ISO 3166-1 alpha-2 code of the country the
	// organisation is in ("FR").
	Country string `json:"country"`
	// Sector is the organisation's industry sector, preferably from the
	// STIX industry-sector-ov vocabulary ("government", "energy").
	Sector string `json:"sector,omitempty"`
	// Trust is how far correlation trusts what the partner vouches for
	// (zero: the node's defaults).
	Trust Trust `json:"trust,omitzero"`
	// Constituency is what the partner declares its own: networks,
	// addresses and domains (each with its subdomains). The node never
	// acts on them (internal/safety: a member of the federation never
	// blocks another), whoever reports them.
	Constituency []string `json:"constituency,omitempty"`
}

// MaxConstituency bounds the entries of a partner's declared
// constituency.
const MaxConstituency = 100_000

// constituencyDomain matches a domain a constituency may declare.
var constituencyDomain = regexp.MustCompile(`^(?i)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?\.?$`)

// Trust is how far correlation trusts the sightings a partner vouches
// for: its weight towards a tier's independent sources, its quota of
// sightings per window, and whether it is quarantined. Unset weight and
// quota take the node's defaults ([correlation] default_weight and
// default_quota).
type Trust struct {
	// Weight is what the partner counts for towards a tier's
	// min_sources (0 to 10; 1 is one independent source).
	Weight *float64 `json:"weight,omitempty"`
	// Quota is how many sightings the partner may add per correlation
	// window; past it they are refused. 0 is no quota.
	Quota *int `json:"quota,omitempty"`
	// Quarantined: nothing the partner contributed is acted on — its
	// sightings count for nothing, its objects leave every export,
	// snapshot and release to others — until it is released.
	Quarantined bool `json:"quarantined,omitempty"`
	// QuarantinedAt and Reason say when and why.
	QuarantinedAt time.Time `json:"quarantined_at,omitzero"`
	Reason        string    `json:"reason,omitempty"`
}

// MaxWeight is the largest trust weight.
const MaxWeight = 10

// Validate checks that p has an identity id and an ISO 3166-1 alpha-2
// country. The error names the field at fault.
func (p Party) Validate() error {
	var errs []error
	if !strings.HasPrefix(p.ID, "identity--") || len(p.ID) == len("identity--") {
		errs = append(errs, fmt.Errorf("id: %q is not a STIX identity id (identity--<uuid>)", p.ID))
	}
	if !IsCountry(p.Country) {
		errs = append(errs, fmt.Errorf("country: %q is not an ISO 3166-1 alpha-2 code (e.g. FR, DE, US)", p.Country))
	}
	if w := p.Trust.Weight; w != nil && (*w < 0 || *w > MaxWeight || *w != *w) {
		errs = append(errs, fmt.Errorf("trust.weight: %g is not between 0 and %d", *w, MaxWeight))
	}
	if q := p.Trust.Quota; q != nil && *q < 0 {
		errs = append(errs, fmt.Errorf("trust.quota: %d is negative", *q))
	}
	if len(p.Constituency) > MaxConstituency {
		errs = append(errs, fmt.Errorf("constituency: %d entries; at most %d", len(p.Constituency), MaxConstituency))
	} else {
		for i, e := range p.Constituency {
			if !validConstituencyEntry(strings.TrimSpace(e)) {
				errs = append(errs, fmt.Errorf("constituency[%d]: %q is not a network, an address or a domain", i, e))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// validConstituencyEntry reports whether e is a network, an address or a
// domain (a domain whose last label has a letter: 10.0.0.300 is not one).
func validConstituencyEntry(e string) bool {
	if _, err := netip.ParsePrefix(e); err == nil {
		return true
	}
	if a, err := netip.ParseAddr(e); err == nil {
		return a.Zone() == "" // an interface's zone is no one's network
	}
	return len(e) <= 253 && constituencyDomain.MatchString(e)
}

// Redaction says what is removed from objects released under an
// agreement. Each rule is described, with the properties it touches, in
// the package documentation.
type Redaction struct {
	// SightingVictimsToCountry replaces the where_sighted_refs of a
	// sighting with one location object per country of the victims.
	SightingVictimsToCountry bool `json:"sighting_victims_to_country,omitempty"`
	// RemoveThirdPartyIdentities withholds identity objects of
	// organisations other than the node's own and the partner's, and
	// removes references to them from the objects that are released.
	RemoveThirdPartyIdentities bool `json:"remove_third_party_identities,omitempty"`
	// StripFreeText removes free-text properties (see [FreeTextProperties]).
	StripFreeText bool `json:"strip_free_text,omitempty"`
}

// Agreement is the rule by which the node shares with one partner.
type Agreement struct {
	// ID names the agreement (for audit records and explanations).
	ID string `json:"id"`
	// Partner is the organisation the agreement is with.
	Partner Party `json:"partner"`
	// Collections are the ids of the collections whose objects the
	// agreement covers. It must not be empty unless the agreement grants
	// blind access.
	Collections []string `json:"collections"`
	// ObjectTypes are the STIX types the agreement covers; empty means
	// every type.
	ObjectTypes []string `json:"object_types,omitempty"`
	// MaxTLP is the most restrictive TLP level the partner may receive:
	// clear, green, amber or amber+strict. RED is never released, so an
	// agreement that names it is refused by Validate.
	MaxTLP stix.TLP `json:"max_tlp"`
	// AllowReshare allows objects the node received from third parties to
	// be passed on to the partner, when their marking allows it (CLEAR or
	// GREEN).
	AllowReshare bool `json:"allow_reshare,omitempty"`
	// Redact says what is removed from released objects.
	Redact Redaction `json:"redact"`
	// ValidFrom and ValidUntil bound the period in which the agreement is
	// in force: ValidFrom <= now < ValidUntil. A zero time is unbounded.
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Blind, when set, grants the partner blind access (internal/blind):
	// it may test its own values against the indicators of these
	// collections without receiving them (see [Gate.CheckBlind]).
	Blind *BlindAccess `json:"blind,omitempty"`
}

// BlindAccess is the blind access an agreement grants: the partner
// receives, per epoch, the OPRF outputs of the values of the indicators
// of Collections that [Gate.CheckBlind] admits — RED and AMBER+STRICT
// included, since no value leaves — and may have at most Budget
// evaluations per period, each of which tests one value.
type BlindAccess struct {
	// Collections are the ids of the collections whose indicators the
	// partner may test. They need not be among the agreement's
	// Collections, nor readable by partners.
	Collections []string `json:"collections"`
	// Budget is the number of evaluations per period ("100000/day").
	Budget blind.Budget `json:"budget"`
}

// Catalog is what the node knows that an agreement refers to: the ids of
// its collections.
type Catalog struct {
	// Collections are the ids of the node's collections.
	Collections []string
}

// Validate checks a against the rules above and against the collections
// the node has. Every problem is reported (joined), each naming its field:
// "agreement X: collections[1]: unknown collection \"c9\"".
func (a *Agreement) Validate(known Catalog) error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if a.ID == "" {
		add("id: must not be empty")
	}
	if err := a.Partner.Validate(); err != nil {
		add("partner: %w", err)
	}
	if len(a.Collections) == 0 && a.Blind == nil {
		add("collections: must name at least one collection (or the agreement must grant blind access)")
	}
	for i, c := range a.Collections {
		if !slices.Contains(known.Collections, c) {
			add("collections[%d]: unknown collection %q", i, c)
		}
	}
	for i, t := range a.ObjectTypes {
		if !validType(t) {
			add("object_types[%d]: %q is not a STIX type name", i, t)
		}
	}
	switch {
	case a.MaxTLP == stix.TLPRed:
		add("max_tlp: red is not allowed: TLP:RED never leaves the node, so the highest level an agreement may release is amber+strict")
	case a.MaxTLP < stix.TLPClear || a.MaxTLP > stix.TLPRed:
		add("max_tlp: invalid TLP level %d", int(a.MaxTLP))
	}
	if b := a.Blind; b != nil {
		if len(b.Collections) == 0 {
			add("blind.collections: must name at least one collection")
		}
		for i, c := range b.Collections {
			if !slices.Contains(known.Collections, c) {
				add("blind.collections[%d]: unknown collection %q", i, c)
			}
		}
		if err := b.Budget.Validate(); err != nil {
			add("blind.budget: %v (want N/period, e.g. 100000/day)", err)
		}
	}
	if !a.ValidFrom.IsZero() && !a.ValidUntil.IsZero() && !a.ValidFrom.Before(a.ValidUntil) {
		add("valid_until: %s is not after valid_from %s",
			a.ValidUntil.UTC().Format(time.RFC3339), a.ValidFrom.UTC().Format(time.RFC3339))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("agreement %q: %w", a.ID, err)
	}
	return nil
}

// validType reports whether t is shaped like a STIX type name: 3 to 250
// characters, lower-case ASCII letters, digits and hyphens.
func validType(t string) bool {
	if len(t) < 3 || len(t) > 250 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// inForce reports whether the agreement is in force at now, and if not the
// rule that says why.
func (a *Agreement) inForce(now time.Time) (string, bool) {
	if !a.ValidFrom.IsZero() && now.Before(a.ValidFrom) {
		return RuleNotYetValid, false
	}
	if !a.ValidUntil.IsZero() && !now.Before(a.ValidUntil) {
		return RuleExpired, false
	}
	return "", true
}

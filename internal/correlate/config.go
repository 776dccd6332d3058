package correlate

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/entente-cti/entente"
)

// Tier is one level of alert, with the thresholds that raise it. A window
// meets the tier when any of its non-zero thresholds is reached.
type Tier struct {
	// Name is the tier's name, as it appears in alerts ("national").
	Name string `toml:"name" json:"name"`
	// MinOrgsInOneCountry is the number of distinct organisations in one
	// country that meets the tier; 0 disables this threshold.
	MinOrgsInOneCountry int `toml:"min_orgs_in_one_country" json:"min_orgs_in_one_country,omitempty"`
	// MinCountries is the number of distinct countries that meets the
	// tier; 0 disables this threshold.
	MinCountries int `toml:"min_countries" json:"min_countries,omitempty"`
	// MinCountryShare is the share (0 < share ≤ 1) of the federation's
	// countries that meets the tier; 0 disables this threshold, and so
	// does a federation of unknown size.
	MinCountryShare float64 `toml:"min_country_share" json:"min_country_share,omitempty"`
	// MinSources is the independent sources — origin nodes that vouch
	// for the sightings, each counted by its trust weight — that the
	// tier needs besides its thresholds: no fewer sources, however many
	// organisations or countries they name, meet it. 0 needs none.
	MinSources float64 `toml:"min_sources" json:"min_sources,omitempty"`
}

// met reports whether a window with these counts meets the tier.
func (t Tier) met(maxInOneCC, countries, federation int, sources float64) bool {
	if t.MinSources > 0 && sources < t.MinSources-1e-9 {
		return false
	}
	if t.MinOrgsInOneCountry > 0 && maxInOneCC >= t.MinOrgsInOneCountry {
		return true
	}
	if t.MinCountries > 0 && countries >= t.MinCountries {
		return true
	}
	if t.MinCountryShare > 0 && federation > 0 &&
		countries >= int(math.Ceil(t.MinCountryShare*float64(federation))) {
		return true
	}
	return false
}

// DefaultTiers returns the default tiers: national (2 organisations in
// one country, which one source may vouch for in its own country),
// regional (3 countries, vouched for by 2 independent sources) and global
// (10 countries, or half of the federation's countries, vouched for by 3
// independent sources).
func DefaultTiers() []Tier {
	return []Tier{
		{Name: "national", MinOrgsInOneCountry: 2, MinSources: 1},
		{Name: "regional", MinCountries: 3, MinSources: 2},
		{Name: "global", MinCountries: 10, MinCountryShare: 0.5, MinSources: 3},
	}
}

// Describe says in words what meets the tier, for an alert's evidence:
// "3 countries, 2 independent sources".
func (t Tier) Describe() string {
	var parts []string
	if t.MinOrgsInOneCountry > 0 {
		parts = append(parts, fmt.Sprintf("%d organisations in one country", t.MinOrgsInOneCountry))
	}
	if t.MinCountries > 0 {
		parts = append(parts, fmt.Sprintf("%d countries", t.MinCountries))
	}
	if t.MinCountryShare > 0 {
		parts = append(parts, fmt.Sprintf("%.0f%% of the federation's countries", 100*t.MinCountryShare))
	}
	s := strings.Join(parts, " or ")
	if t.MinSources > 0 {
		s += fmt.Sprintf(", vouched for by %g independent source(s)", t.MinSources)
	}
	return s
}

// SourceInfo is what correlation knows of a source: an origin node that
// vouches for sightings (a partner, or the node itself).
type SourceInfo struct {
	// Home is the source's country (ISO 3166-1 alpha-2): a source may
	// vouch for any number of organisations in its home country, but for
	// at most one unit of presence in any other, so that it cannot by
	// itself raise another country's national tier. "" is home nowhere.
	Home string
	// Weight is how much the source counts towards a tier's MinSources
	// (1 by default; 0 counts nothing).
	Weight float64
	// Quota is how many sightings the source may add per window; past it
	// they are refused (ReasonQuota). 0 is no quota.
	Quota int
	// Quarantined sources add nothing (ReasonQuarantined).
	Quarantined bool
}

// Config configures an [Engine]. Zero fields take the defaults documented
// on each.
type Config struct {
	// Window is the sliding window within which sightings are counted
	// together. Default 24 hours.
	Window time.Duration
	// Slots is the window's resolution: the window slides by
	// Window/Slots. Between 1 and 12; default 8.
	Slots int
	// Tiers lists the alert tiers from the lowest to the highest. Default
	// [DefaultTiers].
	Tiers []Tier
	// MaxSkew is how far in the future a sighting's last_seen may be
	// (reporters' clocks differ). Default 5 minutes.
	MaxSkew time.Duration
	// MaxAge is how far in the past a sighting's last_seen may be; older
	// sightings are refused, and earlier parts of an interval are ignored.
	// Default one Window.
	MaxAge time.Duration
	// FederationCountries is the number of countries in the federation,
	// for tiers with a MinCountryShare; 0 when unknown.
	FederationCountries int
	// KnownOrg reports whether an organisation is a known partner (or the
	// node itself); sightings from others are refused. Nil accepts all.
	KnownOrg func(org string) bool
	// DefaultWeight and DefaultQuota apply to sources the engine has no
	// [SourceInfo] for (see [Engine.SetSource]): weight 1 and no quota
	// when zero.
	DefaultWeight float64
	DefaultQuota  int
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = 24 * time.Hour
	}
	if c.Slots == 0 {
		c.Slots = 8
	}
	if c.Tiers == nil {
		c.Tiers = DefaultTiers()
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = 5 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = c.Window
	}
	if c.DefaultWeight == 0 {
		c.DefaultWeight = 1
	}
	return c
}

// Validate reports the first problem with c (after defaults) as an
// *entente.Error with code EINVALID.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return entente.Errorf(entente.EINVALID, "correlation config: "+format, args...)
	}
	if c.Window <= 0 {
		return bad("window %s must be positive", c.Window)
	}
	if c.Slots < 1 || c.Slots > 12 {
		return bad("slots %d must be between 1 and 12", c.Slots)
	}
	if c.Window%time.Duration(c.Slots) != 0 || c.Window/time.Duration(c.Slots) < time.Second {
		return bad("window %s must split into %d slots of at least one second", c.Window, c.Slots)
	}
	if c.MaxSkew < 0 || c.MaxAge < 0 {
		return bad("max skew %s and max age %s must not be negative", c.MaxSkew, c.MaxAge)
	}
	slot := int64(c.Window) / int64(c.Slots)
	need := ceilDiv(int64(c.MaxAge), slot) + ceilDiv(int64(c.MaxSkew), slot) + 3*int64(c.Slots) + 2
	if need > ringSlots {
		return bad("max age %s plus max skew %s need %d slots of %s with a window of %d slots; at most %d fit",
			c.MaxAge, c.MaxSkew, need, time.Duration(slot), c.Slots, ringSlots)
	}
	if len(c.Tiers) == 0 {
		return bad("no tiers")
	}
	seen := map[string]bool{}
	for i, t := range c.Tiers {
		if t.Name == "" {
			return bad("tier %d has no name", i+1)
		}
		if seen[t.Name] {
			return bad("tier %q is defined twice", t.Name)
		}
		seen[t.Name] = true
		if t.MinOrgsInOneCountry < 0 || t.MinCountries < 0 || t.MinCountryShare < 0 || t.MinCountryShare > 1 || t.MinSources < 0 {
			return bad("tier %q: thresholds must not be negative and the country share must be at most 1", t.Name)
		}
		if t.MinOrgsInOneCountry == 0 && t.MinCountries == 0 && t.MinCountryShare == 0 {
			return bad("tier %q has no threshold", t.Name)
		}
	}
	if c.FederationCountries < 0 {
		return bad("federation countries %d must not be negative", c.FederationCountries)
	}
	if c.DefaultWeight < 0 || c.DefaultQuota < 0 {
		return bad("default weight %g and default quota %d must not be negative", c.DefaultWeight, c.DefaultQuota)
	}
	return nil
}

// String describes the configuration briefly, for logs.
func (c Config) String() string {
	return fmt.Sprintf("window=%s slots=%d tiers=%d max_skew=%s max_age=%s", c.Window, c.Slots, len(c.Tiers), c.MaxSkew, c.MaxAge)
}

// TierRank returns the 1-based rank of the tier named name in c (with
// defaults), as alerts carry it in TierRank, or 0 for a tier c does not
// define.
func (c Config) TierRank(name string) int {
	for i, t := range c.withDefaults().Tiers {
		if t.Name == name {
			return i + 1
		}
	}
	return 0
}

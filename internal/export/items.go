package export

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/entente-cti/entente/internal/observable"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// indicatorJSON is the part of an indicator FromIndicator reads.
type indicatorJSON struct {
	Type         string   `json:"type"`
	ID           string   `json:"id"`
	Pattern      string   `json:"pattern"`
	PatternType  string   `json:"pattern_type"`
	ValidFrom    string   `json:"valid_from"`
	ValidUntil   string   `json:"valid_until"`
	Modified     string   `json:"modified"`
	Revoked      bool     `json:"revoked"`
	Confidence   int      `json:"confidence"`
	Labels       []string `json:"labels"`
	MarkingRefs  []string `json:"object_marking_refs"`
	Warninglists []string `json:"x_entente_warninglists"`
	Country      string   `json:"x_entente_country"`
	ExternalRefs []struct {
		SourceName string `json:"source_name"`
	} `json:"external_references"`
}

// Locator gives the country of an address (geo.Table and geo.MMDB are
// Locators).
type Locator interface {
	Lookup(addr netip.Addr) (cc string, ok bool)
}

// FromIndicator returns the items of a STIX indicator whose pattern is a
// disjunction of equality comparisons on observables that exports know
// (addresses, networks, domains, URLs, e-mail addresses, file hashes).
// Other indicators give no items and no error; a malformed one gives an
// error naming it. geo, when not nil, locates IP items that carry no
// country.
func FromIndicator(raw json.RawMessage, collection string, geo Locator) ([]Item, error) {
	var in indicatorJSON
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("indicator: %w", err)
	}
	if in.Type != "indicator" {
		return nil, fmt.Errorf("object %s is a %s, not an indicator", in.ID, in.Type)
	}
	if in.PatternType != "" && in.PatternType != "stix" {
		return nil, nil
	}
	p, err := pattern.Parse(in.Pattern)
	if err != nil {
		return nil, fmt.Errorf("indicator %s: pattern: %w", in.ID, err)
	}
	cs, ok := p.Disjunction()
	if !ok {
		return nil, nil
	}
	base := Item{IndicatorID: in.ID, Confidence: in.Confidence, Labels: in.Labels, Collection: collection,
		Country: in.Country, Warning: in.Warninglists, Revoked: in.Revoked}
	for _, r := range in.ExternalRefs {
		if r.SourceName != "" {
			base.Sources = append(base.Sources, r.SourceName)
		}
	}
	for _, m := range in.MarkingRefs {
		if t, ok := stix.TLPFromMarking(m); ok && t > base.TLP {
			base.TLP = t
		}
	}
	parse := func(prop, s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		t, err := stix.ParseTimestamp(s)
		if err != nil {
			return t, fmt.Errorf("indicator %s: %s: %w", in.ID, prop, err)
		}
		return t, nil
	}
	if base.ValidFrom, err = parse("valid_from", in.ValidFrom); err != nil {
		return nil, err
	}
	if base.ValidUntil, err = parse("valid_until", in.ValidUntil); err != nil {
		return nil, err
	}
	if base.Modified, err = parse("modified", in.Modified); err != nil {
		return nil, err
	}
	var items []Item
	for _, c := range cs {
		k, ok := observable.FromComparison(c.ObjectType, c.Path)
		if !ok {
			continue
		}
		for _, v := range c.Values {
			nk, n, err := observable.NormalizeKind(k, v)
			if err != nil {
				continue
			}
			it := base
			it.Kind, it.Value = nk, n
			if it.Country == "" && geo != nil && isIP(nk) {
				if p, ok := prefixOf(n); ok {
					if cc, ok := geo.Lookup(p.Addr()); ok {
						it.Country = cc
					}
				}
			}
			items = append(items, it)
		}
	}
	return items, nil
}

// CountryItems returns items for a country blocklist: one CIDR item per
// prefix (from geo.Locator.CountryPrefixes), sourced "country:<cc>".
func CountryItems(cc string, prefixes []netip.Prefix) []Item {
	items := make([]Item, 0, len(prefixes))
	for _, p := range prefixes {
		k := observable.CIDR4
		if p.Addr().Is6() {
			k = observable.CIDR6
		}
		items = append(items, Item{Kind: k, Value: p.Masked().String(), Country: cc, Sources: []string{"country:" + cc}})
	}
	return items
}

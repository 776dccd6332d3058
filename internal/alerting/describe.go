package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/stix/pattern"
)

// Suppression is one rule of the safety net that kept sightings of an
// alert's threat out of correlation.
type Suppression struct {
	Rule      string `json:"rule"`
	Sightings int    `json:"sightings"`
}

// maxValues bounds the observable values an alert lists.
const maxValues = 20

// describe fills what people read in alerts: the threat's name and
// type, the observable values sighted, the tier's rule, each source's
// evidence and what the safety net suppressed. It reads the node's own
// objects (the callers are analysts and admins) and the engine. The
// caller does not hold s.mu.
func (s *Service) describe(ctx context.Context, infos []AlertInfo) error {
	if len(infos) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startAlerts(ctx, nil); err != nil {
		return err
	}
	return s.describeLocked(ctx, infos)
}

// describeLocked is describe for a caller that holds s.mu, the engine
// started.
func (s *Service) describeLocked(ctx context.Context, infos []AlertInfo) error {
	// What the engine knows of each alert: the objects sighted.
	sighted := make([][]string, len(infos))
	want := map[string]bool{}
	for i := range infos {
		a := &infos[i]
		want[a.Threat] = true
		sighted[i] = s.engine.Sighted(a.ID)
		if sighted[i] == nil {
			// An alert the engine does not hold (received, or past its
			// window): the threat itself, or what indicates it.
			if strings.HasPrefix(a.Threat, "indicator--") {
				sighted[i] = []string{a.Threat}
			} else {
				for _, e := range s.refs.Of(a.Threat) {
					if e.Type == "indicates" && !e.Outgoing && strings.HasPrefix(e.Other, "indicator--") {
						sighted[i] = append(sighted[i], e.Other)
					}
				}
			}
		}
		if len(sighted[i]) > maxValues {
			sighted[i] = sighted[i][:maxValues]
		}
		for _, id := range sighted[i] {
			want[id] = true
		}
	}
	objs, err := s.lookup(ctx, slices.Collect(mapKeys(want)))
	if err != nil {
		return err
	}
	cfg := s.engine.Config()
	for i := range infos {
		a := &infos[i]
		a.ThreatName, a.ThreatType = nameOf(objs[a.Threat])
		if a.ThreatType == "" {
			a.ThreatType = strings.SplitN(a.Threat, "--", 2)[0]
		}
		a.Values = []string{}
		for _, id := range sighted[i] {
			for _, v := range valuesOf(objs[id]) {
				if !slices.Contains(a.Values, v) && len(a.Values) < maxValues {
					a.Values = append(a.Values, v)
				}
			}
		}
		if r := cfg.TierRank(a.Tier); r > 0 {
			a.Rule = cfg.Tiers[r-1].Describe()
		}
		if a.Evidence = s.engine.Evidence(a.ID); a.Evidence == nil {
			a.Evidence = []correlate.SourceEvidence{}
		}
		if a.Sources == 0 {
			a.Sources = len(a.Evidence)
		}
		for rule, n := range s.suppressed[correlate.ThreatKey(a.Threat)] {
			a.Suppressed = append(a.Suppressed, Suppression{Rule: rule, Sightings: n})
		}
		slices.SortFunc(a.Suppressed, func(x, y Suppression) int { return strings.Compare(x.Rule, y.Rule) })
	}
	return nil
}

// nameOf returns a STIX object's name and type ("" when it has none).
func nameOf(raw json.RawMessage) (name, typ string) {
	if raw == nil {
		return "", ""
	}
	var o struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
		Pattern string   `json:"pattern"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return "", ""
	}
	name = o.Name
	if name == "" && o.Type == "indicator" {
		name = o.Pattern
	}
	return name, o.Type
}

// valuesOf returns the observable values an indicator's STIX pattern
// names ("kind value": "ipv4 198.51.100.7").
func valuesOf(raw json.RawMessage) []string {
	if raw == nil {
		return nil
	}
	var ind struct {
		Type        string `json:"type"`
		Pattern     string `json:"pattern"`
		PatternType string `json:"pattern_type"`
	}
	if json.Unmarshal(raw, &ind) != nil || ind.Type != "indicator" || (ind.PatternType != "" && ind.PatternType != "stix") {
		return nil
	}
	p, err := pattern.Parse(ind.Pattern)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range safety.PatternValues(p) {
		out = append(out, fmt.Sprintf("%s %s", v.Kind, v.Value))
	}
	return out
}

// infoOf is what the node shows of an alert the engine reported, before
// describeLocked fills in what people read.
func infoOf(al correlate.Alert, status correlate.Status) AlertInfo {
	return AlertInfo{ID: al.ID, Threat: string(al.Threat), Tier: al.Tier, Status: status, Organisations: al.Organisations,
		Countries: al.Countries, FirstSeen: al.FirstSeen, LastSeen: al.LastSeen, Sources: al.SourceCount,
		Withdrawn: al.Withdrawn || status == correlate.StatusWithdrawn, Values: []string{}, Evidence: []correlate.SourceEvidence{}}
}

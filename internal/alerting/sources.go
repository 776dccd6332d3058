package alerting

import (
	"context"
	"fmt"
	"strings"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/retraction"
)

// Retraction is a retraction the node honours, as correlation applies
// it: the objects it names (indicators, sightings…) and what honouring
// it does (see retraction.Decide).
type Retraction struct {
	Refs   []string
	Effect retraction.Effect
}

// anySource is the key of retracted that stands for every source.
const anySource = "*"

// sourceOf returns the source that vouches for a sighting: the origin it
// was received from (provenance), or the node itself for its own.
func sourceOf(self string, origins map[string]string, id string) string {
	if o := origins[id]; o != "" {
		return o
	}
	return self
}

// sourceInfo returns what correlation knows of source id: the node
// itself, a partner (its country, trust weight and quota, quarantine),
// or an origin the node does not know as a partner (no home; defaults).
func (s *Service) sourceInfo(ctx context.Context, self Self, id string) (correlate.SourceInfo, error) {
	cfg := s.engine.Config()
	info := correlate.SourceInfo{Weight: cfg.DefaultWeight, Quota: cfg.DefaultQuota}
	if id == self.ID {
		// The node's own sensors and analysts: no quota.
		info.Home, info.Quota = self.Country, 0
		return info, nil
	}
	if s.cfg.Party == nil {
		return info, nil
	}
	p, err := s.cfg.Party(ctx, id)
	switch {
	case entente.ErrorCode(err) == entente.ENOTFOUND:
		return info, nil
	case err != nil:
		return info, fmt.Errorf("read partner %s: %w", id, err)
	}
	info.Home = strings.ToUpper(p.Country)
	if p.Trust.Weight != nil {
		info.Weight = *p.Trust.Weight
	}
	if p.Trust.Quota != nil {
		info.Quota = *p.Trust.Quota
	}
	info.Quarantined = p.Trust.Quarantined
	return info, nil
}

// knowSource tells the engine about source id the first time it is seen.
// The caller holds s.mu.
func (s *Service) knowSource(ctx context.Context, self Self, id string) error {
	if s.sourcesKnown[id] {
		return nil
	}
	info, err := s.sourceInfo(ctx, self, id)
	if err != nil {
		return err
	}
	s.engine.SetSource(id, info)
	s.sourcesKnown[id] = true
	return nil
}

// SourceChanged re-reads what the node knows of partner id (its trust
// weight, quota, quarantine) and recomputes the alerts: a quarantined
// partner's contributions are removed, and the alerts they raised or
// escalated are withdrawn or lowered; a changed weight reassesses every
// alert. A partner released from quarantine has its stored sightings
// correlated again (the engine restarts from the store, without
// notifying). The changes are stored, audited and notified.
func (s *Service) SourceChanged(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.engine == nil {
		// Not started: it will read the partner when it does.
		return nil
	}
	self, err := s.cfg.Self(ctx)
	if err != nil {
		return err
	}
	info, err := s.sourceInfo(ctx, self, id)
	if err != nil {
		return err
	}
	wasQuarantined := s.quarantined[id]
	s.engine.SetSource(id, info)
	s.sourcesKnown[id] = true
	s.quarantined[id] = info.Quarantined
	var changes []correlate.Alert
	switch {
	case info.Quarantined:
		changes = s.engine.Remove(func(source, _, _ string) bool { return source == id })
	case wasQuarantined:
		// What it sent while quarantined was refused: correlate it all
		// again from the store.
		s.engine = nil
		return s.startAlerts(ctx, nil)
	default:
		changes = s.engine.Reassess()
	}
	now := s.now()
	return s.applyAlerts(ctx, self, changes, now)
}

// Retract applies retractions the node honours to correlation: what
// they name stops counting (every source's, or only the retracting
// partner's, see retraction.Decide), now and when it is sighted again;
// the alerts it supported are withdrawn or lowered, stored, audited and
// notified. It returns the alerts that changed.
func (s *Service) Retract(ctx context.Context, rs []Retraction) ([]correlate.Alert, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.engine == nil {
		// Starting reads every stored retraction, these included.
		return nil, s.startAlerts(ctx, nil)
	}
	self, err := s.cfg.Self(ctx)
	if err != nil {
		return nil, err
	}
	changes, err := s.retractLocked(ctx, rs)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.applyAlerts(ctx, self, changes, now); err != nil {
		return nil, err
	}
	return changes, nil
}

// retractLocked records rs and removes what they name from the engine.
// The caller holds s.mu.
func (s *Service) retractLocked(ctx context.Context, rs []Retraction) ([]correlate.Alert, error) {
	// A retracted sighting is removed by what it counted: its
	// organisations' presence on the object it sighted.
	type triple struct{ org, object string }
	bySource := map[string]map[triple]bool{} // source (or anySource) → sightings' triples
	objects := map[string]map[string]bool{}  // object → sources (or anySource)
	var sightings []string
	for _, r := range rs {
		src := r.Effect.Source
		if r.Effect.AnySource {
			src = anySource
		}
		for _, id := range r.Refs {
			mark(s.retracted, id, src)
			if strings.HasPrefix(id, "sighting--") {
				sightings = append(sightings, id)
				continue
			}
			mark(objects, id, src)
		}
	}
	if len(sightings) > 0 {
		raws, err := s.lookup(ctx, sightings)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			src := r.Effect.Source
			if r.Effect.AnySource {
				src = anySource
			}
			for _, id := range r.Refs {
				raw, ok := raws[id]
				if !ok {
					continue
				}
				sg, err := correlate.ParseSighting(raw)
				if err != nil {
					continue
				}
				orgs := sg.WhereSightedRefs
				if len(orgs) == 0 || allLocations(orgs) {
					orgs = []string{sg.CreatedByRef}
				}
				if bySource[src] == nil {
					bySource[src] = map[triple]bool{}
				}
				for _, o := range orgs {
					bySource[src][triple{o, sg.SightingOfRef}] = true
				}
			}
		}
	}
	return s.engine.Remove(func(source, org, object string) bool {
		if srcs := objects[object]; srcs[anySource] || srcs[source] {
			return true
		}
		t := triple{org, object}
		return bySource[anySource][t] || bySource[source][t]
	}), nil
}

// mark adds src to m[id].
func mark(m map[string]map[string]bool, id, src string) {
	if m[id] == nil {
		m[id] = map[string]bool{}
	}
	m[id][src] = true
}

// isRetracted reports whether a sighting (by id, of object of, vouched
// for by source) was retracted, itself or what it sighted.
func (s *Service) isRetracted(id, of, source string) bool {
	for _, k := range [2]string{id, of} {
		if m := s.retracted[k]; m[anySource] || m[source] {
			return true
		}
	}
	return false
}

// loadRetractions reads the retractions the node honours into
// s.retracted, before stored sightings are replayed. The caller holds
// s.mu.
func (s *Service) loadRetractions(ctx context.Context) error {
	s.retracted = map[string]map[string]bool{}
	if s.cfg.Retractions == nil {
		return nil
	}
	rs, err := s.cfg.Retractions(ctx)
	if err != nil {
		return fmt.Errorf("read retractions: %w", err)
	}
	for _, r := range rs {
		src := r.Effect.Source
		if r.Effect.AnySource {
			src = anySource
		}
		for _, id := range r.Refs {
			mark(s.retracted, id, src)
		}
	}
	return nil
}

// loadQuarantine reads which partners are quarantined (their sightings
// are refused from the start). The caller holds s.mu.
func (s *Service) loadQuarantine(ctx context.Context, self Self) error {
	s.quarantined = map[string]bool{}
	s.sourcesKnown = map[string]bool{}
	if s.cfg.Parties == nil {
		return nil
	}
	parties, err := s.cfg.Parties(ctx)
	if err != nil {
		return fmt.Errorf("read partners: %w", err)
	}
	for _, p := range parties {
		if p.Trust.Quarantined {
			s.quarantined[p.ID] = true
		}
		if err := s.knowSource(ctx, self, p.ID); err != nil {
			return err
		}
	}
	return nil
}

// allLocations reports whether refs are all locations (a sighting a
// partner's gate reduced to its victims' countries).
func allLocations(refs []string) bool {
	for _, r := range refs {
		if !strings.HasPrefix(r, "location--") {
			return false
		}
	}
	return len(refs) > 0
}

// Restart correlates every stored sighting again, from the store (when
// something that withheld sightings was lifted: a retraction revoked).
// Alerts it raises again are recorded in their lifecycles, not notified.
func (s *Service) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.engine == nil {
		return nil
	}
	s.engine = nil
	return s.startAlerts(ctx, nil)
}

package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/policy"
)

// AlertInfo is an alert as the node shows it: the STIX alert object (as
// shared), its lifecycle on this node and its contributing counts.
type AlertInfo struct {
	ID            string                 `json:"id"`
	Threat        string                 `json:"threat"`
	Tier          string                 `json:"tier"`
	Status        correlate.Status       `json:"status"`
	Organisations int                    `json:"organisations"`
	Countries     []string               `json:"countries"`
	FirstSeen     time.Time              `json:"first_seen"`
	LastSeen      time.Time              `json:"last_seen"`
	Updated       time.Time              `json:"updated"`
	History       []correlate.Transition `json:"history,omitempty"`
	// ThreatName and ThreatType name the threat: the malware, intrusion
	// set or campaign the sightings indicate, or the indicator itself.
	ThreatName string `json:"threat_name,omitempty"`
	ThreatType string `json:"threat_type,omitempty"`
	// Values are the observable values sighted ("ipv4 198.51.100.7").
	Values []string `json:"values"`
	// Sources is the number of independent sources (origin nodes) that
	// vouched for the sightings; Evidence what each vouched for (as this
	// node's correlation holds it now; empty for an alert it only
	// received).
	Sources  int                        `json:"sources"`
	Evidence []correlate.SourceEvidence `json:"evidence"`
	// Rule says what meets the alert's tier, as configured.
	Rule string `json:"rule,omitempty"`
	// Withdrawn is set when nothing supports the alert any more.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Suppressed are the safety net's rules that kept sightings of the
	// threat out of correlation, with how many.
	Suppressed []Suppression `json:"suppressed,omitempty"`
	// Object is the latest version of the STIX alert object.
	Object json.RawMessage `json:"object,omitempty"`
}

// AlertFilter selects alerts in ListAlerts. Zero fields do not restrict.
type AlertFilter struct {
	Status correlate.Status
	Tier   string
}

// AlertEvent is one change of an alert, as notified to webhooks and
// syslog: what changed, the alert and its status on this node.
type AlertEvent struct {
	Change correlate.Change `json:"change"`
	Alert  correlate.Alert  `json:"-"`
	Status correlate.Status `json:"status"`
	// Object is the alert object as released by the policy gate.
	Object json.RawMessage `json:"alert"`
	// Info is the alert as the node's own people read it (the threat,
	// its values, the evidence, what was suppressed). It is the node's
	// own view: never sent to partners, who receive Object as the gate
	// releases it to them.
	Info *AlertInfo `json:"info,omitempty"`
	// Collection is the collection (id) that holds the alert object.
	Collection string `json:"-"`
}

// AlertStats counts what correlation did with the sightings the node
// received.
type AlertStats = correlate.Stats

// Configure configures correlation before first use (from serve).
// Without it, correlation runs with the default configuration. EINVALID
// if cfg is invalid.
func (s *Service) Configure(cfg correlate.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.engine != nil {
		return entente.Errorf(entente.ECONFLICT, "correlation is already running")
	}
	s.ccfg, s.enabled = cfg, true
	return nil
}

// Stats returns the correlation counters (analyst or admin):
// accepted, duplicate and rejected sightings (by reason) since the node
// started, the replay of stored sightings included, and the threats
// tracked.
func (s *Service) Stats(ctx context.Context, p entente.Principal) (AlertStats, error) {
	if err := requireAnalyst(p, "reading alert statistics"); err != nil {
		return AlertStats{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startAlerts(ctx, nil); err != nil {
		return AlertStats{}, err
	}
	return s.engine.Stats(), nil
}

// alertStore returns where alert lifecycles are kept.
func (s *Service) alertStore() (States, error) {
	if s.cfg.States == nil {
		return nil, fmt.Errorf("this node keeps no alert lifecycles")
	}
	return s.cfg.States, nil
}

// startAlerts creates the engine on first use and replays the stored
// sightings into it (without notifying: they were notified when they
// arrived), except those of skip (the batch being correlated, which is
// then correlated as new). The caller holds s.mu.
func (s *Service) startAlerts(ctx context.Context, skip map[string]bool) error {
	a := s
	if a.engine != nil {
		return nil
	}
	cfg := a.ccfg
	cfg.KnownOrg = func(org string) bool {
		a.orgMu.Lock()
		defer a.orgMu.Unlock()
		_, ok := a.countries[org]
		return ok
	}
	e, err := correlate.New(cfg)
	if err != nil {
		return fmt.Errorf("start correlation: %w", err)
	}
	a.engine, a.resolver = e, correlate.NewThreatResolver()
	a.relAfter, a.sightAfter, a.located = map[string]time.Time{}, map[string]time.Time{}, map[string][]string{}
	a.relLast, a.relSeen, a.looked = map[string]map[string]bool{}, map[string]time.Time{}, map[string]*lookedUp{}
	a.orgMu.Lock()
	a.countries = map[string]string{}
	a.orgMu.Unlock()
	a.suppressed = map[correlate.ThreatKey]map[string]int{}
	self, err := s.cfg.Self(ctx)
	if err != nil {
		a.engine = nil
		return err
	}
	// Who is quarantined and what was retracted are known before the
	// stored sightings are replayed, so neither counts.
	if err := s.loadQuarantine(ctx, self); err != nil {
		a.engine = nil
		return err
	}
	if err := s.loadRetractions(ctx); err != nil {
		a.engine = nil
		return err
	}
	s.log.InfoContext(ctx, "correlation started", "config", e.Config().String())
	a.replaying = true
	defer func() { a.replaying = false }()
	if err := s.scanSightingsLocked(ctx, skip); err != nil {
		return fmt.Errorf("replay sightings: %w", err)
	}
	return nil
}

// scanSightingsLocked correlates the sightings stored in any collection
// since the last scan (all of them the first time), except those of
// skip: sightings that reached the node by a path other than
// AddSightings (TAXII clients, partners' pushes, peer pulls). The caller
// holds s.mu.
func (s *Service) scanSightingsLocked(ctx context.Context, skip map[string]bool) error {
	a := s
	colls, err := s.cfg.Objects.Collections(ctx)
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, c := range colls {
		q := entente.ObjectQuery{Collection: c.ID, Types: []string{"sighting"}, Limit: 1000}
		if after, ok := a.sightAfter[c.ID]; ok {
			// date_added may repeat: re-read the last instant (a sighting
			// seen twice is a duplicate, which changes nothing).
			q.AddedAfter = after.Add(-time.Nanosecond)
		}
		for {
			page, err := s.cfg.Objects.QueryObjects(ctx, q)
			if err != nil {
				return fmt.Errorf("read sightings of collection %s: %w", c.ID, err)
			}
			raws := make([]json.RawMessage, 0, len(page.Entries))
			for _, e := range page.Entries {
				if e.DateAdded.After(a.sightAfter[c.ID]) {
					a.sightAfter[c.ID] = e.DateAdded
				}
				if !skip[e.ID] {
					raws = append(raws, e.Raw)
				}
			}
			if err := s.correlateLocked(ctx, c.ID, raws); err != nil {
				return err
			}
			if !page.More {
				break
			}
			q.Next = page.Next
		}
	}
	return nil
}

// Run keeps correlation current until ctx ends: every interval it
// correlates the sightings stored by paths other than AddSightings (see
// scanSightingsLocked) and forgets what no sighting can change any more
// (correlate.Engine.Sweep), so that memory follows the active threats.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		// What lookup remembers does not outlive a scan: a deletion made
		// by another replica sharing the store is not told here.
		s.looked = nil
		err := s.startAlerts(ctx, nil)
		if err == nil {
			err = s.scanSightingsLocked(ctx, nil)
		}
		if err == nil {
			if n := s.engine.Sweep(s.now()); n > 0 {
				s.log.DebugContext(ctx, "correlation swept", "threats", n)
			}
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "correlation scan failed", "err", err)
		}
	}
}

// correlate feeds the sightings among objects (just stored in collection,
// an id; "" for the node's own sensors' sightings) to the engine, and
// stores and notifies the alerts they change. A refused sighting is
// counted in the engine's stats and logged; it is not an error (it was
// stored as any object is).
func (s *Service) correlate(ctx context.Context, collection string, objects []json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.engine == nil {
		skip := map[string]bool{}
		for _, raw := range objects {
			var head struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(raw, &head) == nil {
				skip[head.ID] = true
			}
		}
		if err := s.startAlerts(ctx, skip); err != nil {
			return err
		}
	}
	return s.correlateLocked(ctx, collection, objects)
}

// Correlate correlates sightings received in a collection named by id or
// alias (see correlate).
func (s *Service) Correlate(ctx context.Context, collection string, objects []json.RawMessage) error {
	c, err := s.cfg.Collection(ctx, collection)
	if err != nil {
		return err
	}
	return s.correlate(ctx, c.ID, objects)
}

func (s *Service) correlateLocked(ctx context.Context, collection string, objects []json.RawMessage) error {
	a := s
	// Each collection's latest addition is read once for the pass: what
	// the pass adds itself (alerts) comes after its reads.
	s.passLatest = map[string]time.Time{}
	defer func() { s.passLatest = nil }()
	var sightings []correlate.STIXSighting
	refs := map[string]bool{}
	for _, raw := range objects {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &head) != nil || head.Type != "sighting" {
			continue
		}
		sg, err := correlate.ParseSighting(raw)
		if err != nil {
			s.log.DebugContext(ctx, "sighting not correlated", "err", err)
			continue
		}
		s.refs.sightingOf(sg.ID, sg.SightingOfRef) // object pages (search.go)
		sightings = append(sightings, sg)
		refs[sg.SightingOfRef] = true
	}
	if len(sightings) == 0 {
		return nil
	}
	if err := s.refreshRelationships(ctx); err != nil {
		return err
	}
	sighted, err := s.lookup(ctx, slices.Collect(mapKeys(refs)))
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(sighted))
	for id := range sighted {
		known[id] = true
	}
	// The safety net: a sighting of what the node must never act on
	// (special-purpose space, its constituency, warninglisted or
	// allowlisted values) neither raises nor escalates an alert.
	var protected map[string]string
	if s.cfg.Protected != nil {
		for id, raw := range sighted {
			if ok, rule := s.cfg.Protected(raw); ok {
				if protected == nil {
					protected = map[string]string{}
				}
				protected[id] = rule
			}
		}
	}
	self, err := s.cfg.Self(ctx)
	if err != nil {
		return err
	}
	// The source of each sighting is the origin that vouches for it:
	// the partner it was received from (provenance), or the node itself.
	var origins map[string]string
	if collection != "" {
		ids := make([]string, len(sightings))
		for i, sg := range sightings {
			ids[i] = sg.ID
		}
		if origins, err = s.cfg.Origins(ctx, collection, ids); err != nil {
			return fmt.Errorf("read provenance of sightings: %w", err)
		}
	}
	if err := s.pseudonymous(ctx, self, origins, sightings); err != nil {
		return err
	}
	now := s.now()
	var changes []correlate.Alert
	for _, sg := range sightings {
		if rule, ok := protected[sg.SightingOfRef]; ok {
			s.log.DebugContext(ctx, "sighting of a protected value not correlated", "sighting", sg.ID, "of", sg.SightingOfRef, "rule", rule)
			threat := a.resolver.Resolve(sg.SightingOfRef, true)
			if s.suppressed[threat] == nil {
				s.suppressed[threat] = map[string]int{}
			}
			s.suppressed[threat][rule]++
			continue
		}
		src := sourceOf(self.ID, origins, sg.ID)
		if s.isRetracted(sg.ID, sg.SightingOfRef, src) {
			continue
		}
		if err := s.knowSource(ctx, self, src); err != nil {
			return err
		}
		orgs := sg.WhereSightedRefs
		if len(orgs) == 0 && sg.CreatedByRef != "" {
			orgs = []string{sg.CreatedByRef}
		}
		for _, org := range orgs {
			if err := s.learnCountry(ctx, self, org); err != nil {
				return err
			}
		}
		for _, one := range sg.Sightings(a.resolver, func(id string) bool { return known[id] }, s.countryOf) {
			if one.Country == "" {
				// An organisation the node does not know: a placeholder
				// country that passes the format check, so that the
				// engine refuses it as an unknown organisation.
				one.Country = "ZZ"
			}
			one.Source, one.Object = src, sg.SightingOfRef
			got, err := a.engine.Add(one, now)
			if err != nil {
				s.log.DebugContext(ctx, "sighting refused by correlation", "err", err)
				if re := (*correlate.RejectError)(nil); errors.As(err, &re) && re.Reason == correlate.ReasonPast {
					// Too old to raise an alert, but seen: the overview
					// shows it at its time (replayed historical logs).
					s.events.record(one, now)
				}
				continue
			}
			s.events.sighting(one, now, a.replaying) // live events (events.go)
			changes = append(changes, got...)
		}
	}
	return s.applyAlerts(ctx, self, changes, now)
}

// mapKeys yields the keys of m.
func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// refreshRelationships reads the relationships stored since the last
// refresh, in every collection, into the resolver ("indicates"), the
// located map ("located-at") and the reference index. What was added
// after the last instant read is read whole; that instant again by
// metadata only (the store may give a later addition the same
// date_added), and the relationships it holds that were not read are
// then read by id: an import stored in one instant is not read again at
// every refresh. A collection whose latest addition is the one seen at
// the last refresh (when the store says, see latestAdder) holds nothing
// new and is not read: a correlation pass of a few sightings (each push a
// partner makes) no longer queries every collection twice.
func (s *Service) refreshRelationships(ctx context.Context) error {
	a := s
	colls, err := s.cfg.Objects.Collections(ctx)
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	la, _ := s.cfg.Objects.(latestAdder)
	for _, c := range colls {
		var latest time.Time
		if la != nil {
			// Read before the relationships: an addition made meanwhile
			// changes it, and the next refresh reads the collection.
			if latest, err = s.latestAdded(ctx, la, c.ID); err != nil {
				return err
			}
			if seen, ok := a.relSeen[c.ID]; ok && seen.Equal(latest) {
				continue
			}
		}
		if err := s.refreshCollectionRelationships(ctx, c); err != nil {
			return err
		}
		if la != nil {
			a.relSeen[c.ID] = latest
		}
	}
	return nil
}

// refreshCollectionRelationships reads the relationships of collection c
// stored since the last refresh (see refreshRelationships).
func (s *Service) refreshCollectionRelationships(ctx context.Context, c entente.Collection) error {
	a := s
	after := a.relAfter[c.ID]
	var late []string
	if !after.IsZero() {
		q := entente.ObjectQuery{Collection: c.ID, Types: []string{"relationship"}, AddedAfter: after.Add(-time.Nanosecond), MetadataOnly: true, Limit: 5000}
		for done := false; !done; {
			page, err := s.cfg.Objects.QueryObjects(ctx, q)
			if err != nil {
				return fmt.Errorf("read relationships of collection %s: %w", c.ID, err)
			}
			for _, e := range page.Entries {
				if !e.DateAdded.Equal(after) {
					done = true
					break
				}
				if !a.relLast[c.ID][relKey(e)] {
					late = append(late, e.ID)
				}
			}
			if !page.More {
				break
			}
			q.Next = page.Next
		}
	}
	read := func(q entente.ObjectQuery) error {
		for {
			page, err := s.cfg.Objects.QueryObjects(ctx, q)
			if err != nil {
				return fmt.Errorf("read relationships of collection %s: %w", c.ID, err)
			}
			for _, e := range page.Entries {
				a.relationshipRead(c.ID, e)
			}
			if !page.More {
				return nil
			}
			q.Next = page.Next
		}
	}
	for len(late) > 0 {
		n := min(len(late), 500)
		if err := read(entente.ObjectQuery{Collection: c.ID, Types: []string{"relationship"}, IDs: late[:n], Limit: n + 1}); err != nil {
			return err
		}
		late = late[n:]
	}
	if err := read(entente.ObjectQuery{Collection: c.ID, Types: []string{"relationship"}, AddedAfter: after, Limit: 5000}); err != nil {
		return err
	}
	return nil
}

// relKey names a version of a relationship in relLast.
func relKey(e entente.ObjectEntry) string { return e.ID + "|" + e.Version.String() }

// relationshipRead takes one relationship read from collection into the
// resolver, the located map and the reference index, and moves relAfter
// and relLast on.
func (s *Service) relationshipRead(collection string, e entente.ObjectEntry) {
	a := s
	switch {
	case e.DateAdded.After(a.relAfter[collection]):
		a.relAfter[collection] = e.DateAdded
		a.relLast[collection] = map[string]bool{relKey(e): true}
	case e.DateAdded.Equal(a.relAfter[collection]):
		if a.relLast[collection] == nil {
			a.relLast[collection] = map[string]bool{}
		}
		a.relLast[collection][relKey(e)] = true
	}
	s.refs.relationship(e.ID, e.Raw) // object pages (search.go)
	if _, err := a.resolver.AddRelationship(e.Raw); err != nil {
		return
	}
	var rel struct {
		Type   string `json:"relationship_type"`
		Source string `json:"source_ref"`
		Target string `json:"target_ref"`
	}
	if json.Unmarshal(e.Raw, &rel) == nil && rel.Type == "located-at" &&
		strings.HasPrefix(rel.Target, "location--") && !slices.Contains(a.located[rel.Source], rel.Target) {
		a.located[rel.Source] = append(a.located[rel.Source], rel.Target)
	}
}

// lookup returns the latest stored version of each of ids found in any
// collection. The caller holds s.mu.
//
// What it found in a collection, and did not, is remembered while the
// collection's latest addition is unchanged (when the store says, see
// latestAdder): nothing was added there since, so neither a new object
// nor a new version. Each correlation pass looks up what its sightings
// sight, the countries of their locations and of their organisations,
// in every collection; only those that changed (the one the sightings
// arrived in) are read again.
func (s *Service) lookup(ctx context.Context, ids []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if len(ids) == 0 {
		return out, nil
	}
	colls, err := s.cfg.Objects.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	la, _ := s.cfg.Objects.(latestAdder)
	for _, c := range colls {
		want := ids
		var lc *lookedUp
		if la != nil {
			// Read before the objects: an addition made meanwhile
			// changes it, and the next lookup reads them again.
			latest, err := s.latestAdded(ctx, la, c.ID)
			if err != nil {
				return nil, err
			}
			if s.looked == nil {
				s.looked = map[string]*lookedUp{}
			}
			lc = s.looked[c.ID]
			if lc == nil || !lc.latest.Equal(latest) || len(lc.found)+len(lc.absent) > maxLookedUp {
				lc = &lookedUp{latest: latest, found: map[string]json.RawMessage{}, absent: map[string]bool{}}
				s.looked[c.ID] = lc
			}
			want = make([]string, 0, len(ids))
			for _, id := range ids {
				if raw, ok := lc.found[id]; ok {
					out[id] = raw
				} else if !lc.absent[id] {
					want = append(want, id)
				}
			}
			if len(want) == 0 {
				continue
			}
		}
		page, err := s.cfg.Objects.QueryObjects(ctx, entente.ObjectQuery{Collection: c.ID, IDs: want, Limit: len(want) + 1})
		if err != nil {
			return nil, fmt.Errorf("look up objects in collection %s: %w", c.ID, err)
		}
		for _, e := range page.Entries {
			out[e.ID] = e.Raw
			if lc != nil {
				lc.found[e.ID] = e.Raw
			}
		}
		if lc != nil {
			for _, id := range want {
				if _, ok := lc.found[id]; !ok {
					lc.absent[id] = true
				}
			}
		}
	}
	return out, nil
}

// Deleted is told that objects were deleted from collection (an id):
// lookup forgets what it found there.
func (s *Service) Deleted(collection string) {
	s.mu.Lock()
	delete(s.looked, collection)
	s.mu.Unlock()
}

// latestAdded is collection's latest addition, read once per
// correlation pass (the pass's refresh of relationships and its lookups
// ask for every collection). The caller holds s.mu.
func (s *Service) latestAdded(ctx context.Context, la latestAdder, collection string) (time.Time, error) {
	if t, ok := s.passLatest[collection]; ok {
		return t, nil
	}
	t, err := la.LatestAdded(ctx, collection)
	if err != nil {
		return time.Time{}, fmt.Errorf("latest addition to collection %s: %w", collection, err)
	}
	if s.passLatest != nil {
		s.passLatest[collection] = t
	}
	return t, nil
}

// lookedUp is what lookup found in one collection (and did not) when its
// latest addition was latest.
type lookedUp struct {
	latest time.Time
	found  map[string]json.RawMessage
	absent map[string]bool
}

// maxLookedUp bounds the ids lookup remembers per collection: past it,
// it starts again. A list of alerts looks up the threat and the sighted
// objects of each: 16,384 holds those of 10,000 alerts (a list of them
// described in 0.27 s, against 1.2-2 s when it started again at 8,192),
// a few MiB per collection.
const maxLookedUp = 1 << 14

// countryOf returns the country of an organisation the node knows, ""
// otherwise.
func (s *Service) countryOf(org string) string {
	s.orgMu.Lock()
	defer s.orgMu.Unlock()
	return s.countries[org]
}

// learnCountry finds the country of org, if not known yet: the node's
// own country, a partner's, or a stored identity's (its
// x_entente_country or x_country property, else the country of a
// location it is located at).
func (s *Service) learnCountry(ctx context.Context, self Self, org string) error {
	if s.countryOf(org) != "" {
		return nil
	}
	country := ""
	switch {
	case org == self.ID:
		country = self.Country
	default:
		if s.cfg.Party != nil {
			if p, err := s.cfg.Party(ctx, org); err == nil {
				country = p.Country
			} else if entente.ErrorCode(err) != entente.ENOTFOUND {
				return fmt.Errorf("read partner %s: %w", org, err)
			}
		}
	}
	if country == "" && strings.HasPrefix(org, "identity--") {
		ids := append([]string{org}, s.located[org]...)
		objs, err := s.lookup(ctx, ids)
		if err != nil {
			return err
		}
		if raw, ok := objs[org]; ok {
			var ident struct {
				Type    string `json:"type"`
				Entente string `json:"x_entente_country"`
				X       string `json:"x_country"`
			}
			if json.Unmarshal(raw, &ident) == nil && ident.Type == "identity" {
				country = cmpOr(ident.Entente, ident.X)
				for _, loc := range s.located[org] {
					if country != "" {
						break
					}
					var l struct {
						Country string `json:"country"`
					}
					if json.Unmarshal(objs[loc], &l) == nil {
						country = l.Country
					}
				}
			}
		}
	}
	country = strings.ToUpper(strings.TrimSpace(country))
	if !policy.IsCountry(country) {
		return nil
	}
	s.orgMu.Lock()
	s.countries[org] = country
	s.orgMu.Unlock()
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// applyAlerts applies the changes one correlation pass made: it stores
// each change's alert object (idempotent: the same alert is the same
// version), updates the alerts' lifecycles (see decideAlert) and
// notifies, with one durable write of each file for all of them: the
// alert objects and the lifecycles they change in one addition (one
// commit where the store can, and one round of pushes to the partners;
// the lifecycles are decided before the objects are stored) and their
// audit records in one append. At a CERT, a burst of sightings makes many
// changes at once, and each cost three commits in a row before, then
// three for the pass (objects, their status, lifecycles; issue 16).
// Nothing is published or notified before every change is durable. The
// caller holds s.mu.
func (s *Service) applyAlerts(ctx context.Context, self Self, changes []correlate.Alert, now time.Time) error {
	if len(changes) == 0 {
		return nil
	}
	if len(changes) > 1 && s.notifier != nil && !s.replaying {
		// A webhook carries the alert as stored: two changes of one alert
		// in a batch are stored, and notified, one after the other.
		ids := map[string]bool{}
		for _, al := range changes {
			if ids[al.ID] {
				for _, al := range changes {
					if err := s.applyAlerts(ctx, self, []correlate.Alert{al}, now); err != nil {
						return err
					}
				}
				return nil
			}
			ids[al.ID] = true
		}
	}
	admin := localAdmin(self.ID)
	objs := make([]json.RawMessage, 0, len(changes)+2)
	if !s.extStored {
		objs = append(objs, correlate.AuthorIdentity(), correlate.ExtensionDefinition())
	}
	for _, al := range changes {
		objs = append(objs, correlate.AlertObject(al))
	}
	// The lifecycles are decided first (in memory), so that the alert
	// objects and the lifecycles they change are one commit.
	as, err := s.alertStore()
	if err != nil {
		return err
	}
	b := newAlertBatch()
	for _, al := range changes {
		if err := s.decideAlert(ctx, as, b, admin, s.cfg.AlertsCollection, al, "", now); err != nil {
			return err
		}
	}
	states, err := b.states(now)
	if err != nil {
		return err
	}
	if err := s.cfg.Store(ctx, s.cfg.AlertsCollection, objs, states); err != nil {
		if len(changes) == 1 {
			return fmt.Errorf("store alert %s: %w", changes[0].ID, err)
		}
		return fmt.Errorf("store %d alerts: %w", len(changes), err)
	}
	s.extStored = true
	b.changed = nil // saved with the objects
	return s.finishAlerts(ctx, as, b, admin, now, s.replaying)
}

// states returns the lifecycles of b to save, encoded, in order.
func (b *alertBatch) states(now time.Time) ([]correlate.State, error) {
	out := make([]correlate.State, 0, len(b.changed))
	for _, id := range b.changed {
		st, err := lifecycleState(id, b.lifecycles[id], now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// alertBatch is the lifecycle changes decided for a batch of alert
// changes, not yet durable.
type alertBatch struct {
	// lifecycles are the lifecycles read or changed, by alert id; a
	// second change of one alert continues from the first's.
	lifecycles map[string]*correlate.Lifecycle
	// changed lists, in order, the ids whose lifecycle is to be saved.
	changed []string
	// records are the audit records of the changes.
	records []audit.Record
	// steps are the changes to publish and notify, in order.
	steps []alertStep
}

// alertStep is one alert change to publish once the batch is durable.
type alertStep struct {
	al         correlate.Alert
	status     correlate.Status
	collection string
}

func newAlertBatch() *alertBatch {
	return &alertBatch{lifecycles: map[string]*correlate.Lifecycle{}}
}

// decideAlert decides, in memory, how the lifecycle of alert al (held
// in collection) follows from it: a new alert opens one, a higher tier
// escalates it, a superseded one resolves it; note (where the alert came
// from, or empty) is added to the history and the audit. It adds the
// lifecycle to save, the audit record and the step to publish (live
// events and, unless replaying, a notification with the alert as the
// gate releases it to the node itself: finishAlerts) to b.
func (s *Service) decideAlert(ctx context.Context, as States, b *alertBatch, admin entente.Principal, collection string, al correlate.Alert, note string, now time.Time) error {
	with := func(text string) string {
		if note == "" {
			return text
		}
		return text + "; " + note
	}
	lc, known := b.lifecycles[al.ID]
	var err error
	if !known {
		lc, err = s.lifecycle(ctx, as, al.ID)
	} else if lc == nil {
		err = entente.Errorf(entente.ENOTFOUND, "no alert %q", al.ID)
	}
	changed := false
	switch {
	case entente.ErrorCode(err) == entente.ENOTFOUND:
		lc = nil
		if al.Change == correlate.ChangeSuperseded {
			break
		}
		lc, changed, al.Change = correlate.NewLifecycle(al, admin.Org, now), true, correlate.ChangeCreated
		lc.History[len(lc.History)-1].Note = note
	case err != nil:
		return err
	case al.Change == correlate.ChangeWithdrawn || al.Withdrawn:
		al.Change = correlate.ChangeWithdrawn
		changed = lc.Withdraw(admin.Org, now, with("nothing supports it any more: its evidence was retracted or its sources quarantined")) == nil
	case lc.Status == correlate.StatusWithdrawn && al.Change != correlate.ChangeSuperseded:
		al.Change = correlate.ChangeCreated
		changed = lc.Reraise(al, admin.Org, now, with(fmt.Sprintf("raised again: %s", evidenceNote(al)))) == nil
	case al.Change == correlate.ChangeLowered || (al.Change != correlate.ChangeSuperseded && al.TierRank > 0 && al.TierRank < lc.TierRank && note != ""):
		al.Change = correlate.ChangeLowered
		changed = lc.Lower(al, admin.Org, now, with(fmt.Sprintf("lowered to %s: %s", al.Tier, evidenceNote(al)))) == nil
	case al.Change == correlate.ChangeEscalated || (al.Change != correlate.ChangeSuperseded && al.TierRank > lc.TierRank):
		al.Change = correlate.ChangeEscalated
		changed = lc.Escalate(al, admin.Org, now, with(evidenceNote(al))) == nil
	case al.Change == correlate.ChangeSuperseded:
		changed = lc.Resolve(admin.Org, now, with("superseded by "+al.SupersededBy)) == nil
	}
	b.lifecycles[al.ID] = lc
	if changed {
		if !slices.Contains(b.changed, al.ID) {
			b.changed = append(b.changed, al.ID)
		}
		detail := al.ID + " tier " + lc.Tier
		if note != "" {
			detail += ", " + note
		}
		b.records = append(b.records, audit.AdminRecord(s.now(), audit.Actor(admin.KeyID, admin.Org), "alert."+string(lc.Status), "", detail, nil))
	}
	if !changed && al.Change != correlate.ChangeUpdated {
		return nil
	}
	status := correlate.Status("")
	if lc != nil {
		status = lc.Status
	}
	b.steps = append(b.steps, alertStep{al: al, status: status, collection: collection})
	return nil
}

// finishAlerts makes the lifecycles of b durable (saved together, so
// that the store may commit them as one) and appends their audit
// records in one call, then publishes each change to live events and,
// unless replaying, notifies it with the alert as the gate releases it
// to the node itself.
func (s *Service) finishAlerts(ctx context.Context, as States, b *alertBatch, admin entente.Principal, now time.Time, replaying bool) error {
	errs := make([]error, len(b.changed))
	put := func(i int) {
		id := b.changed[i]
		errs[i] = s.putLifecycle(ctx, as, id, b.lifecycles[id], now)
	}
	if len(b.changed) == 1 {
		put(0)
	} else {
		var wg sync.WaitGroup
		for i := range b.changed {
			wg.Go(func() { put(i) })
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(b.records) > 0 {
		if err := s.cfg.Audit(context.WithoutCancel(ctx), b.records); err != nil {
			return fmt.Errorf("audit %s: %w", b.records[0].Rule, err)
		}
	}
	for _, st := range b.steps {
		if err := s.tellAlert(ctx, admin, st, now, replaying); err != nil {
			return err
		}
	}
	return nil
}

// tellAlert publishes one alert change to live events and, unless
// replaying, notifies it with the alert as the gate releases it to the
// node itself.
func (s *Service) tellAlert(ctx context.Context, admin entente.Principal, st alertStep, now time.Time, replaying bool) error {
	al, status, collection := st.al, st.status, st.collection
	s.events.alert(al, status, now, replaying) // live events (events.go)
	if replaying || s.notifier == nil {
		return nil
	}
	// What is notified is what the gate releases to the node itself.
	page, err := s.cfg.Release(ctx, admin, "", collection, entente.ObjectQuery{IDs: []string{al.ID}, Limit: 1})
	if err != nil {
		return fmt.Errorf("release alert %s: %w", al.ID, err)
	}
	if len(page.Entries) > 0 {
		ev := AlertEvent{Change: al.Change, Alert: al, Status: status, Object: page.Entries[0].Raw, Collection: collection}
		if s.engine != nil {
			infos := []AlertInfo{infoOf(al, status)}
			if err := s.describeLocked(ctx, infos); err == nil {
				ev.Info = &infos[0]
			}
		}
		s.notifier.Notify(ctx, ev)
	}
	return nil
}

// evidenceNote describes an alert's evidence in a lifecycle note.
func evidenceNote(al correlate.Alert) string {
	n := fmt.Sprintf("%d organisations in %d countries", al.Organisations, len(al.Countries))
	if al.SourceCount > 0 {
		n += fmt.Sprintf(", %d independent sources", al.SourceCount)
	}
	return n
}

func (s *Service) lifecycle(ctx context.Context, as States, id string) (*correlate.Lifecycle, error) {
	st, err := as.AlertState(ctx, id)
	if err != nil {
		return nil, err
	}
	var lc correlate.Lifecycle
	if err := json.Unmarshal(st.Body, &lc); err != nil {
		return nil, fmt.Errorf("decode lifecycle of alert %s: %w", id, err)
	}
	return &lc, nil
}

// lifecycleState is the state that keeps lifecycle lc of alert id.
func lifecycleState(id string, lc *correlate.Lifecycle, now time.Time) (correlate.State, error) {
	b, err := json.Marshal(lc)
	if err != nil {
		return correlate.State{}, fmt.Errorf("encode lifecycle of alert %s: %w", id, err)
	}
	return correlate.State{ID: id, Status: string(lc.Status), Updated: now, Body: b}, nil
}

func (s *Service) putLifecycle(ctx context.Context, as States, id string, lc *correlate.Lifecycle, now time.Time) error {
	st, err := lifecycleState(id, lc, now)
	if err != nil {
		return err
	}
	if err := as.PutAlertState(ctx, st); err != nil {
		return fmt.Errorf("record lifecycle of alert %s: %w", id, err)
	}
	return nil
}

// requireAnalyst refuses principals that are neither analysts nor admins.
func requireAnalyst(p entente.Principal, action string) error {
	if p.Role != entente.RoleAdmin && p.Role != entente.RoleAnalyst {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the analyst or admin role; this key's role is %q", action, p.Role)
	}
	return nil
}

// List lists the alerts of this node matching f, most recently
// changed first (analyst or admin).
func (s *Service) List(ctx context.Context, p entente.Principal, f AlertFilter) ([]AlertInfo, error) {
	out, err := s.list(ctx, p, f)
	if err != nil {
		return nil, err
	}
	return out, s.describe(ctx, out)
}

// list is List without the descriptions (threat names, values, rule,
// evidence): what the overview counts needs none of them, and describing
// thousands of alerts looks up every object they sighted.
func (s *Service) list(ctx context.Context, p entente.Principal, f AlertFilter) ([]AlertInfo, error) {
	if err := requireAnalyst(p, "listing alerts"); err != nil {
		return nil, err
	}
	as, err := s.alertStore()
	if err != nil {
		return nil, err
	}
	states, err := as.AlertStates(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, st := range states {
		if f.Status == "" || correlate.Status(st.Status) == f.Status {
			ids = append(ids, st.ID)
		}
	}
	objs, err := s.alertObjects(ctx, p, ids)
	if err != nil {
		return nil, err
	}
	out := []AlertInfo{}
	for _, st := range states {
		raw, ok := objs[st.ID]
		if !ok {
			continue
		}
		info, err := alertInfo(st, raw)
		if err != nil {
			return nil, err
		}
		if f.Tier != "" && info.Tier != f.Tier {
			continue
		}
		info.History, info.Object = nil, nil
		out = append(out, info)
	}
	return out, nil
}

// Alert returns one alert with its object and lifecycle history (analyst
// or admin). ENOTFOUND if the node has no such alert.
func (s *Service) Alert(ctx context.Context, p entente.Principal, id string) (AlertInfo, error) {
	if err := requireAnalyst(p, "reading alerts"); err != nil {
		return AlertInfo{}, err
	}
	as, err := s.alertStore()
	if err != nil {
		return AlertInfo{}, err
	}
	st, err := as.AlertState(ctx, id)
	if err != nil {
		return AlertInfo{}, err
	}
	objs, err := s.alertObjects(ctx, p, []string{id})
	if err != nil {
		return AlertInfo{}, err
	}
	raw, ok := objs[id]
	if !ok {
		return AlertInfo{}, entente.Errorf(entente.ENOTFOUND, "no alert %q", id)
	}
	info, err := alertInfo(st, raw)
	if err != nil {
		return AlertInfo{}, err
	}
	infos := []AlertInfo{info}
	if err := s.describe(ctx, infos); err != nil {
		return AlertInfo{}, err
	}
	return infos[0], nil
}

// alertObjects reads the latest alert objects of ids through release:
// from the alerts collection, where the node's own alerts are, and for
// those not there (alerts received from partners) from the other
// collections p may read.
func (s *Service) alertObjects(ctx context.Context, p entente.Principal, ids []string) (map[string]json.RawMessage, error) {
	types := []string{correlate.AlertType}
	out := map[string]json.RawMessage{}
	for e, err := range s.releasedByID(ctx, p, s.cfg.AlertsCollection, ids, types) {
		if err != nil {
			return nil, err
		}
		out[e.ID] = e.Raw
	}
	missing := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { _, ok := out[id]; return ok })
	received, err := s.lookupReadable(ctx, p, missing, types, s.cfg.AlertsCollection)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, received)
	return out, nil
}

// alertInfo combines an alert's state and object.
func alertInfo(st correlate.State, raw json.RawMessage) (AlertInfo, error) {
	var lc correlate.Lifecycle
	if err := json.Unmarshal(st.Body, &lc); err != nil {
		return AlertInfo{}, fmt.Errorf("decode lifecycle of alert %s: %w", st.ID, err)
	}
	var o struct {
		Threat        string    `json:"threat_ref"`
		Tier          string    `json:"tier"`
		Organisations int       `json:"organisation_count"`
		Countries     []string  `json:"countries"`
		FirstSeen     time.Time `json:"first_seen"`
		LastSeen      time.Time `json:"last_seen"`
		Sources       int       `json:"source_count"`
		Withdrawn     bool      `json:"withdrawn"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return AlertInfo{}, fmt.Errorf("decode alert %s: %w", st.ID, err)
	}
	return AlertInfo{
		ID: st.ID, Threat: o.Threat, Tier: cmpOr(o.Tier, lc.Tier), Status: lc.Status,
		Organisations: o.Organisations, Countries: o.Countries, FirstSeen: o.FirstSeen, LastSeen: o.LastSeen,
		Sources: o.Sources, Withdrawn: o.Withdrawn || lc.Status == correlate.StatusWithdrawn,
		Updated: st.Updated, History: lc.History, Object: raw, Values: []string{}, Evidence: []correlate.SourceEvidence{},
	}, nil
}

// Ack acknowledges an alert (analyst or admin): p takes it in hand.
// ENOTFOUND if no such alert; ECONFLICT if its status does not allow it.
func (s *Service) Ack(ctx context.Context, p entente.Principal, id, note string) (AlertInfo, error) {
	return s.transition(ctx, p, id, "ack", func(lc *correlate.Lifecycle, by string, at time.Time) error {
		return lc.Acknowledge(by, at, note)
	})
}

// Resolve closes an alert (analyst or admin). ENOTFOUND if no such
// alert; ECONFLICT if its status does not allow it.
func (s *Service) Resolve(ctx context.Context, p entente.Principal, id, note string) (AlertInfo, error) {
	return s.transition(ctx, p, id, "resolve", func(lc *correlate.Lifecycle, by string, at time.Time) error {
		return lc.Resolve(by, at, note)
	})
}

func (s *Service) transition(ctx context.Context, p entente.Principal, id, action string, apply func(*correlate.Lifecycle, string, time.Time) error) (AlertInfo, error) {
	if err := requireAnalyst(p, action+" of an alert"); err != nil {
		return AlertInfo{}, err
	}
	as, err := s.alertStore()
	if err != nil {
		return AlertInfo{}, err
	}
	s.mu.Lock()
	lc, err := s.lifecycle(ctx, as, id)
	if err != nil {
		s.mu.Unlock()
		return AlertInfo{}, err
	}
	now := s.now()
	if err := apply(lc, audit.Actor(p.KeyID, p.Org), now); err != nil {
		s.mu.Unlock()
		var ee *entente.Error
		if !errors.As(err, &ee) {
			err = entente.Errorf(entente.ECONFLICT, "%s of alert %s: %v", action, id, err)
		}
		return AlertInfo{}, joinAudit(err, s.auditAdmin(ctx, p, "alert."+action, "", id, err))
	}
	err = s.putLifecycle(ctx, as, id, lc, now)
	s.mu.Unlock()
	if err != nil {
		return AlertInfo{}, err
	}
	if err := s.auditAdmin(ctx, p, "alert."+action, "", id+" "+string(lc.Status), nil); err != nil {
		return AlertInfo{}, err
	}
	info, err := s.Alert(ctx, p, id)
	if err == nil {
		s.events.transitioned(info, now) // live events (events.go)
	}
	return info, err
}

// SightingsAdded correlates sightings the node's own sensors just stored
// (the objects of a request, those that failed left out) and stores and
// notifies the alerts they change (see Correlate).
func (s *Service) SightingsAdded(ctx context.Context, objects []json.RawMessage) error {
	return s.correlate(ctx, "", objects)
}

// pseudonymous prepares the sightings that a partner's gate redacted to
// their victims' countries (where_sighted_refs lists only country
// locations) for counting: the organisation counted is the sighting's
// created_by_ref, an identity id the node may not otherwise know (a
// pseudonym: the redaction removed who the victim is, not that it is one
// organisation), located in the country of the location. This holds only
// for sightings received from a partner (they have a provenance other
// than the node itself), which vouches for the organisation; a redacted
// sighting posted locally is refused as from an unknown organisation.
// The caller holds s.mu.
func (s *Service) pseudonymous(ctx context.Context, self Self, origins map[string]string, sightings []correlate.STIXSighting) error {
	if origins == nil {
		return nil
	}
	var redacted []int
	var locs []string
	for i, sg := range sightings {
		if sg.CreatedByRef == "" || len(sg.WhereSightedRefs) == 0 {
			continue
		}
		all := true
		for _, r := range sg.WhereSightedRefs {
			all = all && strings.HasPrefix(r, "location--")
		}
		if all {
			redacted = append(redacted, i)
			locs = append(locs, sg.WhereSightedRefs...)
		}
	}
	if len(redacted) == 0 {
		return nil
	}
	vouched := map[string]bool{}
	for id, o := range origins {
		if o != "" && o != self.ID {
			vouched[id] = true
		}
	}
	objs, err := s.lookup(ctx, slices.Compact(slices.Sorted(slices.Values(locs))))
	if err != nil {
		return err
	}
	for _, i := range redacted {
		sg := &sightings[i]
		if !vouched[sg.ID] {
			continue
		}
		country := ""
		for _, r := range sg.WhereSightedRefs {
			var l struct {
				Country string `json:"country"`
			}
			if json.Unmarshal(objs[r], &l) == nil && policy.IsCountry(strings.ToUpper(l.Country)) {
				country = strings.ToUpper(l.Country)
				break
			}
		}
		if country == "" {
			continue
		}
		s.orgMu.Lock()
		if _, known := s.countries[sg.CreatedByRef]; !known {
			s.countries[sg.CreatedByRef] = country
		}
		s.orgMu.Unlock()
		sg.WhereSightedRefs = nil // counted as its creator's
	}
	return nil
}

// Received gives the alerts received from others (pushed by a
// partner, pulled from a peer, posted over TAXII) into collection a
// lifecycle on this node, as if it had raised them: listed, shown on the
// dashboard, notified, acknowledged and resolved here. A received alert
// the node raised itself too (same id: alerts converge) keeps its one
// lifecycle. A higher tier escalates it; a revoked (superseded) one
// resolves it. Objects that are not alerts are ignored; malformed ones
// are logged and skipped.
//
// The lifecycle changes of the alerts of one call are made durable
// together: the lifecycles saved at once (SQLite: one group commit of the
// writer) and their audit records in one append. An organisation that
// received a push of several alert versions wrote a lifecycle and an
// audit record for each, one after the other, before (issue 16).
func (s *Service) Received(ctx context.Context, collection string, objects []json.RawMessage) error {
	as, err := s.alertStore()
	if err != nil {
		return err
	}
	self, err := s.cfg.Self(ctx)
	if err != nil {
		return err
	}
	cfg := s.ccfg
	admin := localAdmin(self.ID)
	var received []correlate.Alert
	for _, raw := range objects {
		al, err := correlate.ParseAlertObject(raw, cfg.TierRank)
		if err != nil {
			s.log.WarnContext(ctx, "received alert not taken into the lifecycle", "collection", collection, "err", err)
			continue
		}
		received = append(received, al)
	}
	if len(received) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := newAlertBatch()
	now := s.now()
	for _, al := range received {
		if !s.takeReceived(ctx, collection, al) {
			continue
		}
		if err := s.decideAlert(ctx, as, b, admin, collection, al, "received in collection "+collection, now); err != nil {
			return err
		}
	}
	return s.finishAlerts(ctx, as, b, admin, now, false)
}

// takeReceived reports whether a received alert changes this node's
// lifecycle of it: not when the node's own evidence holds it higher, nor
// a withdrawal of an alert the node's own evidence supports. The caller
// holds s.mu.
func (s *Service) takeReceived(ctx context.Context, collection string, al correlate.Alert) bool {
	if s.engine != nil && !al.Withdrawn && al.Change != correlate.ChangeSuperseded {
		// A lowered alert is not lowered here below what the node's own
		// evidence supports.
		for _, own := range s.engine.Alerts() {
			if own.ID == al.ID && own.TierRank > al.TierRank {
				return false
			}
		}
	}
	if al.Withdrawn && s.engine != nil && len(s.engine.Evidence(al.ID)) > 0 {
		// The sender withdrew it; the node keeps its own independent
		// evidence, and the alert.
		s.log.InfoContext(ctx, "received withdrawal of an alert the node's own evidence supports; kept", "alert", al.ID, "collection", collection)
		return false
	}
	return true
}

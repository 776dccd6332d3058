package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
)

// Refs remembers, for each object, the relationships and sightings
// that refer to it. It is filled as correlation reads relationships and
// sightings (all of them when it starts, then each new one), so the
// object page never scans the store.
type Refs struct {
	mu    sync.Mutex
	edges map[string][]Edge
}

// Edge is a relationship or a sighting that refers to an object.
type Edge struct {
	// Ref is the relationship's or the sighting's id.
	Ref string `json:"ref"`
	// Type is the relationship type, or "sighting".
	Type string `json:"type"`
	// Other is the object at the other end (for a sighting, the
	// sighting itself).
	Other string `json:"other"`
	// Outgoing is true when the object is the relationship's source.
	Outgoing bool `json:"outgoing"`
}

// maxEdges bounds the edges remembered per object.
const maxEdges = 1000

func (x *Refs) add(id string, e Edge) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.edges == nil {
		x.edges = map[string][]Edge{}
	}
	es := x.edges[id]
	if len(es) >= maxEdges || slices.Contains(es, e) {
		return
	}
	x.edges[id] = append(es, e)
}

// relationship indexes a stored relationship object.
func (x *Refs) relationship(id string, raw json.RawMessage) {
	var rel struct {
		Type   string `json:"relationship_type"`
		Source string `json:"source_ref"`
		Target string `json:"target_ref"`
	}
	if json.Unmarshal(raw, &rel) != nil || rel.Source == "" || rel.Target == "" {
		return
	}
	x.add(rel.Source, Edge{Ref: id, Type: rel.Type, Other: rel.Target, Outgoing: true})
	x.add(rel.Target, Edge{Ref: id, Type: rel.Type, Other: rel.Source})
}

// sightingOf indexes a sighting of an object.
func (x *Refs) sightingOf(sighting, of string) {
	if of != "" {
		x.add(of, Edge{Ref: sighting, Type: "sighting", Other: sighting})
	}
}

// Of returns the relationships and sightings known to refer to id.
func (x *Refs) Of(id string) []Edge {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.edges[id])
}

// refsMaxAge is how stale the reference index may be when a page
// reads it: relationships stored since are read at most this often
// (each read queries every collection), and each batch of sightings
// correlated reads them too.
const refsMaxAge = 10 * time.Second

// RefreshRefs brings the reference index up to date, at most every
// refsMaxAge: correlation reads the relationships stored since it last
// did. Sightings are indexed as correlation reads them (AddSightings,
// and RunAlerts for the other paths).
func (s *Service) RefreshRefs(ctx context.Context) error {
	now := s.now()
	s.events.mu.Lock()
	fresh := !s.events.refsAt.IsZero() && now.Sub(s.events.refsAt) < refsMaxAge
	s.events.mu.Unlock()
	if fresh {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startAlerts(ctx, nil); err != nil {
		return err
	}
	if err := s.refreshRelationships(ctx); err != nil {
		return err
	}
	s.events.mu.Lock()
	s.events.refsAt = now
	s.events.mu.Unlock()
	return nil
}

// AlertSighting is one sighting behind an alert.
type AlertSighting struct {
	ID        string    `json:"id"`
	Of        string    `json:"sighting_of_ref"`
	Orgs      []string  `json:"where_sighted_refs"`
	Countries []string  `json:"countries"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Count     int       `json:"count,omitempty"`
}

// AlertDetail is an alert with what is behind it: the sightings of its
// threat (and of the indicators that indicate it) within the alert's
// span, and the threat's relationships.
type AlertDetail struct {
	AlertInfo
	Sightings []AlertSighting `json:"sightings"`
	Related   []Edge          `json:"related"`
}

// maxAlertSightings bounds the sightings an AlertDetail lists.
const maxAlertSightings = 500

// Detail returns alert id with the sightings behind it and its
// threat's related objects (analyst or admin). ENOTFOUND if no such
// alert.
func (s *Service) Detail(ctx context.Context, p entente.Principal, id string) (AlertDetail, error) {
	info, err := s.Alert(ctx, p, id)
	if err != nil {
		return AlertDetail{}, err
	}
	if err := s.RefreshRefs(ctx); err != nil {
		return AlertDetail{}, err
	}
	d := AlertDetail{AlertInfo: info, Sightings: []AlertSighting{}, Related: []Edge{}}
	// The threat and what indicates it: their sightings are the alert's.
	sighted := []string{info.Threat}
	for _, e := range s.refs.Of(info.Threat) {
		if e.Type == "sighting" {
			continue
		}
		d.Related = append(d.Related, e)
		if e.Type == "indicates" && !e.Outgoing {
			sighted = append(sighted, e.Other)
		}
	}
	var ids []string
	for _, obj := range sighted {
		for _, e := range s.refs.Of(obj) {
			if e.Type == "sighting" && !slices.Contains(ids, e.Ref) {
				ids = append(ids, e.Ref)
			}
		}
	}
	objs, err := s.lookupReadable(ctx, p, ids, nil)
	if err != nil {
		return AlertDetail{}, err
	}
	from, to := info.FirstSeen.Add(-time.Second), info.LastSeen.Add(time.Second)
	for _, id := range ids {
		raw, ok := objs[id]
		if !ok {
			continue
		}
		sg, err := correlate.ParseSighting(raw)
		if err != nil {
			continue
		}
		seen := sg.LastSeen
		if seen.IsZero() {
			seen = sg.FirstSeen
		}
		if !seen.IsZero() && !info.FirstSeen.IsZero() && (seen.Before(from) || seen.After(to)) {
			continue
		}
		orgs := sg.WhereSightedRefs
		if len(orgs) == 0 && sg.CreatedByRef != "" {
			orgs = []string{sg.CreatedByRef}
		}
		as := AlertSighting{ID: sg.ID, Of: sg.SightingOfRef, Orgs: orgs, Countries: []string{}, FirstSeen: sg.FirstSeen, LastSeen: sg.LastSeen, Count: sg.Count}
		for _, o := range orgs {
			if cc := s.countryOf(o); cc != "" && !slices.Contains(as.Countries, cc) {
				as.Countries = append(as.Countries, cc)
			}
		}
		d.Sightings = append(d.Sightings, as)
		if len(d.Sightings) >= maxAlertSightings {
			break
		}
	}
	return d, nil
}

// lookupReadable returns the latest version of each of ids (of types,
// when not empty) that p may read, in any collection, through release;
// collections named in skip are left out.
func (s *Service) lookupReadable(ctx context.Context, p entente.Principal, ids, types []string, skip ...string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if len(ids) == 0 {
		return out, nil
	}
	colls, err := s.cfg.Objects.Collections(ctx)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	for _, c := range colls {
		if !c.CanRead(p.Role) || slices.Contains(skip, c.ID) || slices.Contains(skip, c.Alias) {
			continue
		}
		for e, err := range s.releasedByID(ctx, p, c.ID, ids, types) {
			if err != nil {
				return nil, err
			}
			out[e.ID] = e.Raw
		}
	}
	return out, nil
}

// releasedByID yields the latest version of each of ids (of types, when
// not empty) in collection, through release, asking for them in chunks
// of 500; an error ends the sequence.
func (s *Service) releasedByID(ctx context.Context, p entente.Principal, collection string, ids, types []string) iter.Seq2[entente.ObjectEntry, error] {
	return func(yield func(entente.ObjectEntry, error) bool) {
		for chunk := range slices.Chunk(ids, 500) {
			page, err := s.cfg.Release(ctx, p, "", collection, entente.ObjectQuery{IDs: chunk, Types: types, Limit: len(chunk) + 1})
			if err != nil {
				yield(entente.ObjectEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// RefreshRefsNow brings the reference index up to date now, however
// recently it was: for a reader that knows the store changed since.
func (s *Service) RefreshRefsNow(ctx context.Context) error {
	s.events.mu.Lock()
	s.events.refsAt = time.Time{}
	s.events.mu.Unlock()
	return s.RefreshRefs(ctx)
}

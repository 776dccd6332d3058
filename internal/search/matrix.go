package search

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/entente-cti/entente"
)

// Matrix is the ATT&CK matrix: techniques by tactic, with what the node
// holds behind each.
type Matrix struct {
	Tactics []Tactic `json:"tactics"`
}

// Tactic is one column of the matrix.
type Tactic struct {
	ID         string      `json:"id"`
	ExternalID string      `json:"external_id"`
	ShortName  string      `json:"shortname"`
	Name       string      `json:"name"`
	Techniques []Technique `json:"techniques"`
}

// Technique is one cell: the counts of indicators that indicate it,
// sightings of it or of those indicators, and alerts resting on them;
// InFilter is set when the filter (an intrusion set or malware) uses it.
type Technique struct {
	ID         string `json:"id"`
	ExternalID string `json:"external_id"`
	Name       string `json:"name"`
	Indicators int    `json:"indicators"`
	Sightings  int    `json:"sightings"`
	Alerts     int    `json:"alerts"`
	InFilter   bool   `json:"in_filter"`
	// Subtechniques are the technique's sub-techniques (T1566.001…),
	// whose counts and filter are included in the technique's.
	Subtechniques []Technique `json:"subtechniques,omitempty"`
}

// matrixCache keeps the last matrix built per audience, with the store
// version it was built from.
type matrixCache struct {
	mu sync.Mutex
	m  map[string]cachedMatrix
	// objs are the tactics, techniques and matrices as released to each
	// audience, with the fingerprint of their versions in the index.
	objs map[string]cachedObjects
}

type cachedObjects struct {
	fingerprint string
	got         map[string]fetched
}

type cachedMatrix struct {
	version string
	matrix  Matrix
}

// matrixPage is the page size of the index reads that build a matrix.
const matrixPage = 1000

// Matrix returns the ATT&CK matrix built from the tactics and techniques
// stored on the node that p may read, with filter (an intrusion set's or
// malware's id, or "") marking the techniques it uses (analyst or admin).
// It is built once per store version and audience, then served from
// memory.
func (s *Service) Matrix(ctx context.Context, p entente.Principal, filter string) (Matrix, error) {
	if err := requireAnalyst(p, "reading the ATT&CK matrix"); err != nil {
		return Matrix{}, err
	}
	version := ""
	if s.cfg.Version != nil {
		v, err := s.cfg.Version(ctx)
		if err != nil {
			return Matrix{}, err
		}
		version = v
	}
	key := p.Org + "|" + string(p.Role) + "|" + p.KeyID + "|" + filter
	c := &s.matrix
	c.mu.Lock()
	got, ok := c.m[key]
	c.mu.Unlock()
	if ok && version != "" && got.version == version {
		return got.matrix, nil
	}
	m, err := s.buildMatrix(ctx, p, filter)
	if err != nil {
		return Matrix{}, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 256 {
		c.m = map[string]cachedMatrix{}
	}
	c.m[key] = cachedMatrix{version: version, matrix: m}
	c.mu.Unlock()
	return m, nil
}

func (s *Service) buildMatrix(ctx context.Context, p entente.Principal, filter string) (Matrix, error) {
	colls, err := s.readable(ctx, p)
	if err != nil {
		return Matrix{}, err
	}
	type tech struct {
		Technique
		phases []string
		sub    bool
	}
	type attackObj struct {
		ID         string   `json:"id"`
		Type       string   `json:"type"`
		Name       string   `json:"name"`
		ShortName  string   `json:"x_mitre_shortname"`
		Revoked    bool     `json:"revoked"`
		Sub        bool     `json:"x_mitre_is_subtechnique"`
		Deprecated bool     `json:"x_mitre_deprecated"`
		TacticRefs []string `json:"tactic_refs"`
		Phases     []struct {
			Chain string `json:"kill_chain_name"`
			Phase string `json:"phase_name"`
		} `json:"kill_chain_phases"`
		Refs []struct {
			Source     string `json:"source_name"`
			ExternalID string `json:"external_id"`
		} `json:"external_references"`
	}
	tactics := map[string]*Tactic{} // by shortname
	var tacticOrder []string        // tactic ids, from the matrix objects
	var techs []*tech
	seen := map[string]bool{}
	// The tactics, techniques and matrices are found by the store's index
	// (its browse list by type), then released by id as p: reading them
	// needs no walk of collections that hold a million indicators.
	var ids []string
	var fp strings.Builder
	if s.cfg.Index != nil {
		names := make([]string, len(colls))
		for i, c := range colls {
			names[i] = c.ID
		}
		q := IndexQuery{Types: []string{"x-mitre-tactic", "attack-pattern", "x-mitre-matrix"}, Collections: names, Limit: matrixPage}
		for {
			page, err := s.cfg.Index(ctx, q)
			if err != nil {
				return Matrix{}, err
			}
			for _, h := range page.Hits {
				ids = append(ids, h.ID)
				fp.WriteString(h.Collection + "/" + h.ID + "@" + h.Modified.String() + "|")
			}
			if page.Next == "" {
				break
			}
			q.Next = page.Next
		}
	}
	// The ATT&CK objects change far less often than the indicators and
	// sightings counted: as released to this audience, they are kept
	// while the index lists the same versions of them.
	audience := p.Org + "|" + string(p.Role) + "|" + p.KeyID
	c := &s.matrix
	c.mu.Lock()
	cached, ok := c.objs[audience]
	c.mu.Unlock()
	got := cached.got
	if !ok || cached.fingerprint != fp.String() {
		var err error
		if got, err = s.fetch(ctx, p, ids); err != nil {
			return Matrix{}, err
		}
		c.mu.Lock()
		if c.objs == nil || len(c.objs) > 64 {
			c.objs = map[string]cachedObjects{}
		}
		c.objs[audience] = cachedObjects{fingerprint: fp.String(), got: got}
		c.mu.Unlock()
	}
	for _, id := range ids {
		f, ok := got[id]
		if !ok {
			continue
		}
		var o attackObj
		if json.Unmarshal(f.entry.Raw, &o) != nil || o.Revoked || o.Deprecated || seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		ext := ""
		for _, r := range o.Refs {
			if strings.HasPrefix(r.Source, "mitre-") && r.ExternalID != "" {
				ext = r.ExternalID
				break
			}
		}
		switch o.Type {
		case "x-mitre-matrix":
			if len(tacticOrder) == 0 {
				tacticOrder = o.TacticRefs
			}
		case "x-mitre-tactic":
			tactics[o.ShortName] = &Tactic{ID: o.ID, ExternalID: ext, ShortName: o.ShortName, Name: o.Name, Techniques: []Technique{}}
		case "attack-pattern":
			t := &tech{Technique: Technique{ID: o.ID, ExternalID: ext, Name: o.Name}, sub: o.Sub}
			for _, ph := range o.Phases {
				if strings.HasPrefix(ph.Chain, "mitre-") {
					t.phases = append(t.phases, ph.Phase)
				}
			}
			techs = append(techs, t)
		}
	}
	if err := s.cfg.Refs.RefreshRefs(ctx); err != nil {
		return Matrix{}, err
	}
	// Alerts by what they rest on.
	alertsOn := map[string]int{}
	if s.cfg.Alerts != nil {
		als, err := s.cfg.Alerts(ctx, p)
		if err != nil {
			return Matrix{}, err
		}
		for _, a := range als {
			alertsOn[a.Threat]++
			for _, sup := range a.Supports {
				if sup != a.Threat {
					alertsOn[sup]++
				}
			}
		}
	}
	uses := map[string]bool{}
	if filter != "" {
		for _, e := range s.cfg.Refs.Of(filter) {
			if e.Outgoing && e.Type == "uses" {
				uses[e.Other] = true
			}
		}
	}
	for _, t := range techs {
		t.InFilter = uses[t.ID]
		t.Alerts = alertsOn[t.ID]
		for _, e := range s.cfg.Refs.Of(t.ID) {
			switch {
			case e.Type == "sighting":
				t.Sightings++
			case !e.Outgoing && e.Type == "indicates" && typeOf(e.Other) == "indicator":
				t.Indicators++
				t.Alerts += alertsOn[e.Other]
				for _, ie := range s.cfg.Refs.Of(e.Other) {
					if ie.Type == "sighting" {
						t.Sightings++
					}
				}
			}
		}
	}
	// Sub-techniques go under their technique (T1566.001 under T1566),
	// their counts added to its.
	parents := map[string]*tech{}
	for _, t := range techs {
		if !t.sub {
			parents[t.ExternalID] = t
		}
	}
	for _, t := range techs {
		base, _, _ := strings.Cut(t.ExternalID, ".")
		if pt := parents[base]; t.sub && pt != nil {
			pt.Subtechniques = append(pt.Subtechniques, t.Technique)
			pt.Indicators += t.Indicators
			pt.Sightings += t.Sightings
			pt.Alerts += t.Alerts
			pt.InFilter = pt.InFilter || t.InFilter
		}
	}
	for _, t := range techs {
		if t.sub && parents[strings.Split(t.ExternalID, ".")[0]] != nil {
			continue
		}
		slices.SortFunc(t.Subtechniques, func(a, b Technique) int { return strings.Compare(a.ExternalID, b.ExternalID) })
		for _, ph := range t.phases {
			if tc := tactics[ph]; tc != nil {
				tc.Techniques = append(tc.Techniques, t.Technique)
			}
		}
	}
	m := Matrix{Tactics: []Tactic{}}
	byID := map[string]*Tactic{}
	for _, tc := range tactics {
		byID[tc.ID] = tc
		slices.SortFunc(tc.Techniques, func(a, b Technique) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ExternalID, b.ExternalID))
		})
	}
	placed := map[string]bool{}
	for _, id := range tacticOrder {
		if tc := byID[id]; tc != nil && !placed[id] {
			placed[id] = true
			m.Tactics = append(m.Tactics, *tc)
		}
	}
	var rest []Tactic
	for _, tc := range tactics {
		if !placed[tc.ID] {
			rest = append(rest, *tc)
		}
	}
	slices.SortFunc(rest, func(a, b Tactic) int { return strings.Compare(a.ExternalID, b.ExternalID) })
	m.Tactics = append(m.Tactics, rest...)
	return m, nil
}

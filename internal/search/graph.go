package search

import (
	"context"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// Graph bounds.
const (
	DefaultGraphLimit = 1000
	MaxGraphLimit     = 5000
)

// GraphEdge is a relationship (or a sighting) between two nodes.
type GraphEdge struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Type   string `json:"type"`
}

// Graph is the neighbourhood of an object.
type Graph struct {
	Nodes     []Node      `json:"nodes"`
	Edges     []GraphEdge `json:"edges"`
	Truncated bool        `json:"truncated"`
}

// Graph returns the objects within depth (1 or 2) relationships or
// sightings of object id, at most limit of them, and the edges between
// them (analyst or admin). Every node and every relationship is released
// through the gate as p: what p may not read is left out. Truncated is
// set when the limit cut the neighbourhood. ENOTFOUND if p may not read
// id.
func (s *Service) Graph(ctx context.Context, p entente.Principal, id string, depth, limit int) (Graph, error) {
	if err := requireAnalyst(p, "reading the relationship graph"); err != nil {
		return Graph{}, err
	}
	if !stix.ValidID(id) {
		return Graph{}, entente.Errorf(entente.EINVALID, "id: %q is not a STIX id (type--uuid)", id)
	}
	if depth < 1 || depth > 2 {
		return Graph{}, entente.Errorf(entente.EINVALID, "depth: %d; 1 or 2", depth)
	}
	if limit <= 0 {
		limit = DefaultGraphLimit
	}
	if limit > MaxGraphLimit {
		return Graph{}, entente.Errorf(entente.EINVALID, "limit: %d; at most %d", limit, MaxGraphLimit)
	}
	if err := s.cfg.Refs.RefreshRefs(ctx); err != nil {
		return Graph{}, err
	}
	root, err := s.fetch(ctx, p, []string{id})
	if err != nil {
		return Graph{}, err
	}
	if _, ok := root[id]; !ok {
		return Graph{}, entente.Errorf(entente.ENOTFOUND, "no collection you may read holds %q", id)
	}
	g := Graph{Nodes: []Node{}, Edges: []GraphEdge{}}
	seen := map[string]bool{id: true}
	order := []string{id}
	type edge struct {
		ref string
		GraphEdge
	}
	var edges []edge
	frontier := []string{id}
	for d := 0; d < depth && !g.Truncated; d++ {
		var next []string
		for _, n := range frontier {
			for _, e := range s.cfg.Refs.Of(n) {
				ge := GraphEdge{Source: e.Other, Target: n, Type: e.Type}
				if e.Outgoing {
					ge.Source, ge.Target = n, e.Other
				}
				if e.Type == "sighting" {
					ge.Type = "sighting-of"
				}
				if !seen[e.Other] {
					if len(order) >= limit {
						g.Truncated = true
						continue
					}
					seen[e.Other] = true
					order = append(order, e.Other)
					next = append(next, e.Other)
				}
				edges = append(edges, edge{e.Ref, ge})
			}
		}
		frontier = next
	}
	// Release every node and relationship as p.
	ids := append([]string{}, order...)
	for _, e := range edges {
		if e.Type != "sighting-of" {
			ids = append(ids, e.ref)
		}
	}
	got, err := s.fetch(ctx, p, ids)
	if err != nil {
		return Graph{}, err
	}
	for _, n := range order {
		f, ok := got[n]
		if !ok {
			continue
		}
		g.Nodes = append(g.Nodes, Node{ID: n, Type: f.entry.Type, Title: stix.Title(f.entry.Raw), TLP: tlpName(markingsOf(f.entry.Raw), f.coll)})
	}
	dup := map[GraphEdge]bool{}
	for _, e := range edges {
		_, okS := got[e.Source]
		_, okT := got[e.Target]
		_, okR := got[e.ref]
		if !okS || !okT || (!okR && e.Type != "sighting-of") || dup[e.GraphEdge] {
			continue
		}
		dup[e.GraphEdge] = true
		g.Edges = append(g.Edges, e.GraphEdge)
	}
	return g, nil
}

package node

import (
	"context"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/search"
	"github.com/entente-cti/entente/internal/store"
)

// The node's search is internal/search; these are its names as the
// node's adapters use them.
type (
	// SearchResult is one object a search found, with where and why.
	SearchResult = search.SearchResult
	// ObjectDetail is everything the dashboard shows of one object.
	ObjectDetail = search.ObjectDetail
	// ObjectVersion is one stored version of an object.
	ObjectVersion = search.ObjectVersion
)

// newSearch wires the node's search.
func (s *Service) newSearch() *search.Service {
	ps, _ := s.st.(store.PolicyStore)
	return search.New(search.Config{
		Release:     s.releaseOn,
		Collections: s.Collections,
		Snapshot:    s.IndicatorSnapshot,
		Refs:        searchRefs{s},
		Provenance: func(ctx context.Context, collection, id string) ([]search.Provenance, error) {
			if ps == nil {
				return nil, nil
			}
			prov, err := ps.Provenance(ctx, collection, []string{id})
			if err != nil {
				return nil, err
			}
			out := make([]search.Provenance, 0, len(prov))
			for k, p := range prov {
				out = append(out, search.Provenance{Version: store.FromUnixNano(k.Version), Origin: p.Origin, Peer: p.Peer, ReceivedAt: p.ReceivedAt})
			}
			return out, nil
		},
	})
}

// searchRefs is alerting's reference index as search reads it.
type searchRefs struct{ s *Service }

func (r searchRefs) RefreshRefs(ctx context.Context) error { return r.s.alerting.RefreshRefs(ctx) }
func (r searchRefs) Of(id string) []Edge                   { return r.s.alerting.Refs().Of(id) }

// Search finds the objects a query names (see [search.Service.Search]).
func (s *Service) Search(ctx context.Context, p entente.Principal, query string) ([]SearchResult, error) {
	return s.search.Search(ctx, p, query)
}

// ObjectDetail returns one object as the collections p may read hold it
// (see [search.Service.ObjectDetail]).
func (s *Service) ObjectDetail(ctx context.Context, p entente.Principal, id string) (ObjectDetail, error) {
	return s.search.ObjectDetail(ctx, p, id)
}

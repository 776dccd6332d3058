package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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
		Index:   s.searchIndex(),
		Version: s.storeVersion,
		Alerts: func(ctx context.Context, p entente.Principal) ([]search.AlertSummary, error) {
			als, err := s.ListAlerts(ctx, p, AlertFilter{})
			if err != nil {
				return nil, err
			}
			out := make([]search.AlertSummary, len(als))
			for i, a := range als {
				out[i] = search.AlertSummary{AlertRef: search.AlertRef{ID: a.ID, Tier: a.Tier, Status: string(a.Status)}, Threat: a.Threat}
			}
			return out, nil
		},
		Country: func(org string) string { return s.alerting.CountryOf(org) },
		Warninglists: func(value string) []search.WarninglistHit {
			if s.cfg.Safety == nil {
				return nil
			}
			ex, err := s.cfg.Safety.Explain(value)
			if err != nil {
				return nil
			}
			var out []search.WarninglistHit
			for _, m := range ex.Rules {
				out = append(out, search.WarninglistHit{List: string(m.Kind), Name: m.Text, Value: ex.Value})
			}
			return out
		},
	})
}

// searchIndex adapts the store's full-text index for search; nil when the
// store has none.
func (s *Service) searchIndex() func(ctx context.Context, q search.IndexQuery) (search.IndexPage, error) {
	ss, ok := s.st.(store.SearchStore)
	if !ok {
		return nil
	}
	return func(ctx context.Context, q search.IndexQuery) (search.IndexPage, error) {
		page, err := ss.SearchObjects(ctx, store.SearchQuery{Text: q.Text, Types: q.Types, TLPs: q.TLPs, Collections: q.Collections,
			Sources: q.Sources, Since: q.Since, Until: q.Until, Limit: q.Limit, Next: q.Next})
		if err != nil {
			return search.IndexPage{}, err
		}
		out := search.IndexPage{Next: page.Next, Hits: make([]search.IndexHit, len(page.Hits))}
		for i, h := range page.Hits {
			out.Hits[i] = search.IndexHit{Collection: h.Collection, ID: h.ID, Type: h.Type, Modified: h.Modified,
				Title: h.Title, TLP: h.TLP, Source: h.Source, Score: h.Score}
		}
		return out, nil
	}
}

// storeVersion is a token that changes whenever an object is added to or
// deleted from any collection, or what may leave changes.
//
// It is computed again when this service stored or deleted objects since,
// or a second after it last was (what other replicas of the node store).
func (s *Service) storeVersion(ctx context.Context) (string, error) {
	w := s.writes.Load() + s.deletions.Load()<<32
	s.versionMu.Lock()
	v := s.version
	s.versionMu.Unlock()
	if v.token != "" && v.writes == w && time.Since(v.at) < versionTTL {
		return v.token, nil
	}
	token, err := s.computeStoreVersion(ctx)
	if err != nil {
		return "", err
	}
	s.versionMu.Lock()
	s.version = cachedVersion{token: token, writes: w, at: time.Now()}
	s.versionMu.Unlock()
	return token, nil
}

// versionTTL is how long storeVersion trusts its last answer when this
// service wrote nothing since.
const versionTTL = time.Second

// computeStoreVersion reads the store's version: every collection's last
// date_added, and the deletions made through this service.
func (s *Service) computeStoreVersion(ctx context.Context) (string, error) {
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return "", fmt.Errorf("list collections: %w", err)
	}
	var b strings.Builder
	b.WriteString(strconv.FormatInt(s.deletions.Load(), 10))
	for _, c := range colls {
		t, err := s.st.LatestAdded(ctx, c.ID)
		if err != nil {
			return "", fmt.Errorf("version of collection %s: %w", c.ID, err)
		}
		b.WriteString("|" + c.ID + "@" + strconv.FormatInt(t.UnixNano(), 10))
	}
	return b.String(), nil
}

// The workbench's reads (internal/search), as the node's adapters call
// them.
type (
	// FindQuery is a search or browse of the workbench.
	FindQuery = search.FindQuery
	// FindPage is one page of its results.
	FindPage = search.FindPage
	// ObjectView is everything the workbench shows of one object.
	ObjectView = search.ObjectView
	// Graph is the neighbourhood of an object.
	Graph = search.Graph
	// Matrix is the ATT&CK matrix.
	Matrix = search.Matrix
)

// Find searches or browses the objects p may read (see
// [search.Service.Find]).
func (s *Service) Find(ctx context.Context, p entente.Principal, q FindQuery) (FindPage, error) {
	return s.search.Find(ctx, p, q)
}

// View returns one object with everything around it (see
// [search.Service.View]).
func (s *Service) View(ctx context.Context, p entente.Principal, id string) (ObjectView, error) {
	return s.search.View(ctx, p, id)
}

// Graph returns the neighbourhood of an object (see
// [search.Service.Graph]).
func (s *Service) Graph(ctx context.Context, p entente.Principal, id string, depth, limit int) (Graph, error) {
	return s.search.Graph(ctx, p, id, depth, limit)
}

// Matrix returns the ATT&CK matrix (see [search.Service.Matrix]).
func (s *Service) Matrix(ctx context.Context, p entente.Principal, filter string) (Matrix, error) {
	return s.search.Matrix(ctx, p, filter)
}

// searchRefs is alerting's reference index as search reads it: brought
// up to date at once when the store changed since it last was, so that
// what the workbench shows (and caches on the store's version) includes
// what was just stored.
type searchRefs struct{ s *Service }

func (r searchRefs) RefreshRefs(ctx context.Context) error {
	v, err := r.s.storeVersion(ctx)
	if err != nil {
		return err
	}
	r.s.refsMu.Lock()
	defer r.s.refsMu.Unlock()
	if v == r.s.refsVersion {
		return r.s.alerting.RefreshRefs(ctx)
	}
	if err := r.s.alerting.RefreshRefsNow(ctx); err != nil {
		return err
	}
	r.s.refsVersion = v
	return nil
}
func (r searchRefs) Of(id string) []Edge { return r.s.alerting.Refs().Of(id) }

// Search finds the objects a query names (see [search.Service.Search]).
func (s *Service) Search(ctx context.Context, p entente.Principal, query string) ([]SearchResult, error) {
	return s.search.Search(ctx, p, query)
}

// ObjectDetail returns one object as the collections p may read hold it
// (see [search.Service.ObjectDetail]).
func (s *Service) ObjectDetail(ctx context.Context, p entente.Principal, id string) (ObjectDetail, error) {
	return s.search.ObjectDetail(ctx, p, id)
}

package search

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// IndexQuery is a query of the store's full-text index (the port to
// store.SearchStore; see there for each field).
type IndexQuery struct {
	Text                              string
	Types, TLPs, Collections, Sources []string
	Since, Until                      time.Time
	Limit                             int
	Next                              string
}

// IndexHit is one object the index found.
type IndexHit struct {
	Collection, ID, Type string
	Modified             time.Time
	Title, TLP, Source   string
	Score                float64
}

// IndexPage is one page of the index's answer.
type IndexPage struct {
	Hits []IndexHit
	Next string
}

// FindQuery is a search or browse of the workbench (GET /api/v1/search).
type FindQuery struct {
	// Text is what to search; empty: the browse list, newest first.
	Text string
	// Types, TLPs, Collections and Sources restrict the results.
	Types, TLPs, Collections, Sources []string
	// Since and Until bound the objects' modified time.
	Since, Until time.Time
	// Limit is the page size (at most MaxFindLimit).
	Limit int
	Next  string
}

// MaxFindLimit is the largest page of a FindQuery.
const MaxFindLimit = 200

// FindResult is one object found, as released to the principal.
type FindResult struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	TLP         string    `json:"tlp"`
	Collection  string    `json:"collection"`
	CreatedBy   string    `json:"created_by_ref"`
	Modified    time.Time `json:"modified"`
	Score       float64   `json:"score"`
}

// FindPage is one page of results; Next is "" on the last.
type FindPage struct {
	Results []FindResult `json:"results"`
	Next    string       `json:"next"`
}

// Find searches the full-text index, or browses it by type when q.Text is
// empty (analyst or admin). Only the collections p may read are searched
// and every result is released through the gate as p: what the gate
// withholds is left out, and what it redacts is shown redacted. A text
// that is a STIX id finds that object.
func (s *Service) Find(ctx context.Context, p entente.Principal, q FindQuery) (FindPage, error) {
	if err := requireAnalyst(p, "searching"); err != nil {
		return FindPage{}, err
	}
	if s.cfg.Index == nil {
		return FindPage{}, entente.Errorf(entente.EUNAVAILABLE, "this node's store has no full-text index")
	}
	colls, err := s.readable(ctx, p)
	if err != nil {
		return FindPage{}, err
	}
	out := FindPage{Results: []FindResult{}}
	text := strings.TrimSpace(q.Text)
	if stix.ValidID(text) {
		got, err := s.fetch(ctx, p, []string{text})
		if err != nil {
			return FindPage{}, err
		}
		if f, ok := got[text]; ok {
			out.Results = append(out.Results, s.result(f, IndexHit{Collection: f.collection, ID: text, Type: f.entry.Type, Modified: f.entry.Version, Score: 1}))
		}
		return out, nil
	}
	var names []string
	byID := map[string]entente.Collection{}
	for _, c := range colls {
		byID[c.ID] = c
		if len(q.Collections) == 0 || slices.Contains(q.Collections, c.ID) || (c.Alias != "" && slices.Contains(q.Collections, c.Alias)) {
			names = append(names, c.ID)
		}
	}
	if len(names) == 0 {
		return out, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	page, err := s.cfg.Index(ctx, IndexQuery{Text: text, Types: q.Types, TLPs: q.TLPs, Collections: names, Sources: q.Sources,
		Since: q.Since, Until: q.Until, Limit: min(limit, MaxFindLimit), Next: q.Next})
	if err != nil {
		return FindPage{}, err
	}
	out.Next = page.Next
	// Release the hits, collection by collection, as p.
	perColl := map[string][]string{}
	for _, h := range page.Hits {
		perColl[h.Collection] = append(perColl[h.Collection], h.ID)
	}
	released := map[[2]string]entente.ObjectEntry{}
	for coll, ids := range perColl {
		for e, err := range s.releasedByID(ctx, p, coll, ids, nil) {
			if err != nil {
				return FindPage{}, err
			}
			released[[2]string{coll, e.ID}] = e
		}
	}
	for _, h := range page.Hits {
		e, ok := released[[2]string{h.Collection, h.ID}]
		if !ok {
			continue
		}
		out.Results = append(out.Results, s.result(fetched{collection: h.Collection, entry: e, coll: byID[h.Collection]}, h))
	}
	return out, nil
}

// result is a FindResult from an object as released.
func (s *Service) result(f fetched, h IndexHit) FindResult {
	var o struct {
		Description  string   `json:"description"`
		CreatedByRef string   `json:"created_by_ref"`
		Markings     []string `json:"object_marking_refs"`
	}
	_ = json.Unmarshal(f.entry.Raw, &o)
	desc := o.Description
	if len(desc) > 500 {
		cut := 500
		for cut > 0 && desc[cut]&0xC0 == 0x80 {
			cut--
		}
		desc = desc[:cut] + "…"
	}
	return FindResult{ID: h.ID, Type: f.entry.Type, Title: stix.Title(f.entry.Raw), Description: desc,
		TLP: tlpName(o.Markings, f.coll), Collection: f.collection, CreatedBy: o.CreatedByRef, Modified: f.entry.Version, Score: h.Score}
}

// tlpName is the lower-case TLP level of an object's markings ("clear",
// "green", "amber", "amber+strict", "red"), else its collection's
// default marking's, else "".
func tlpName(markings []string, c entente.Collection) string {
	best, found := stix.TLPClear, false
	for _, m := range markings {
		if t, ok := stix.TLPFromMarking(m); ok && (!found || t > best) {
			best, found = t, true
		}
	}
	if !found && c.DefaultMarking != "" {
		if t, err := stix.ParseTLP(c.DefaultMarking); err == nil {
			best, found = t, true
		} else if t, ok := stix.TLPFromMarking(c.DefaultMarking); ok {
			best, found = t, true
		}
	}
	if !found {
		return ""
	}
	return strings.TrimPrefix(strings.ToLower(best.String()), "tlp:")
}

// readable returns the collections p may read.
func (s *Service) readable(ctx context.Context, p entente.Principal) ([]entente.Collection, error) {
	colls, err := s.cfg.Collections(ctx, p)
	if err != nil {
		return nil, err
	}
	out := colls[:0:0]
	for _, c := range colls {
		if c.CanRead(p.Role) {
			out = append(out, c)
		}
	}
	return out, nil
}

// fetched is an object as released to a principal, and where.
type fetched struct {
	collection string
	coll       entente.Collection
	entry      entente.ObjectEntry
}

// fetch releases the latest version of each of ids that p may read, from
// the first collection that holds it.
func (s *Service) fetch(ctx context.Context, p entente.Principal, ids []string) (map[string]fetched, error) {
	colls, err := s.readable(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make(map[string]fetched, len(ids))
	want := slices.Clone(ids)
	slices.Sort(want)
	want = slices.Compact(want)
	for _, c := range colls {
		if len(want) == 0 {
			break
		}
		for e, err := range s.releasedByID(ctx, p, c.ID, want, nil) {
			if err != nil {
				return nil, err
			}
			if _, ok := out[e.ID]; !ok {
				out[e.ID] = fetched{collection: c.ID, coll: c, entry: e}
			}
		}
		want = slices.DeleteFunc(want, func(id string) bool { _, ok := out[id]; return ok })
	}
	return out, nil
}

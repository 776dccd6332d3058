package node

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/store"
)

// ExportIndexMaxAge is how old a collection's export index may grow
// before an export rebuilds it in the background (catching deletions made
// by other replicas); until then it is only brought up to date with the
// objects added since it was last read.
const ExportIndexMaxAge = 10 * time.Minute

// exportIndex holds, per collection, the export items of the latest
// version of each indicator, so that an export by the node's own roles
// (which read without the policy gate) converts only the indicators
// added since the last export instead of reading and decoding every
// indicator again. Partners' exports do not use it: they go through the
// gate page by page, audited.
type exportIndex struct {
	mu    sync.Mutex
	byCol map[string]*colIndex
}

// colIndex is the export index of one collection.
type colIndex struct {
	mu     sync.Mutex
	name   string // the collection's alias, else id: the items' Collection
	loc    geo.Locator
	packed *packedItems
	// added is the latest date_added read: the next catch-up reads what
	// was added from (just before) it.
	added   time.Time
	built   time.Time
	gone    bool // dropped (a deletion): the next export builds anew
	rebuild bool // a background rebuild is running
	// scheduled is set while a background catch-up (after an addition)
	// is waiting to run.
	scheduled atomic.Bool
}

// catchUpOverlap is how far before the last date_added read a catch-up
// starts reading: an addition committed later may carry the same
// date_added (the store guarantees only "not earlier"), and versions
// already indexed are skipped cheaply.
const catchUpOverlap = time.Millisecond

// colIndexFor returns the export index of collection c, up to date with
// every object added to it, building it on first use.
func (s *Service) colIndexFor(ctx context.Context, c entente.Collection, loc geo.Locator) (*colIndex, error) {
	x := &s.extras.index
	x.mu.Lock()
	if x.byCol == nil {
		x.byCol = map[string]*colIndex{}
	}
	ci := x.byCol[c.ID]
	if ci == nil || ci.gone { // SetGeo drops every index: loc is the one it was built with
		name := c.Alias
		if name == "" {
			name = c.ID
		}
		ci = &colIndex{name: name, loc: loc, packed: newPackedItems()}
		x.byCol[c.ID] = ci
	}
	x.mu.Unlock()
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.built.IsZero() {
		ci.built = s.now()
	} else if s.now().Sub(ci.built) > ExportIndexMaxAge && !ci.rebuild {
		ci.rebuild = true
		go s.rebuildColIndex(c, loc)
	}
	if err := s.catchUp(ctx, c.ID, ci); err != nil {
		return nil, err
	}
	return ci, nil
}

// rebuildColIndex builds collection c's export index anew and swaps it
// in (unless it was dropped meanwhile).
func (s *Service) rebuildColIndex(c entente.Collection, loc geo.Locator) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	x := &s.extras.index
	x.mu.Lock()
	old := x.byCol[c.ID]
	x.mu.Unlock()
	fresh := &colIndex{name: old.name, loc: loc, packed: newPackedItems(), built: s.now()}
	fresh.mu.Lock()
	err := s.catchUp(ctx, c.ID, fresh)
	fresh.mu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	old.mu.Lock()
	old.rebuild = false
	old.mu.Unlock()
	if err != nil {
		s.log.Warn("export index rebuild failed", "collection", c.ID, "err", err)
		return
	}
	if x.byCol[c.ID] == old && !old.gone {
		x.byCol[c.ID] = fresh
	}
}

// dropExportIndex forgets collection id's export index (after a
// deletion); the next export builds it anew.
func (s *Service) dropExportIndex(id string) {
	x := &s.extras.index
	x.mu.Lock()
	defer x.mu.Unlock()
	if ci := x.byCol[id]; ci != nil {
		ci.mu.Lock()
		ci.gone = true
		ci.mu.Unlock()
		delete(x.byCol, id)
	}
}

// dropExportIndexes forgets every export index (the geolocation data
// changed).
func (s *Service) dropExportIndexes() {
	x := &s.extras.index
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ci := range x.byCol {
		ci.mu.Lock()
		ci.gone = true
		ci.mu.Unlock()
	}
	clear(x.byCol)
}

// catchUp reads the indicator versions added to collection since ci was
// last brought up to date and indexes their items. The caller holds
// ci.mu. The node's own admin reads them through release, the one egress
// path (no gate applies to the node's own roles).
func (s *Service) catchUp(ctx context.Context, collection string, ci *colIndex) error {
	q := entente.ObjectQuery{Types: []string{"indicator"}, Versions: entente.VersionFilter{All: true}, Limit: 5000}
	if !ci.added.IsZero() {
		q.AddedAfter = ci.added.Add(-catchUpOverlap)
	}
	var exLoc export.Locator
	if ci.loc != nil {
		exLoc = ci.loc
	}
	reader := LocalAdmin(s.cfg.Org)
	var page []entente.ObjectEntry
	flush := func() {
		if len(page) == 0 {
			return
		}
		items := convertAll(page, ci.name, exLoc)
		for i, e := range page {
			if e.DateAdded.After(ci.added) {
				ci.added = e.DateAdded
			}
			v, _ := store.UnixNano(e.Version)
			if cur, ok := ci.packed.lookup(e.ID); ok && v <= cur.version {
				continue
			}
			if items[i].err != nil {
				s.log.DebugContext(ctx, "indicator left out of export", "collection", collection, "id", e.ID, "err", items[i].err)
			}
			ci.packed.put(e.ID, v, items[i].items)
		}
		ci.packed.seal()
		page = page[:0]
	}
	for e, err := range s.released(ctx, reader, collection, q) {
		if err != nil {
			return fmt.Errorf("export index of collection %s: %w", collection, err)
		}
		if v, _ := store.UnixNano(e.Version); ci.packed.has(e.ID, v) {
			if e.DateAdded.After(ci.added) {
				ci.added = e.DateAdded
			}
			continue // indexed already (the overlap) or an older version
		}
		page = append(page, e)
		if len(page) == 5000 {
			flush()
		}
	}
	flush()
	return nil
}

type converted struct {
	items []export.Item
	err   error
}

// convertAll converts entries' indicators to export items, on every core.
func convertAll(entries []entente.ObjectEntry, collection string, loc export.Locator) []converted {
	out := make([]converted, len(entries))
	conv := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i].items, out[i].err = export.FromIndicator(entries[i].Raw, collection, loc)
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(entries) < 500 || workers < 2 {
		conv(0, len(entries))
		return out
	}
	var wg sync.WaitGroup
	step := (len(entries) + workers - 1) / workers
	for lo := 0; lo < len(entries); lo += step {
		wg.Go(func() { conv(lo, min(lo+step, len(entries))) })
	}
	wg.Wait()
	return out
}

// appendItems appends the items of every indexed indicator that keep
// selects, in the order first seen, and returns the latest date_added
// indexed.
func (ci *colIndex) appendItems(dst []export.Item, keep func(*export.Item) bool) ([]export.Item, time.Time) {
	p := ci.packed
	dst = slices.Grow(dst, len(p.items)-p.dead)
	for i := range p.entries {
		e := &p.entries[i]
		for j := e.first; j < e.first+e.n; j++ {
			if it := p.item(&p.items[j], ci.name); keep(&it) {
				dst = append(dst, it)
			}
		}
	}
	return dst, ci.added
}

// exportIndexAdded brings collection id's export index, when it has
// one, up to date in the background after objects were added to it, so
// that the next export finds little to convert.
func (s *Service) exportIndexAdded(id string) {
	x := &s.extras.index
	x.mu.Lock()
	ci := x.byCol[id]
	x.mu.Unlock()
	if ci == nil || ci.scheduled.Swap(true) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		ci.mu.Lock()
		defer ci.mu.Unlock()
		ci.scheduled.Store(false)
		if ci.gone || ci.built.IsZero() {
			return
		}
		if err := s.catchUp(ctx, id, ci); err != nil {
			s.log.Warn("export index catch-up failed", "collection", id, "err", err)
		}
	}()
}

// WarmExportIndexes builds the export index of every collection that
// holds indicators, so that the first export after a start costs what
// any other does instead of reading and converting every indicator.
// serve runs it in the background at start; an export that comes first
// simply builds (or waits for) the same index. It stops at the first
// error, which it returns.
func (s *Service) WarmExportIndexes(ctx context.Context) error {
	colls, err := s.st.Collections(ctx)
	if err != nil {
		return fmt.Errorf("warm export indexes: %w", err)
	}
	loc := s.ext().geoLocator()
	for _, c := range colls {
		if _, err := s.colIndexFor(ctx, c, loc); err != nil {
			return fmt.Errorf("warm export index of collection %s: %w", c.ID, err)
		}
	}
	return nil
}

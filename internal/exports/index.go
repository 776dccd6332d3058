package exports

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/export"
	"github.com/entente-cti/entente/internal/geo"
)

// ExportIndexMaxAge is how old a collection's export index may grow
// before an export rebuilds it in the background (catching deletions made
// by other replicas); until then it is only brought up to date with the
// objects added since it was last read.
const ExportIndexMaxAge = 10 * time.Minute

// exportIndex holds, per collection, the export items of the latest
// version of each indicator, so that an export by the node's own roles
// (which read without the policy) converts only the indicators added
// since the last export instead of reading and decoding every indicator
// again. It is fed only by what the gate releases to the node's own
// roles, and it is never served as it is: the gate renders from it, and
// caches and audits what it renders. Partners' exports do not use it:
// they go through the gate object by object.
type exportIndex struct {
	mu    sync.Mutex
	byCol map[string]*colIndex
	// withheld is the gate's withheld fingerprint the indexes were read
	// under.
	withheld string
}

// resetIfWithheld drops every index when the gate withholds something
// else than when they were read (a retraction, a quarantine): the next
// export reads them anew, without what is withheld now.
func (x *exportIndex) resetIfWithheld(fp string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if fp == x.withheld {
		return
	}
	x.withheld = fp
	for _, ci := range x.byCol {
		ci.mu.Lock()
		ci.gone = true
		ci.mu.Unlock()
	}
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

// readFunc reads the entries of a collection as the node's own roles may
// receive them: a rendering's [egress.Source.Read], or the gate's.
type readFunc func(ctx context.Context, c entente.Collection, q entente.ObjectQuery) iter.Seq2[entente.ObjectEntry, error]

// gateRead reads through the gate as the configured reader.
func (s *Service) gateRead(ctx context.Context, c entente.Collection, q entente.ObjectQuery) iter.Seq2[entente.ObjectEntry, error] {
	return s.cfg.Gate.All(ctx, s.cfg.Reader, egress.Query{Collection: c.ID, Objects: q})
}

// colIndexFor returns the export index of collection c, up to date with
// every object added to it, building it on first use.
func (s *Service) colIndexFor(ctx context.Context, c entente.Collection, loc geo.Locator, read readFunc) (*colIndex, error) {
	x := &s.index
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
	if err := s.catchUp(ctx, c, ci, read); err != nil {
		return nil, err
	}
	return ci, nil
}

// rebuildColIndex builds collection c's export index anew and swaps it
// in (unless it was dropped meanwhile).
func (s *Service) rebuildColIndex(c entente.Collection, loc geo.Locator) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	x := &s.index
	x.mu.Lock()
	old := x.byCol[c.ID]
	x.mu.Unlock()
	fresh := &colIndex{name: old.name, loc: loc, packed: newPackedItems(), built: s.now()}
	fresh.mu.Lock()
	err := s.catchUp(ctx, c, fresh, s.gateRead)
	fresh.mu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	old.mu.Lock()
	old.rebuild = false
	old.mu.Unlock()
	if err != nil {
		s.cfg.Logger.Warn("export index rebuild failed", "collection", c.ID, "err", err)
		return
	}
	if x.byCol[c.ID] == old && !old.gone {
		x.byCol[c.ID] = fresh
	}
}

// Dropped forgets collection id's export index (after a deletion); the
// next export builds it anew.
func (s *Service) Dropped(id string) {
	x := &s.index
	x.mu.Lock()
	defer x.mu.Unlock()
	if ci := x.byCol[id]; ci != nil {
		ci.mu.Lock()
		ci.gone = true
		ci.mu.Unlock()
		delete(x.byCol, id)
	}
}

// dropIndexes forgets every export index (the geolocation data changed).
func (s *Service) dropIndexes() {
	x := &s.index
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ci := range x.byCol {
		ci.mu.Lock()
		ci.gone = true
		ci.mu.Unlock()
	}
	clear(x.byCol)
}

// catchUp reads the indicator versions added to collection c since ci
// was last brought up to date and indexes their items. The caller holds
// ci.mu. They are read through the gate, as the node's own roles receive
// them (read).
func (s *Service) catchUp(ctx context.Context, c entente.Collection, ci *colIndex, read readFunc) error {
	collection := c.ID
	q := entente.ObjectQuery{Types: []string{"indicator"}, Versions: entente.VersionFilter{All: true}, Limit: 5000}
	if !ci.added.IsZero() {
		q.AddedAfter = ci.added.Add(-catchUpOverlap)
	}
	var exLoc export.Locator
	if ci.loc != nil {
		exLoc = ci.loc
	}
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
			v := e.Version.UnixNano()
			if cur, ok := ci.packed.lookup(e.ID); ok && v <= cur.version {
				continue
			}
			if items[i].err != nil {
				s.cfg.Logger.DebugContext(ctx, "indicator left out of export", "collection", collection, "id", e.ID, "err", items[i].err)
			}
			ci.packed.put(e.ID, v, items[i].items)
		}
		ci.packed.seal()
		page = page[:0]
	}
	for e, err := range read(ctx, c, q) {
		if err != nil {
			return fmt.Errorf("export index of collection %s: %w", collection, err)
		}
		if v := e.Version.UnixNano(); ci.packed.has(e.ID, v) {
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

// Added brings collection c's export index, when it has one, up to date
// in the background after objects were added to it, so that the next
// export finds little to convert.
func (s *Service) Added(c entente.Collection) {
	id := c.ID
	x := &s.index
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
		if err := s.catchUp(ctx, c, ci, s.gateRead); err != nil {
			s.cfg.Logger.Warn("export index catch-up failed", "collection", id, "err", err)
		}
	}()
}

// Warm builds the export index of each of colls, so that the first
// export after a start costs what any other does instead of reading and
// converting every indicator. serve runs it in the background at start;
// an export that comes first simply builds (or waits for) the same index.
// It stops at the first error, which it returns.
func (s *Service) Warm(ctx context.Context, colls []entente.Collection) error {
	loc, _ := s.geoLocator()
	for _, c := range colls {
		if _, err := s.colIndexFor(ctx, c, loc, s.gateRead); err != nil {
			return fmt.Errorf("warm export index of collection %s: %w", c.ID, err)
		}
	}
	return nil
}

// IndexItems returns how many items collection id's export index holds,
// and whether it exists (for tests and metrics).
func (s *Service) IndexItems(id string) (int, bool) {
	x := &s.index
	x.mu.Lock()
	ci := x.byCol[id]
	x.mu.Unlock()
	if ci == nil {
		return 0, false
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	items, _ := ci.appendItems(nil, func(*export.Item) bool { return true })
	return len(items), true
}

// DropIndexes forgets every export index, for benchmarks that measure
// building one.
func (s *Service) DropIndexes() { s.dropIndexes() }

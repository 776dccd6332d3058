package node

import (
	"context"
	"errors"
	"sync"
	"time"
)

// refsBehind brings alerting's reference index (the relationships the
// object pages, the graph and the ATT&CK matrix read) up to date in the
// background soon after additions that store relationships, so that the
// first view after an import does not read the thousands of
// relationships it just stored. One worker per node, started by the
// first such addition, reads everything stored up to then in one
// refresh: when no relationship has been stored for refsQuiet, at least
// every refsMaxWait under a constant load. It only warms: the reads
// still bring the index up to date with whatever is left (searchRefs),
// so it changes what they cost, never what they see (and WaitIdle does
// not wait for it; Close does).
type refsBehind struct {
	mu sync.Mutex
	// dirty is set when relationships were stored since the last
	// refresh began; first and last are when the first and the last of
	// them were.
	dirty       bool
	first, last time.Time
	// running is set while the worker runs.
	running bool
	// refreshes counts the refreshes done (for tests).
	refreshes int
}

const (
	// refsQuiet is how long the worker waits for the additions of a
	// bulk import to end before it reads their relationships.
	refsQuiet = 250 * time.Millisecond
	// refsMaxWait bounds the wait under a constant load.
	refsMaxWait = 2 * time.Second
)

// relationshipsStored notes that relationships were stored and starts
// the worker if it is not running. The caller holds s.prop.mu and has
// checked that the service is not closed (the worker is part of
// s.prop.bg, which Close waits for).
func (s *Service) relationshipsStored() {
	if s.cfg.OneShot {
		return
	}
	now := time.Now()
	r := &s.refsBG
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dirty {
		r.first = now
	}
	r.dirty, r.last = true, now
	if r.running {
		return
	}
	r.running = true
	s.prop.bg.Go(s.refreshRefsBehind)
}

// refreshRefsBehind is the worker: it waits for the additions to pause
// (or refsMaxWait), refreshes the index as a read would, and again while
// relationships were stored meanwhile.
func (s *Service) refreshRefsBehind() {
	ctx := s.prop.ctx
	r := &s.refsBG
	for {
		r.mu.Lock()
		if !r.dirty || ctx.Err() != nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		at := r.last.Add(refsQuiet)
		if limit := r.first.Add(refsMaxWait); limit.Before(at) {
			at = limit
		}
		if wait := time.Until(at); wait > 0 {
			r.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			continue
		}
		r.dirty = false
		r.mu.Unlock()
		err := searchRefs{s}.RefreshRefs(ctx)
		// A refresh cut short by Close fails in many ways (a cancelled
		// read, an identity not read): none is worth a warning.
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			s.log.WarnContext(ctx, "relationship index not refreshed after an addition; the next view refreshes it", "err", err)
		}
		r.mu.Lock()
		r.refreshes++
		r.mu.Unlock()
	}
}

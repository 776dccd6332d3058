package blindaccess

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente"
)

// refresher remembers what changed since the background worker last
// brought the sets up to date.
type refresher struct {
	mu    sync.Mutex
	colls map[string]bool // collections whose indicators changed
	terms bool            // the terms changed: every set
	wake  chan struct{}
}

func (r *refresher) init() { r.wake = make(chan struct{}, 1) }

// Changed tells blind access that indicators were stored in collection
// (the node's stored hook), or, with collection "", that the terms the
// gate applies changed (an agreement, a deletion…). The sets of the
// partners this replica serves are brought up to date in the background
// by [Service.Run], so that a partner's next request finds its set
// current or nearly: only what changed is read and evaluated. It never
// blocks.
func (s *Service) Changed(collection string) {
	r := &s.refresh
	r.mu.Lock()
	if collection == "" {
		r.terms = true
	} else {
		if r.colls == nil {
			r.colls = map[string]bool{}
		}
		r.colls[collection] = true
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// refreshKey is the key id of the background renderings in the gate's
// cache and audit log: a Peek, so nothing is served nor audited.
const refreshKey = "blind-refresh"

// Settle is how long the background worker waits after a change before
// it brings the sets up to date, so that a burst of additions costs one
// rendering.
const Settle = time.Second

// Run brings the sets of the partners this replica serves up to date
// after changes (see [Service.Changed]) and builds each one's set of the
// next epoch ahead of the epoch's end (blind.Server.Prepare: building a
// set of a million indicators takes tens of seconds), until ctx ends.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.refresh.wake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(Settle):
			}
			s.refreshNow(ctx)
		case <-tick.C:
			s.prepare(ctx)
		}
	}
}

// refreshNow renders again the sets that the changes recorded touch.
func (s *Service) refreshNow(ctx context.Context) {
	r := &s.refresh
	r.mu.Lock()
	colls, terms := r.colls, r.terms
	r.colls, r.terms = nil, false
	r.mu.Unlock()
	var partners []string
	for name, st := range s.states() {
		st.mu.Lock()
		touched := terms || slices.ContainsFunc(st.colls, func(c string) bool { return colls[c] })
		st.mu.Unlock()
		if touched {
			partners = append(partners, name)
		}
	}
	for _, partner := range partners {
		if ctx.Err() != nil {
			return
		}
		s.refreshPartner(ctx, partner)
	}
}

// refreshPartner renders partner's set through the gate (a Peek: nothing
// leaves), forgetting it when the partner has lost blind access.
func (s *Service) refreshPartner(ctx context.Context, partner string) {
	p := entente.Principal{KeyID: refreshKey, Org: partner, Role: entente.RolePartner}
	_, err := s.render(ctx, p, s.srv.Epochs().At(s.now()), true, "")
	switch {
	case err == nil:
	case entente.ErrorCode(err) == entente.EFORBIDDEN:
		s.forget(partner)
		s.log.InfoContext(ctx, "blind access ended; the partner's set is dropped", "partner", partner)
	default:
		s.log.WarnContext(ctx, "background rendering of a blinded set failed", "partner", partner, "err", err)
	}
}

// states returns the partners' states, so that each is locked without
// holding the service's lock (a rendering holds its partner's for long).
func (s *Service) states() map[string]*partnerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.partners)
}

// forget drops what the service holds of partner's set.
func (s *Service) forget(partner string) {
	s.mu.Lock()
	delete(s.partners, partner)
	s.mu.Unlock()
	s.srv.Forget(partner)
}

// prepareLead is the least time before an epoch ends at which the next
// epoch's sets are built.
const prepareLead = 15 * time.Minute

// prepare builds the next epoch's set of each partner whose current
// epoch ends within its lead (three times its last build, at least
// prepareLead).
func (s *Service) prepare(ctx context.Context) {
	now := s.now()
	ep := s.srv.Epochs()
	cur := ep.At(now)
	end := ep.Start(cur + 1)
	var due []string
	for name, st := range s.states() {
		st.mu.Lock()
		lead := max(prepareLead, 3*st.buildTime)
		if st.last.Epoch == cur && st.prepared != cur+1 && !now.Add(lead).Before(end) {
			st.prepared = cur + 1
			due = append(due, name)
		}
		st.mu.Unlock()
	}
	for _, partner := range due {
		start := time.Now()
		if err := s.srv.Prepare(ctx, partner); err != nil {
			s.log.WarnContext(ctx, "the next epoch's blinded set could not be built ahead", "partner", partner, "err", err)
			continue
		}
		s.log.InfoContext(ctx, "next epoch's blinded set built ahead", "partner", partner, "epoch", cur+1, "duration", time.Since(start))
	}
}

package node

import (
	"context"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// quotaSlots is how many slots a partner's quota window is counted in.
const quotaSlots = 24

// pushQuota counts the sightings each partner pushed in the last
// correlation window, so that a partner's quota (policy.Trust.Quota, or
// the node's default) bounds what is stored and passed on, not only what
// is correlated: a partner's flood stops at the first node it reaches.
type pushQuota struct {
	mu sync.Mutex
	// window and def are the correlation window and default quota (set
	// when correlation is enabled; no quota before).
	window time.Duration
	def    int
	// counts[partner][slot] is the sightings admitted in the slot that
	// starts at slot (Unix nanoseconds).
	counts map[string]map[int64]int
}

// configure sets the window and default quota (from correlation).
func (q *pushQuota) configure(window time.Duration, def int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.window, q.def = window, def
}

// admit returns how many of n more sightings partner may push at now
// under quota, and counts them.
func (q *pushQuota) admit(partner string, quota, n int, now time.Time) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	slot := int64(q.window / quotaSlots)
	cur := now.UnixNano() / slot * slot
	if q.counts == nil {
		q.counts = map[string]map[int64]int{}
	}
	c := q.counts[partner]
	if c == nil {
		c = map[int64]int{}
		q.counts[partner] = c
	}
	used := 0
	for s, k := range c {
		if s <= cur-int64(q.window) {
			delete(c, s)
			continue
		}
		used += k
	}
	ok := max(0, min(n, quota-used))
	c[cur] += ok
	return ok
}

// admitPushed refuses the sightings a partner pushes past its quota per
// correlation window (ingest.Config.Admit): they are neither stored, nor
// correlated, nor passed on, and the partner's status names the quota.
func (s *Service) admitPushed(ctx context.Context, p entente.Principal, objs []*stix.Object) []error {
	if p.Role != entente.RolePartner {
		return nil
	}
	s.quota.mu.Lock()
	window, def := s.quota.window, s.quota.def
	s.quota.mu.Unlock()
	if window <= 0 {
		return nil
	}
	n := 0
	for _, o := range objs {
		if o.Type == "sighting" {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	quota := def
	if ps, ok := s.st.(store.PolicyStore); ok {
		if party, err := ps.Party(ctx, p.Org); err == nil && party.Trust.Quota != nil {
			quota = *party.Trust.Quota
		}
	}
	if quota <= 0 {
		return nil
	}
	ok := s.quota.admit(p.Org, quota, n, s.now())
	if ok == n {
		return nil
	}
	errs := make([]error, len(objs))
	refusedN := n - ok
	refused := entente.Errorf(entente.EINVALID, "quota: partner %s may push %d sightings per %s; this one is past it (refused, not stored)", p.Org, quota, window)
	for i, o := range objs {
		if o.Type != "sighting" {
			continue
		}
		if ok > 0 {
			ok--
			continue
		}
		errs[i] = refused
	}
	s.log.WarnContext(ctx, "sightings past a partner's quota refused", "partner", p.Org, "quota", quota, "refused", refusedN, "key_id", p.KeyID)
	return errs
}

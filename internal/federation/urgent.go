package federation

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/entente-cti/entente"
)

// The urgent lane: retractions (a false positive, a quarantine's
// withdrawal) must reach every node within seconds even while an
// outbreak keeps every push queue busy. PushUrgent pushes the objects it
// names at once, to each push peer of their collection, in a lane of
// their own: it neither waits for the peer's running push (which may be
// carrying thousands of sightings) nor moves the peer's push checkpoint
// (the ordinary push carries them again later, which the receiver takes
// as duplicates). Each page still goes through the gate (the "push"
// channel, audited like any push) and the peer answers (acknowledges) it
// before the next urgent page to that peer; a failed urgent push is left
// to the ordinary push and its retries.

// maxUrgentIDs bounds the objects of one urgent push (the rest wait for
// the next one, or the ordinary push).
const maxUrgentIDs = 1000

// urgentLane is a peer's urgent lane: the objects waiting, by
// collection, and whether a worker runs.
type urgentLane struct {
	waiting map[string]map[string]bool // local collection id → object ids
	running bool
}

// PushUrgent pushes objects ids of collection (an id) at once, in the
// urgent lane, to every push peer of collection whose agreement covers
// it: the gate decides what each may receive, as for any push. It never
// blocks on a peer.
func (s *Service) PushUrgent(ctx context.Context, collection string, ids []string) {
	if len(ids) == 0 {
		return
	}
	targets, err := s.pushTargets(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "urgent push skipped; the ordinary push will carry it", "collection", collection, "err", err)
		return
	}
	for _, t := range targets {
		if t.collection != collection || !slices.Contains(t.collections, collection) {
			continue
		}
		s.queueUrgent(t.peer, collection, ids)
	}
}

// queueUrgent adds ids to peer's urgent lane and starts its worker
// unless it runs.
func (s *Service) queueUrgent(peer, collection string, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.urgent == nil {
		s.urgent = map[string]*urgentLane{}
	}
	l := s.urgent[peer]
	if l == nil {
		l = &urgentLane{waiting: map[string]map[string]bool{}}
		s.urgent[peer] = l
	}
	if l.waiting[collection] == nil {
		l.waiting[collection] = map[string]bool{}
	}
	for _, id := range ids {
		l.waiting[collection][id] = true
	}
	if l.running {
		return
	}
	l.running = true
	s.bg.Go(func() { s.urgentLoop(peer, l) })
}

// urgentLoop pushes what waits in peer's urgent lane until nothing does.
func (s *Service) urgentLoop(peer string, l *urgentLane) {
	for {
		s.mu.Lock()
		var collection string
		var ids []string
		for c, w := range l.waiting {
			collection = c
			ids = slices.Sorted(maps.Keys(w))
			if len(ids) > maxUrgentIDs {
				ids = ids[:maxUrgentIDs]
			}
			for _, id := range ids {
				delete(w, id)
			}
			if len(w) == 0 {
				delete(l.waiting, c)
			}
			break
		}
		if len(ids) == 0 || s.closed {
			l.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.pushUrgent(peer, collection, ids)
	}
}

// pushUrgent pushes objects ids of peer's local collection through the
// gate. A failure is logged: the ordinary push carries them.
func (s *Service) pushUrgent(id, collection string, ids []string) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	peer, err := s.cfg.Peers.Peer(ctx, id)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND {
			s.log.WarnContext(ctx, "urgent push: read peer", "peer", id, "err", err)
		}
		return
	}
	if peer.LocalCollection != collection {
		return
	}
	as := entente.Principal{KeyID: "peer:" + peer.ID, Org: peer.Org, Role: entente.RolePartner}
	page, err := s.cfg.Release(ctx, as, "push", collection, entente.ObjectQuery{IDs: ids, Limit: len(ids) + 1})
	if err != nil {
		s.log.WarnContext(ctx, "urgent push: the gate refused; the ordinary push will carry it", "peer", id, "err", err)
		return
	}
	if len(page.Entries) == 0 {
		return
	}
	objs := make([]json.RawMessage, len(page.Entries))
	for i, e := range page.Entries {
		objs[i] = e.Raw
	}
	ok, refused, err := s.remote(peer).Push(ctx, peer.Collection, objs)
	if err != nil {
		s.keyRefused(ctx, peer, err)
		s.log.WarnContext(ctx, "urgent push failed; the ordinary push will carry it", "peer", id, "name", peer.Name, "err", err)
		return
	}
	s.log.DebugContext(ctx, "pushed urgently", "peer", id, "pushed", ok, "refused", refused)
}

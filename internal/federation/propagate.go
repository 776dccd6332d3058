package federation

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/entente-cti/entente"
)

// Immediate pushes: new objects in a collection are pushed at once,
// through the policy gate, to every push peer of that collection whose
// agreement covers the collection and one of their types. A push already
// running for a peer is followed by one more run, so a burst of
// additions costs at most two pushes; a failed push is recorded in the
// peer's LastError and retried after a back-off (1 s, doubling up to
// 5 s), and by the periodic sync, both resuming from the push
// checkpoint.

// maxPushRetry bounds the back-off between retries of a failed immediate
// push (1 s, doubling); the periodic sync retries too. It is short
// because a peer cut off by a partition must have what it missed within
// seconds of the partition's end (the WAN drill's goal is 10 s), and a
// retry of an unreachable peer costs one refused connection.
const maxPushRetry = 5 * time.Second

// pushTargetsTTL bounds how long a change of peers or agreements made by
// another replica goes unnoticed; changes made through this node are
// seen at once (TermsChanged).
const pushTargetsTTL = 30 * time.Second

// pushTarget is a push peer and what its agreement covers.
type pushTarget struct {
	peer        string
	collection  string // the peer's local collection (an id)
	collections []string
	types       []string // empty: every type
}

// remote is a cached Remote and the peer settings it was made for.
type remote struct {
	apiRoot, discovery, token, pin string
	r                              Remote
}

// remote returns the cached Remote of peer, made anew when the peer's
// settings changed.
func (s *Service) remote(peer Peer) Remote {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.remotes == nil {
		s.remotes = map[string]*remote{}
	}
	r := s.remotes[peer.ID]
	if r == nil || r.apiRoot != peer.APIRoot || r.discovery != peer.DiscoveryURL || r.token != peer.Token || r.pin != peer.Pin {
		r = &remote{apiRoot: peer.APIRoot, discovery: peer.DiscoveryURL, token: peer.Token, pin: peer.Pin, r: s.cfg.Dial(peer)}
		s.remotes[peer.ID] = r
	}
	return r.r
}

// TermsChanged forgets the cached push peers and their agreements (after
// a change of peers, partners or agreements).
func (s *Service) TermsChanged() {
	s.mu.Lock()
	s.targets, s.targetsAt = nil, time.Time{}
	s.termsGen++
	s.pushPeers = nil
	s.mu.Unlock()
}

// pushTargets returns the push peers and their agreements, from the cache
// when it is fresh.
func (s *Service) pushTargets(ctx context.Context) ([]pushTarget, error) {
	s.mu.Lock()
	if !s.targetsAt.IsZero() && time.Since(s.targetsAt) < pushTargetsTTL {
		t := s.targets
		s.mu.Unlock()
		return t, nil
	}
	s.mu.Unlock()
	peers, err := s.cfg.Peers.Peers(ctx)
	if err != nil {
		return nil, err
	}
	var out []pushTarget
	for _, p := range peers {
		if p.Direction != DirectionPush && p.Direction != DirectionBoth || p.Org == "" {
			continue
		}
		a, err := s.cfg.Peers.Agreement(ctx, p.Org)
		if err != nil {
			if entente.ErrorCode(err) == entente.ENOTFOUND {
				continue // without an agreement only CLEAR objects go: the periodic sync sends them
			}
			return nil, err
		}
		out = append(out, pushTarget{peer: p.ID, collection: p.LocalCollection, collections: a.Collections, types: a.ObjectTypes})
	}
	s.mu.Lock()
	s.targets, s.targetsAt = out, time.Now()
	s.mu.Unlock()
	return out, nil
}

// Stored pushes at once, in the background, to the push peers of
// collection (an id) whose agreement covers it and one of types, after
// objects of those types were stored there. It never blocks on a peer.
func (s *Service) Stored(ctx context.Context, collection string, types []string) {
	s.stored(ctx, collection, types, s.kickPush)
}

// stored kicks, by kick, the pushes to the push peers of collection whose
// agreement covers it and one of types.
func (s *Service) stored(ctx context.Context, collection string, types []string, kick func(peer string)) {
	if len(types) == 0 {
		return
	}
	targets, err := s.pushTargets(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "immediate push skipped; the periodic sync will push", "collection", collection, "err", err)
		return
	}
	for _, t := range targets {
		if t.collection != collection || !slices.Contains(t.collections, collection) {
			continue
		}
		// A retraction (an opinion) follows what it retracts whatever
		// types the agreement covers: the gate decides.
		if len(t.types) > 0 && !slices.Contains(types, "opinion") && !slices.ContainsFunc(types, func(ty string) bool { return slices.Contains(t.types, ty) }) {
			continue
		}
		kick(t.peer)
	}
}

// lazyPushDelay is how long, at most, an addition that no receiver needs
// at once (see StoredLater) waits for the next push to its peers.
const lazyPushDelay = 2 * time.Second

// StoredLater is Stored for objects no peer needs at once (an alert whose
// evidence grew, its tier and state unchanged): each peer's push starts
// within lazyPushDelay, unless one starts sooner (for something else),
// which sends them too. A burst of such additions (a CERT's alerts
// updated at every sighting of an outbreak's last hour) costs each peer
// one push per delay, not one or two per addition, and leaves the node's
// CPU, and the receivers', to what is needed at once.
func (s *Service) StoredLater(ctx context.Context, collection string, types []string) {
	s.stored(ctx, collection, types, s.kickPushLater)
}

// kickPushLater starts a push to peer within lazyPushDelay, unless a
// push of peer starts before (it sends what was stored too) or one is
// scheduled already.
func (s *Service) kickPushLater(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if _, ok := s.later[peer]; ok {
		return
	}
	if s.later == nil {
		s.later = map[string]uint64{}
	}
	gen := s.pushStarts[peer]
	s.later[peer] = gen
	delay := cmp.Or(s.laterDelay, lazyPushDelay)
	s.bg.Go(func() {
		running := s.sleep(delay)
		s.mu.Lock()
		delete(s.later, peer)
		// A push that started since read the collection after what
		// waited was stored: it sent it.
		due := s.pushStarts[peer] == gen
		s.mu.Unlock()
		if due && running {
			s.kickPush(peer)
		}
	})
}

// kickPush starts a push to peer, or asks for one more after the sync or
// push running for it.
func (s *Service) kickPush(peer string) {
	s.mu.Lock()
	if s.syncing == nil {
		s.syncing = map[string]bool{}
	}
	if s.pushAgain == nil {
		s.pushAgain = map[string]bool{}
	}
	if s.syncing[peer] {
		s.pushAgain[peer] = true
		s.mu.Unlock()
		return
	}
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.syncing[peer] = true
	s.bg.Go(func() { s.pushLoop(peer) })
	s.mu.Unlock()
}

// syncDoneLocked ends a sync or push of peer, starting the push asked
// for meanwhile, if any. The caller holds s.mu.
func (s *Service) syncDoneLocked(peer string) {
	if s.pushAgain[peer] && !s.closed {
		delete(s.pushAgain, peer)
		// Still marked syncing: the push loop takes over.
		s.bg.Go(func() { s.pushLoop(peer) })
		return
	}
	delete(s.syncing, peer)
}

// pushLoop pushes to peer until no more push is asked for. The caller
// marked the peer syncing.
func (s *Service) pushLoop(peer string) {
	for {
		s.pushOnce(peer)
		s.mu.Lock()
		again := s.pushAgain[peer]
		delete(s.pushAgain, peer)
		if !again || s.closed {
			delete(s.syncing, peer)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// pushOnce runs the push of one peer (the gated push of SyncPeer),
// recording a failure in the peer's LastError.
func (s *Service) pushOnce(id string) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Minute)
	defer cancel()
	peer, err := s.pushPeer(ctx, id)
	if err != nil {
		if entente.ErrorCode(err) != entente.ENOTFOUND {
			s.log.WarnContext(ctx, "immediate push: read peer", "peer", id, "err", err)
		}
		return
	}
	var cp syncCheckpoint
	if len(peer.Checkpoint) > 0 && json.Unmarshal(peer.Checkpoint, &cp) != nil {
		cp = syncCheckpoint{}
	}
	s.unsavedPush(id, &cp)
	res := SyncResult{Peer: id}
	if err := s.push(ctx, peer, s.remote(peer), &cp, &res); err != nil {
		s.keyRefused(ctx, peer, err)
		s.log.WarnContext(ctx, "immediate push failed; it will be retried", "peer", id, "name", peer.Name, "err", err)
		b, _ := json.Marshal(cp)
		if uerr := s.recordPeer(context.WithoutCancel(ctx), id, b, s.now(), "push: "+err.Error(), true); uerr != nil {
			s.log.WarnContext(ctx, "record failed push", "peer", id, "err", uerr)
		}
		s.mu.Lock()
		s.peerChangedLocked(id)
		s.mu.Unlock()
		if s.ctx.Err() == nil {
			s.pushFailed(id)
		}
		return
	}
	s.pushSucceeded(id)
	if res.Pushed > 0 || res.PushFailed > 0 {
		s.log.DebugContext(ctx, "pushed at once", "peer", id, "pushed", res.Pushed, "push_failed", res.PushFailed)
	}
}

// peerCacheTTL bounds how long an immediate push uses a peer record
// it read before (pushPeer): a peer replaced or removed through another
// replica sharing the store is seen within it, as pushTargetsTTL bounds
// for the push targets.
const peerCacheTTL = pushTargetsTTL

// cachedPeer is a peer's record as an immediate push read it, under the
// peer's peerGen gen, at at.
type cachedPeer struct {
	peer Peer
	gen  uint64
	at   time.Time
}

// pushPeer returns peer id's record for an immediate push: the one read
// by an earlier push while nothing changed it through this node since
// (peerGen: its addition or removal, the end of each sync, a failed push;
// the checkpoints an immediate push reaches are kept in memory, see
// unsavedPush, and its record written with them is mirrored by
// pushRecorded) and for at most peerCacheTTL; else read from the store.
// A busy CERT's immediate pushes read their peer's record at every push:
// 6.5 % of its CPU in the WAN drill's outbreak.
func (s *Service) pushPeer(ctx context.Context, id string) (Peer, error) {
	now := time.Now()
	s.mu.Lock()
	gen := s.peerGen[id]
	if c, ok := s.pushPeers[id]; ok && c.gen == gen && now.Sub(c.at) < cmp.Or(s.peerTTL, peerCacheTTL) {
		s.mu.Unlock()
		return c.peer, nil
	}
	s.mu.Unlock()
	// Read after gen: a change made meanwhile bumps peerGen, and the
	// record read is then not kept.
	peer, err := s.cfg.Peers.Peer(ctx, id)
	if err != nil {
		return peer, err
	}
	s.mu.Lock()
	if s.peerGen[id] == gen {
		if s.pushPeers == nil {
			s.pushPeers = map[string]cachedPeer{}
		}
		s.pushPeers[id] = cachedPeer{peer: peer, gen: gen, at: now}
	}
	s.mu.Unlock()
	return peer, nil
}

// pushRecorded mirrors, in the cached record of peer id, the sync state
// a push recorded (checkpoint, lastSync, lastError), so that the next
// immediate push reads what the store will hold.
func (s *Service) pushRecorded(id string, checkpoint json.RawMessage, lastSync time.Time, lastError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.pushPeers[id]
	if !ok || c.gen != s.peerGen[id] {
		return
	}
	c.peer.Checkpoint, c.peer.LastSync, c.peer.LastError = checkpoint, lastSync, lastError
	s.pushPeers[id] = c
}

// pushFailed schedules one more push of peer after a back-off, unless one
// is scheduled already: a peer that comes back (a restarted node) gets
// what it missed within seconds, not at the next periodic sync.
func (s *Service) pushFailed(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.retrying[peer] {
		return
	}
	if s.failures == nil {
		s.failures, s.retrying = map[string]int{}, map[string]bool{}
	}
	n := s.failures[peer]
	s.failures[peer] = n + 1
	s.retrying[peer] = true
	delay := min(time.Second<<min(n, 5), maxPushRetry)
	s.bg.Go(func() {
		running := s.sleep(delay)
		s.mu.Lock()
		delete(s.retrying, peer)
		s.mu.Unlock()
		if running {
			s.kickPush(peer)
		}
	})
}

// sleep waits for d, or until the service closes; it reports whether
// the service still runs.
func (s *Service) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return s.ctx.Err() == nil
	}
}

// pushSucceeded resets peer's back-off.
func (s *Service) pushSucceeded(peer string) {
	s.mu.Lock()
	delete(s.failures, peer)
	s.mu.Unlock()
}

// pushProgress records the push checkpoint reached for peer, in memory
// (its record may wait to be written, see recordPeer).
func (s *Service) pushProgress(peer string, cp pushCheckpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pushed == nil {
		s.pushed = map[string]pushCheckpoint{}
	}
	s.pushed[peer] = cp
}

// forgetPush forgets the unsaved push checkpoint of a peer added or
// removed, and that its last push found nothing left.
func (s *Service) forgetPush(peer string) {
	s.mu.Lock()
	delete(s.pushed, peer)
	delete(s.pushedGen, peer)
	s.peerChangedLocked(peer)
	s.mu.Unlock()
}

// unsavedPush moves cp's push checkpoint forward to what was pushed but
// not saved yet.
func (s *Service) unsavedPush(peer string, cp *syncCheckpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pushed, ok := s.pushed[peer]; ok && pushed.AddedAfter.After(cp.Push.AddedAfter) {
		cp.Push = pushed
	}
}

// Busy reports whether a sync or push runs, or a push retry or a later
// push (StoredLater) is scheduled.
func (s *Service) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.syncing) > 0 || len(s.retrying) > 0 || len(s.later) > 0
}

// Close stops starting pushes and waits for those running to end, and
// writes the peer-state records that wait. What was not pushed yet is
// left to the next periodic sync.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closePeerState()
	s.cancel()
	s.bg.Wait()
}

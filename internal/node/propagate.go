package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// propagation is what makes objects move on as soon as they are stored,
// instead of at the next periodic sync or correlation scan:
//
//   - new objects in a collection are pushed at once, through the policy
//     gate (the push of [Service.SyncPeer]), to every push peer of that
//     collection whose agreement covers the collection and one of their
//     types. A push already running for a peer is followed by one more
//     run, so a burst of additions costs at most two pushes; a failed
//     push is recorded in the peer's LastError and retried after a
//     back-off (1 s, doubling up to 30 s), and by the periodic sync,
//     both resuming from the push checkpoint.
//   - sightings received from partners (pushed by a partner key, pulled
//     from a peer) and sightings posted through TAXII are correlated as
//     soon as they are durable, by one worker per node that takes every
//     batch waiting at once.
//
// Work is handed to goroutines: nothing here runs on the store's writer
// (a submission's Done callback only queues), and correlation locks are
// taken by the worker alone.
type propagation struct {
	mu sync.Mutex
	// queue holds stored batches waiting for the worker; working is set
	// while the worker runs.
	queue   []storedBatch
	working bool
	closed  bool
	bg      sync.WaitGroup
	// targets caches the push peers and their agreements.
	targets   []pushTarget
	targetsAt time.Time
	// clients caches one TAXII client per peer (its API root is read
	// once), keyed by peer id.
	clients map[string]*peerClient
	// opt is how peers are reached (set by RunPeerSync).
	opt SyncOptions
	// ctx is the context of background work, cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	// pushed is, per peer, the push checkpoint reached and when it was
	// last saved: immediate pushes save it at most every pushSaveEvery.
	pushed map[string]pushState
	// failures counts, per peer, the immediate pushes that failed in a
	// row; retrying holds the peers whose retry is scheduled.
	failures map[string]int
	retrying map[string]bool
}

// maxPushRetry bounds the back-off between retries of a failed immediate
// push (1 s, doubling); the periodic sync retries too.
const maxPushRetry = 30 * time.Second

// pushFailed schedules one more push of peer after a back-off, unless one
// is scheduled already: a peer that comes back (a restarted node) gets
// what it missed within seconds, not at the next periodic sync.
func (s *Service) pushFailed(peer string) {
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if s.prop.closed || s.prop.retrying[peer] {
		return
	}
	if s.prop.failures == nil {
		s.prop.failures, s.prop.retrying = map[string]int{}, map[string]bool{}
	}
	n := s.prop.failures[peer]
	s.prop.failures[peer] = n + 1
	s.prop.retrying[peer] = true
	delay := min(time.Second<<min(n, 5), maxPushRetry)
	s.prop.bg.Go(func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-s.prop.ctx.Done():
		case <-t.C:
		}
		s.prop.mu.Lock()
		delete(s.prop.retrying, peer)
		s.prop.mu.Unlock()
		if s.prop.ctx.Err() == nil {
			s.kickPush(peer)
		}
	})
}

// pushSucceeded resets peer's back-off.
func (s *Service) pushSucceeded(peer string) {
	s.prop.mu.Lock()
	delete(s.prop.failures, peer)
	s.prop.mu.Unlock()
}

// pushState is a peer's push checkpoint as reached in memory.
type pushState struct {
	cp    pushCheckpoint
	saved time.Time
}

// pushSaveEvery is how often, at most, an immediate push saves its peer's
// checkpoint. A busy node pushes to each peer many times a second, and
// each save is a durable write on the node's one writer; the checkpoint
// is kept in memory meanwhile and saved by the next push or periodic
// sync. After a crash the objects pushed since the last save are pushed
// again, which the receiver takes as duplicates (adding is idempotent).
const pushSaveEvery = 2 * time.Second

// pushProgress records the push checkpoint reached for peer and reports
// whether it is to be saved now (always when every is 0).
func (s *Service) pushProgress(peer string, cp pushCheckpoint, every time.Duration) bool {
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if s.prop.pushed == nil {
		s.prop.pushed = map[string]pushState{}
	}
	st := s.prop.pushed[peer]
	st.cp = cp
	save := every <= 0 || time.Since(st.saved) >= every
	if save {
		st.saved = time.Now()
	}
	s.prop.pushed[peer] = st
	return save
}

// forgetPush forgets the unsaved push checkpoint of a peer added or
// removed.
func (s *Service) forgetPush(peer string) {
	s.prop.mu.Lock()
	delete(s.prop.pushed, peer)
	s.prop.mu.Unlock()
}

// unsavedPush moves cp's push checkpoint forward to what was pushed but
// not saved yet.
func (s *Service) unsavedPush(peer string, cp *syncCheckpoint) {
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if st, ok := s.prop.pushed[peer]; ok && st.cp.AddedAfter.After(cp.Push.AddedAfter) {
		cp.Push = st.cp
	}
}

// storedBatch is one addition whose sightings wait for correlation and
// whose collection's push peers wait for a push.
type storedBatch struct {
	collection string
	types      []string
	sightings  []json.RawMessage
	// alerts received from others, for this node's alert lifecycle.
	alerts []json.RawMessage
}

// pushTarget is a push peer and what its agreement covers.
type pushTarget struct {
	peer        string
	collection  string // the peer's local collection (an id)
	collections []string
	types       []string // empty: every type
}

// peerClient is a cached client and the peer settings it was made for.
type peerClient struct {
	apiRoot, discovery, token string
	c                         *taxiiclient.Client
}

// pushTargetsTTL bounds how long a change of peers or agreements made by
// another replica goes unnoticed; changes made through this service are
// seen at once.
const pushTargetsTTL = 30 * time.Second

// Close stops starting background propagation and waits for the pushes
// and correlation running in the background to end. Call it before
// closing the store; the service is not used afterwards. What was not
// propagated yet is left to the periodic sync and correlation scan (or
// the replay at the next start).
func (s *Service) Close() {
	s.prop.mu.Lock()
	s.prop.closed = true
	s.prop.queue = nil
	s.prop.mu.Unlock()
	s.prop.cancel()
	s.prop.bg.Wait()
}

// invalidatePushTargets forgets the cached push peers (after a change of
// peers or agreements).
func (s *Service) invalidatePushTargets() {
	s.prop.mu.Lock()
	s.prop.targets, s.prop.targetsAt = nil, time.Time{}
	s.prop.mu.Unlock()
}

// pushTargets returns the push peers and their agreements, from the cache
// when it is fresh.
func (s *Service) pushTargets(ctx context.Context) ([]pushTarget, error) {
	s.prop.mu.Lock()
	if !s.prop.targetsAt.IsZero() && time.Since(s.prop.targetsAt) < pushTargetsTTL {
		t := s.prop.targets
		s.prop.mu.Unlock()
		return t, nil
	}
	s.prop.mu.Unlock()
	ps, err := s.policyStore()
	if err != nil {
		return nil, err
	}
	peers, err := ps.Peers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list push peers: %w", err)
	}
	var out []pushTarget
	for _, p := range peers {
		if p.Direction != DirectionPush && p.Direction != DirectionBoth || p.Org == "" {
			continue
		}
		a, err := ps.Agreement(ctx, p.Org)
		if err != nil {
			if entente.ErrorCode(err) == entente.ENOTFOUND {
				continue // without an agreement only CLEAR objects go: the periodic sync sends them
			}
			return nil, fmt.Errorf("read agreement with %s: %w", p.Org, err)
		}
		out = append(out, pushTarget{peer: p.ID, collection: p.LocalCollection, collections: a.Collections, types: a.ObjectTypes})
	}
	s.prop.mu.Lock()
	s.prop.targets, s.prop.targetsAt = out, time.Now()
	s.prop.mu.Unlock()
	return out, nil
}

// pushSoon pushes at once, in the background, to the push peers of
// collection (an id) whose agreement covers it and one of types. It must
// not be called on the store's writer (use stored).
func (s *Service) pushSoon(ctx context.Context, collection string, types []string) {
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
		if len(t.types) > 0 && !slices.ContainsFunc(types, func(ty string) bool { return slices.Contains(t.types, ty) }) {
			continue
		}
		s.kickPush(t.peer)
	}
}

// kickPush starts a push to peer, or asks for one more after the sync or
// push running for it.
func (s *Service) kickPush(peer string) {
	s.pol.mu.Lock()
	if s.pol.syncing == nil {
		s.pol.syncing = map[string]bool{}
	}
	if s.pol.pushAgain == nil {
		s.pol.pushAgain = map[string]bool{}
	}
	if s.pol.syncing[peer] {
		s.pol.pushAgain[peer] = true
		s.pol.mu.Unlock()
		return
	}
	s.pol.syncing[peer] = true
	s.pol.mu.Unlock()
	if !s.goBackground(func() { s.pushLoop(peer) }) {
		s.pol.mu.Lock()
		delete(s.pol.syncing, peer)
		s.pol.mu.Unlock()
	}
}

// goBackground runs f in a goroutine Close waits for, unless the service
// is closed.
func (s *Service) goBackground(f func()) bool {
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if s.prop.closed {
		return false
	}
	s.prop.bg.Go(f)
	return true
}

// syncDone ends a sync or push of peer, starting the push asked for
// meanwhile, if any. The caller holds s.pol.mu.
func (s *Service) syncDoneLocked(peer string) {
	if s.pol.pushAgain[peer] {
		delete(s.pol.pushAgain, peer)
		// Still marked syncing: the push loop takes over.
		if s.goBackground(func() { s.pushLoop(peer) }) {
			return
		}
	}
	delete(s.pol.syncing, peer)
}

// pushLoop pushes to peer until no more push is asked for. The caller
// marked the peer syncing.
func (s *Service) pushLoop(peer string) {
	for {
		s.pushOnce(peer)
		s.pol.mu.Lock()
		again := s.pol.pushAgain[peer]
		delete(s.pol.pushAgain, peer)
		s.prop.mu.Lock()
		closed := s.prop.closed
		s.prop.mu.Unlock()
		if !again || closed {
			delete(s.pol.syncing, peer)
			s.pol.mu.Unlock()
			return
		}
		s.pol.mu.Unlock()
	}
}

// pushOnce runs the push of one peer (the gated push of SyncPeer),
// recording a failure in the peer's LastError.
func (s *Service) pushOnce(id string) {
	ctx, cancel := context.WithTimeout(s.prop.ctx, 5*time.Minute)
	defer cancel()
	ps, err := s.policyStore()
	if err != nil {
		return
	}
	peer, err := ps.Peer(ctx, id)
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
	if err := s.push(ctx, ps, peer, s.peerClient(peer), &cp, &res, pushSaveEvery); err != nil {
		s.log.WarnContext(ctx, "immediate push failed; it will be retried", "peer", id, "name", peer.Name, "err", err)
		b, _ := json.Marshal(cp)
		if uerr := ps.UpdatePeerSync(context.WithoutCancel(ctx), id, b, s.now(), err.Error()); uerr != nil {
			s.log.WarnContext(ctx, "record failed push", "peer", id, "err", uerr)
		}
		if s.prop.ctx.Err() == nil {
			s.pushFailed(id)
		}
		return
	}
	s.pushSucceeded(id)
	if res.Pushed > 0 || res.PushFailed > 0 {
		s.log.DebugContext(ctx, "pushed at once", "peer", id, "pushed", res.Pushed, "push_failed", res.PushFailed)
	}
}

// peerClient returns the cached TAXII client of peer, made anew when the
// peer's settings changed.
func (s *Service) peerClient(peer Peer) *taxiiclient.Client {
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if s.prop.clients == nil {
		s.prop.clients = map[string]*peerClient{}
	}
	pc := s.prop.clients[peer.ID]
	if pc == nil || pc.apiRoot != peer.APIRoot || pc.discovery != peer.DiscoveryURL || pc.token != peer.Token {
		opt := s.prop.opt
		if opt.Limits.PageSize == 0 {
			opt.Limits.PageSize = store.MaxPageSize
		}
		pc = &peerClient{apiRoot: peer.APIRoot, discovery: peer.DiscoveryURL, token: peer.Token,
			c: &taxiiclient.Client{DiscoveryURL: peer.DiscoveryURL, APIRoot: peer.APIRoot, HTTP: opt.HTTP,
				Auth: taxiiclient.Auth{Token: peer.Token}, UserAgent: "entente", Limits: opt.Limits}}
		s.prop.clients[peer.ID] = pc
	}
	return pc.c
}

// stored hands a durable addition to the background worker: when
// received (from partners, peers or TAXII clients) its sightings are
// correlated and its alerts taken into this node's lifecycle; its
// collection's push peers are pushed to. It never blocks and takes no other lock than the
// queue's, so the store's writer may call it.
func (s *Service) stored(collection string, objs []*stix.Object, received bool) {
	if len(objs) == 0 {
		return
	}
	b := storedBatch{collection: collection}
	for _, o := range objs {
		if !slices.Contains(b.types, o.Type) {
			b.types = append(b.types, o.Type)
		}
		if received && o.Type == "sighting" {
			// A copy: the caller's buffers may be reused.
			b.sightings = append(b.sightings, append(json.RawMessage(nil), o.Raw...))
		}
		if received && o.Type == correlate.AlertType {
			b.alerts = append(b.alerts, append(json.RawMessage(nil), o.Raw...))
		}
	}
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if s.prop.closed {
		return
	}
	s.prop.queue = append(s.prop.queue, b)
	if !s.prop.working {
		s.prop.working = true
		s.prop.bg.Go(s.drain)
	}
}

// drain is the background worker: it takes every batch waiting, pushes
// first (so that sightings move on without waiting for correlation),
// then correlates the sightings of each collection in one call, until the
// queue is empty.
func (s *Service) drain() {
	ctx := s.prop.ctx
	for {
		s.prop.mu.Lock()
		batches := s.prop.queue
		s.prop.queue = nil
		if len(batches) == 0 || s.prop.closed {
			s.prop.working = false
			s.prop.mu.Unlock()
			return
		}
		s.prop.mu.Unlock()
		types := map[string][]string{}
		sightings := map[string][]json.RawMessage{}
		alerts := map[string][]json.RawMessage{}
		var order []string
		for _, b := range batches {
			if _, ok := types[b.collection]; !ok {
				order = append(order, b.collection)
			}
			for _, t := range b.types {
				if !slices.Contains(types[b.collection], t) {
					types[b.collection] = append(types[b.collection], t)
				}
			}
			sightings[b.collection] = append(sightings[b.collection], b.sightings...)
			alerts[b.collection] = append(alerts[b.collection], b.alerts...)
		}
		for _, c := range order {
			s.pushSoon(ctx, c, types[c])
		}
		for _, c := range order {
			if len(sightings[c]) == 0 {
				continue
			}
			if err := s.correlateIn(ctx, c, sightings[c]); err != nil && !errors.Is(err, context.Canceled) {
				s.log.ErrorContext(ctx, "correlation of received sightings failed; the scan will retry", "collection", c, "err", err)
			}
		}
		for _, c := range order {
			if len(alerts[c]) == 0 {
				continue
			}
			if err := s.receiveAlerts(ctx, c, alerts[c]); err != nil && !errors.Is(err, context.Canceled) {
				s.log.ErrorContext(ctx, "received alerts not taken into the lifecycle", "collection", c, "err", err)
			}
		}
	}
}

// WaitIdle waits until nothing the node started by itself is running or
// waiting: no stored batch waits for propagation, no push or sync runs
// and no push retry is scheduled (for tests and orderly shutdown). It
// returns ctx's error if ctx ends first.
func (s *Service) WaitIdle(ctx context.Context) error {
	for {
		s.prop.mu.Lock()
		busy := len(s.prop.queue) > 0 || s.prop.working || len(s.prop.retrying) > 0
		s.prop.mu.Unlock()
		s.pol.mu.Lock()
		busy = busy || len(s.pol.syncing) > 0
		s.pol.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

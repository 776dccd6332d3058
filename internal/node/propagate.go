package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/retraction"
	"github.com/entente-cti/entente/internal/stix"
)

// propagation is what makes objects move on as soon as they are stored,
// instead of at the next periodic sync or correlation scan:
//
//   - new objects in a collection are pushed at once, through the policy
//     gate, to the push peers whose agreement covers them (see
//     [federation.Service.Stored]);
//   - sightings received from partners (pushed by a partner key, pulled
//     from a peer) and sightings posted through TAXII are correlated as
//     soon as they are durable, and alerts received from others enter
//     this node's lifecycle, by one worker per node that takes every
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
	// ctx is the context of background work, cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	// own holds, by opinion id, the retractions that an action of the
	// node (a false positive marked, a quarantine) stores and applies
	// itself: the worker does not apply them a second time.
	own map[string]*ownRetraction
	// alerts holds, by alert id, the state of the latest version of each
	// alert stored (see evidenceOnly).
	alerts map[string]alertState
}

// alertState is what a receiver acts on in an alert: its tier and
// whether it was withdrawn or superseded (revoked). A new version that
// changes none of them only says that the evidence grew (counts,
// countries, times).
type alertState struct {
	tier               string
	withdrawn, revoked bool
}

// maxAlertStates bounds the alert states propagation keeps; past it they
// are forgotten, and the next version of each alert is pushed at once.
const maxAlertStates = 1 << 16

// evidenceOnly reports whether every object of objs is a version of an
// alert stored before with the same tier and state: what it adds is
// evidence, which the push peers need not have at once (see
// federation.Service.StoredLater). It records the alerts' states. The
// caller holds s.prop.mu.
func (s *Service) evidenceOnly(objs []*stix.Object) bool {
	if s.prop.alerts == nil || len(s.prop.alerts) > maxAlertStates {
		s.prop.alerts = map[string]alertState{}
	}
	only := len(objs) > 0
	for _, o := range objs {
		if o.Type != correlate.AlertType {
			only = false
			continue
		}
		var a struct {
			Tier      string `json:"tier"`
			Withdrawn bool   `json:"withdrawn"`
			Revoked   bool   `json:"revoked"`
		}
		if json.Unmarshal(o.Raw, &a) != nil {
			only = false
			continue
		}
		st := alertState{tier: a.Tier, withdrawn: a.Withdrawn, revoked: a.Revoked}
		if prev, ok := s.prop.alerts[o.ID]; !ok || prev != st {
			only = false
		}
		s.prop.alerts[o.ID] = st
	}
	return only
}

// ownRetraction is a retraction stored by an action of the node that
// applies it itself (see Service.ownRetractions). done is closed once the
// action applied it (applied true) or gave up (applied false: the worker
// applies it).
type ownRetraction struct {
	id      string
	done    chan struct{}
	applied bool
}

// storedBatch is one addition whose sightings wait for correlation and
// whose collection's push peers wait for a push.
type storedBatch struct {
	collection string
	types      []string
	sightings  []json.RawMessage
	// alerts received from others, for this node's alert lifecycle.
	alerts []json.RawMessage
	// retractions, by the node's analysts or received, to honour.
	retractions []json.RawMessage
	// later: the batch only adds evidence to alerts (evidenceOnly); its
	// pushes may wait.
	later bool
}

// ownRetractions registers retractions ops (opinions) that the caller is
// about to store and then applies itself (withholdRetracted, then
// correlation): the background worker, which applies every retraction
// stored, does not apply them a second time — a second change of terms
// and a second pass of correlation over what they name, before the
// pushes that carry them start — but waits for the caller to have
// withheld what they name before pushing, so that it still never leaves
// in those pushes. The caller calls finish once it withheld it (applied
// true) or gave up (false: the worker applies them).
func (s *Service) ownRetractions(ops []json.RawMessage) (finish func(applied bool)) {
	regs := make([]*ownRetraction, 0, len(ops))
	s.prop.mu.Lock()
	if s.prop.own == nil {
		s.prop.own = map[string]*ownRetraction{}
	}
	for _, op := range ops {
		if r, ok := retraction.Parse(op); ok {
			o := &ownRetraction{id: r.ID, done: make(chan struct{})}
			s.prop.own[r.ID] = o
			regs = append(regs, o)
		}
	}
	s.prop.mu.Unlock()
	return func(applied bool) {
		s.prop.mu.Lock()
		defer s.prop.mu.Unlock()
		for _, o := range regs {
			o.applied = applied
			close(o.done)
			if !applied && s.prop.own[o.id] == o {
				// Not stored, or the worker applies it when it takes it.
				delete(s.prop.own, o.id)
			}
		}
	}
}

// takeOwn returns the registration of retraction raw when an action of
// the node applies it itself, and forgets it (nil otherwise).
func (s *Service) takeOwn(raw json.RawMessage) *ownRetraction {
	r, ok := retraction.Parse(raw)
	if !ok {
		return nil
	}
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	o := s.prop.own[r.ID]
	delete(s.prop.own, r.ID)
	return o
}

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
	s.fed.Close()
}

// stored hands a durable addition to the background worker: when
// received (from partners, peers or TAXII clients) its sightings are
// correlated and its alerts taken into this node's lifecycle; its
// collection's push peers are pushed to. It never blocks and takes no
// other lock than the queue's, so the store's writer may call it.
func (s *Service) stored(collection string, objs []*stix.Object, received bool) {
	if len(objs) == 0 {
		return
	}
	s.writes.Add(1)
	b := storedBatch{collection: collection}
	indicators, relationships := false, false
	for _, o := range objs {
		indicators = indicators || o.Type == "indicator"
		relationships = relationships || o.Type == "relationship"
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
		if o.Type == "opinion" && retraction.IsRetraction(o.Raw) {
			b.retractions = append(b.retractions, append(json.RawMessage(nil), o.Raw...))
		}
	}
	if indicators {
		// Partners' blinded sets take them in the background.
		s.blindChanged(collection)
	}
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if s.prop.closed {
		return
	}
	if relationships {
		// The reference index reads them in the background (refs.go).
		s.relationshipsStored()
	}
	b.later = s.evidenceOnly(objs)
	s.prop.queue = append(s.prop.queue, b)
	if !s.prop.working {
		s.prop.working = true
		s.prop.bg.Go(s.drain)
	}
}

// imported is told of a durable batch of an import: it counts as a write
// of this service (storeVersion) and, when it holds relationships, the
// reference index reads them in the background. An import is neither
// correlated nor pushed at once (the periodic scan and sync take it).
func (s *Service) imported(collection string, objs []*stix.Object) {
	if len(objs) == 0 {
		return
	}
	s.writes.Add(1)
	if !slices.ContainsFunc(objs, func(o *stix.Object) bool { return o.Type == "relationship" }) {
		return
	}
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	if !s.prop.closed {
		s.relationshipsStored()
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
		retractions := map[string][]json.RawMessage{}
		type own struct {
			collection string
			raw        json.RawMessage
			reg        *ownRetraction
		}
		var owned []own
		var order []string
		// now: the collections with a batch whose pushes may not wait.
		now := map[string]bool{}
		for _, b := range batches {
			if _, ok := types[b.collection]; !ok {
				order = append(order, b.collection)
			}
			now[b.collection] = now[b.collection] || !b.later
			for _, t := range b.types {
				if !slices.Contains(types[b.collection], t) {
					types[b.collection] = append(types[b.collection], t)
				}
			}
			sightings[b.collection] = append(sightings[b.collection], b.sightings...)
			alerts[b.collection] = append(alerts[b.collection], b.alerts...)
			for _, raw := range b.retractions {
				if reg := s.takeOwn(raw); reg != nil {
					owned = append(owned, own{b.collection, raw, reg})
					continue
				}
				retractions[b.collection] = append(retractions[b.collection], raw)
			}
		}
		// The node's own actions apply their retractions themselves: wait
		// for that rather than apply them again, and apply those they
		// gave up on.
		for _, o := range owned {
			select {
			case <-o.reg.done:
				if !o.reg.applied {
					retractions[o.collection] = append(retractions[o.collection], o.raw)
				}
			case <-ctx.Done():
			}
		}
		// Retractions first: what they withdraw must not leave in the
		// pushes that follow.
		for _, c := range order {
			if len(retractions[c]) == 0 {
				continue
			}
			if _, err := s.applyRetractions(ctx, c, retractions[c]); err != nil && !errors.Is(err, context.Canceled) {
				s.log.ErrorContext(ctx, "retractions not applied; they apply at the next start", "collection", c, "err", err)
			}
		}
		for _, c := range order {
			if now[c] {
				s.fed.Stored(ctx, c, types[c])
			} else {
				// Alerts whose evidence grew, nothing else: the members
				// need the new alerts, escalations and withdrawals of a
				// burst at once, not every count along the way.
				s.fed.StoredLater(ctx, c, types[c])
			}
		}
		for _, c := range order {
			if len(sightings[c]) == 0 {
				continue
			}
			if err := s.alerting.Correlate(ctx, c, sightings[c]); err != nil && !errors.Is(err, context.Canceled) {
				s.log.ErrorContext(ctx, "correlation of received sightings failed; the scan will retry", "collection", c, "err", err)
			}
		}
		for _, c := range order {
			if len(alerts[c]) == 0 {
				continue
			}
			if err := s.alerting.Received(ctx, c, alerts[c]); err != nil && !errors.Is(err, context.Canceled) {
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
		busy := len(s.prop.queue) > 0 || s.prop.working
		s.prop.mu.Unlock()
		if !busy && !s.fed.Busy() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/entente-cti/entente/internal/alerting"
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
	// urgent holds the retractions and withdrawn alerts waiting for the
	// urgent worker, which pushes them in the federation's urgent lane
	// and honours the retractions, ahead of everything the worker above
	// waits on; urgentWorking is set while it runs. urgentQueued counts
	// the batches queued there and urgentDone those it withheld: the
	// worker above pushes a batch only once the retractions queued with
	// or before it are withheld (urgentCond, on mu, tells it).
	urgent        []storedBatch
	urgentWorking bool
	urgentQueued  uint64
	urgentDone    uint64
	urgentCond    *sync.Cond
	closed        bool
	bg            sync.WaitGroup
	// ctx is the context of background work, cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
}

// storedBatch is one addition whose sightings wait for correlation and
// whose collection's push peers wait for a push.
type storedBatch struct {
	collection string
	types      []string
	sightings  []json.RawMessage
	// alerts received from others, for this node's alert lifecycle.
	alerts []json.RawMessage
	// retractions, by the node's analysts or received, to honour (in
	// the urgent lane); urgentSeq is the urgent lane's count of batches
	// once this one's retractions were queued there.
	retractions []json.RawMessage
	urgentSeq   uint64
	// notices are the ids of withdrawn alerts (what a retraction or a
	// quarantine withdrew), pushed in the urgent lane too.
	notices []string
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
	s.prop.urgent = nil
	if s.prop.urgentCond != nil {
		s.prop.urgentCond.Broadcast()
	}
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
	indicators := false
	for _, o := range objs {
		indicators = indicators || o.Type == "indicator"
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
		if o.Type == correlate.AlertType && bytes.Contains(o.Raw, []byte(`"withdrawn":true`)) {
			b.notices = append(b.notices, o.ID)
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
	if len(b.retractions) > 0 || len(b.notices) > 0 {
		s.prop.urgent = append(s.prop.urgent, storedBatch{collection: collection, retractions: b.retractions, notices: b.notices})
		s.prop.urgentQueued++
		b.retractions, b.notices = nil, nil
		if !s.prop.urgentWorking {
			s.prop.urgentWorking = true
			s.prop.bg.Go(s.drainUrgent)
		}
	}
	b.urgentSeq = s.prop.urgentQueued
	s.prop.queue = append(s.prop.queue, b)
	if !s.prop.working {
		s.prop.working = true
		s.prop.bg.Go(s.drain)
	}
}

// correlateChunk bounds the sightings the propagation worker correlates
// in one call (one hold of correlation's lock).
const correlateChunk = 256

// drain is the background worker: it takes every batch waiting, waits
// until the urgent worker withheld what the retractions among them
// withdraw, pushes (so that sightings move on without waiting for
// correlation), then correlates the sightings of each collection in
// chunks, until the queue is empty.
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
		// Retractions first: what they withdraw must not leave in the
		// pushes that follow. The urgent worker honours them.
		if !s.waitUrgent(ctx, batches[len(batches)-1].urgentSeq) {
			continue // closed: the loop ends
		}
		for _, c := range order {
			s.fed.Stored(ctx, c, types[c])
		}
		for _, c := range order {
			if len(sightings[c]) == 0 {
				continue
			}
			// In chunks: between two, the urgent worker's retractions
			// take correlation's lock rather than wait for the whole burst.
			for chunk := range slices.Chunk(sightings[c], correlateChunk) {
				if err := s.alerting.Correlate(ctx, c, chunk); err != nil && !errors.Is(err, context.Canceled) {
					s.log.ErrorContext(ctx, "correlation of received sightings failed; the scan will retry", "collection", c, "err", err)
				}
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

// drainUrgent is the urgent worker: it takes every retraction and
// withdrawn alert waiting, pushes them in the federation's urgent lane
// and honours the retractions (what they withdraw leaves the node's
// outputs, the alerts they supported are withdrawn or lowered), until
// none waits. It does not wait for the
// other worker, which may be correlating a burst of sightings.
func (s *Service) drainUrgent() {
	ctx := s.prop.ctx
	for {
		s.prop.mu.Lock()
		batches := s.prop.urgent
		s.prop.urgent = nil
		done := s.prop.urgentDone + uint64(len(batches))
		if len(batches) == 0 || s.prop.closed {
			s.prop.urgentWorking = false
			s.prop.urgentCond.Broadcast()
			s.prop.mu.Unlock()
			return
		}
		s.prop.mu.Unlock()
		var order []string
		byColl := map[string][]json.RawMessage{}
		notices := map[string][]string{}
		for _, b := range batches {
			if _, ok := byColl[b.collection]; !ok {
				order = append(order, b.collection)
				byColl[b.collection] = nil
			}
			byColl[b.collection] = append(byColl[b.collection], b.retractions...)
			notices[b.collection] = append(notices[b.collection], b.notices...)
		}
		// Pushed (in the background: a retraction releases nothing it
		// names, and the gate decides what it may name), withheld, and
		// only then may the propagation worker push what came after;
		// correlation last (it may have to wait for the other worker's
		// correlation to let go of its lock).
		for _, c := range order {
			ids := notices[c]
			for _, raw := range byColl[c] {
				if r, _, ok := retraction.ParseAny(raw); ok {
					ids = append(ids, r.ID)
				}
			}
			s.fed.PushUrgent(ctx, c, ids)
		}
		var rs []alerting.Retraction
		for _, c := range order {
			if len(byColl[c]) == 0 {
				continue
			}
			r, err := s.withholdRetractions(ctx, c, byColl[c])
			if err != nil && !errors.Is(err, context.Canceled) {
				s.log.ErrorContext(ctx, "retractions not applied; they apply at the next start", "collection", c, "err", err)
			}
			rs = append(rs, r...)
		}
		s.prop.mu.Lock()
		s.prop.urgentDone = done
		s.prop.urgentCond.Broadcast()
		s.prop.mu.Unlock()
		if _, err := s.alerting.Retract(ctx, rs); err != nil && !errors.Is(err, context.Canceled) {
			s.log.ErrorContext(ctx, "retractions not applied to correlation; they apply at the next start", "err", err)
		}
	}
}

// waitUrgent waits until the urgent worker has honoured the first seq
// batches of retractions queued; false when propagation closed first.
func (s *Service) waitUrgent(ctx context.Context, seq uint64) bool {
	s.prop.mu.Lock()
	defer s.prop.mu.Unlock()
	for s.prop.urgentDone < seq && !s.prop.closed && ctx.Err() == nil {
		if !s.prop.urgentWorking {
			// Nothing is left for it to honour (it ended on a close).
			break
		}
		s.prop.urgentCond.Wait()
	}
	return !s.prop.closed && ctx.Err() == nil
}

// WaitIdle waits until nothing the node started by itself is running or
// waiting: no stored batch waits for propagation, no push or sync runs
// and no push retry is scheduled (for tests and orderly shutdown). It
// returns ctx's error if ctx ends first.
func (s *Service) WaitIdle(ctx context.Context) error {
	for {
		s.prop.mu.Lock()
		busy := len(s.prop.queue) > 0 || s.prop.working || len(s.prop.urgent) > 0 || s.prop.urgentWorking
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

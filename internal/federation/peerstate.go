package federation

import (
	"cmp"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/entente-cti/entente"
)

// Peer-state writes. A busy node records its peers' sync state often:
// every immediate push moves its peer's checkpoint, and every periodic
// sync records when it ran, even when it found nothing to send (a CERT
// with 88 peers: 88 records a minute at rest, and one per peer pushed to
// in a burst). Each record is a durable write on the node's one writer,
// and records made one after the other were rarely committed together:
// each cost a commit and an fsync, on the writer that also stores what
// the peers push.
//
// The records that may wait are kept in memory, the latest per peer, and
// written together, peerStateEvery after the first of them, as one group
// commit (SQLite's writer commits the calls waiting at the same time in
// one transaction): a push's checkpoint (after a crash the objects pushed
// since are pushed again, which the receiver takes as duplicates; the
// checkpoint reached is kept in memory meanwhile, see unsavedPush) and
// the record of a periodic sync that succeeded after one that did.
// Records that must be seen at once are written at once: an error, the
// first sync of a peer, the error of a sync cleared, a pull's checkpoint
// after a stored page, an admin's sync. A record written at once waits
// for a group in flight that holds a record of the same peer, so that an
// older record never lands after a newer one.

// peerStateEvery is how long a peer-state record may wait to be written
// with the others (see recordPeer).
const peerStateEvery = 2 * time.Second

// peerRecord is one peer's sync state to record (UpdatePeerSync's
// arguments).
type peerRecord struct {
	checkpoint json.RawMessage
	lastSync   time.Time
	lastError  string
}

// peerStates holds the records that wait, and the group being written.
type peerStates struct {
	mu sync.Mutex
	// pending holds the latest record of each peer waiting; armed is set
	// while a group is scheduled.
	pending map[string]peerRecord
	armed   bool
	// inflight holds the peers whose record the group in flight writes;
	// done is closed when it ends (nil when none is in flight).
	inflight map[string]bool
	done     chan struct{}
	// closed: records are written at once (the service is closing).
	closed bool
	// groups counts the groups written (tests); every is how long a
	// record may wait (peerStateEvery unless a test sets it).
	groups int
	every  time.Duration
}

// recordPeer records peer id's sync state: at once when urgent (it
// returns once the record is durable), else with the other records that
// wait, within peerStateEvery (it returns at once).
func (s *Service) recordPeer(ctx context.Context, id string, checkpoint json.RawMessage, lastSync time.Time, lastError string, urgent bool) error {
	st := &s.state
	st.mu.Lock()
	if !urgent && !st.closed {
		if st.pending == nil {
			st.pending = map[string]peerRecord{}
		}
		st.pending[id] = peerRecord{checkpoint: checkpoint, lastSync: lastSync, lastError: lastError}
		if !st.armed {
			st.armed = true
			s.bg.Go(s.flushPeersLater)
		}
		st.mu.Unlock()
		return nil
	}
	// This record is newer than the one waiting, which it replaces, and
	// lands after the one in flight, if any.
	delete(st.pending, id)
	st.waitInflightLocked(id)
	st.mu.Unlock()
	return s.cfg.Peers.UpdatePeerSync(ctx, id, checkpoint, lastSync, lastError)
}

// waitInflightLocked waits until the group in flight, if it writes a
// record of peer id, has ended. The caller holds st.mu, which is released
// while waiting.
func (st *peerStates) waitInflightLocked(id string) {
	for st.inflight[id] {
		d := st.done
		st.mu.Unlock()
		<-d
		st.mu.Lock()
	}
}

// forgetPeerState drops the record waiting for peer id and waits for the
// group in flight to have written its own, if any: called before a
// peer is added or removed, so that no record of a former peer of that
// id lands on the new one.
func (s *Service) forgetPeerState(id string) {
	st := &s.state
	st.mu.Lock()
	delete(st.pending, id)
	st.waitInflightLocked(id)
	st.mu.Unlock()
}

// flushPeersLater writes the records waiting after peerStateEvery, or at
// once when the service closes.
func (s *Service) flushPeersLater() {
	s.state.mu.Lock()
	every := cmp.Or(s.state.every, peerStateEvery)
	s.state.mu.Unlock()
	s.sleep(every)
	s.flushPeers()
}

// flushPeers writes every record waiting, together: one call per peer,
// all at once, which the store commits as one group.
func (s *Service) flushPeers() {
	st := &s.state
	st.mu.Lock()
	// One group at a time: a peer's records land in order.
	for st.done != nil {
		d := st.done
		st.mu.Unlock()
		<-d
		st.mu.Lock()
	}
	batch := st.pending
	st.pending, st.armed = nil, false
	if len(batch) == 0 {
		st.mu.Unlock()
		return
	}
	st.inflight = make(map[string]bool, len(batch))
	for id := range batch {
		st.inflight[id] = true
	}
	done := make(chan struct{})
	st.done = done
	st.groups++
	st.mu.Unlock()

	// Not the service's context: what waited is written when it closes.
	ctx := context.WithoutCancel(s.ctx)
	var wg sync.WaitGroup
	for id, r := range batch {
		wg.Go(func() {
			err := s.cfg.Peers.UpdatePeerSync(ctx, id, r.checkpoint, r.lastSync, r.lastError)
			if err != nil && entente.ErrorCode(err) != entente.ENOTFOUND {
				// The checkpoint reached stays in memory; the next record
				// of the peer carries it.
				s.log.WarnContext(ctx, "record peer sync state", "peer", id, "err", err)
			}
		})
	}
	wg.Wait()

	st.mu.Lock()
	st.inflight, st.done = nil, nil
	close(done)
	st.mu.Unlock()
}

// closePeerState makes later records be written at once; the records
// waiting are written by the flush that the service's end wakes.
func (s *Service) closePeerState() {
	st := &s.state
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
}

// PeerStateGroups reports how many groups of waiting peer-state records
// were written (for tests and metrics).
func (s *Service) PeerStateGroups() int {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.state.groups
}

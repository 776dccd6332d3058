package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// pushPage is the page size of pushes.
const pushPage = 1000

// pushCheckpoint is where a push resumes: the date_added of the last
// local entry pushed.
type pushCheckpoint struct {
	AddedAfter time.Time `json:"added_after,omitzero"`
}

// syncCheckpoint is a peer's stored checkpoint: the pull's (the remote's
// own format, kept as it gave it) and the push's.
type syncCheckpoint struct {
	Pull json.RawMessage `json:"pull,omitempty"`
	Push pushCheckpoint  `json:"push"`
}

// SyncResult says what one sync of a peer did.
type SyncResult struct {
	Peer string `json:"peer"`
	// Pulled counts the valid objects received; Stored the versions that
	// were new; Invalid the objects refused as invalid STIX.
	Pulled  int `json:"pulled"`
	Stored  int `json:"stored"`
	Invalid int `json:"invalid"`
	// Pushed counts the objects the gate released and the peer accepted;
	// PushFailed those it refused.
	Pushed     int `json:"pushed"`
	PushFailed int `json:"push_failed"`
}

// SyncPeer pulls from and pushes to one peer, as its direction says
// (admin only). A pull stores the peer's objects in the peer's local
// collection, with their provenance (the peer and its organisation), and
// persists the checkpoint after each stored page, so that a sync
// interrupted by a crash resumes where it stopped. A push sends the
// objects of the local collection that the policy gate releases to the
// peer's organisation (and audits them). The outcome is recorded in the
// peer's LastSync and LastError whatever happens. ECONFLICT while the
// peer is syncing already.
func (s *Service) SyncPeer(ctx context.Context, p entente.Principal, id string) (SyncResult, error) {
	res := SyncResult{Peer: id}
	if err := requireAdmin(p, "syncing peers"); err != nil {
		return res, err
	}
	peer, err := s.cfg.Peers.Peer(ctx, id)
	if err != nil {
		return res, err
	}
	// The admin reads the outcome in the peer's record at once.
	return s.syncPeer(ctx, peer, true)
}

// syncListed syncs peer as RunPeerSync listed it, when gen (its peerGen
// then) shows its record unchanged since: the sync of a listed peer does
// not read it again. A record changed meanwhile (a sync run by an admin
// moved its checkpoints, it was removed or replaced) is read again.
func (s *Service) syncListed(ctx context.Context, peer Peer, gen uint64) (SyncResult, error) {
	s.mu.Lock()
	changed := s.peerGen[peer.ID] != gen
	s.mu.Unlock()
	if changed {
		var err error
		if peer, err = s.cfg.Peers.Peer(ctx, peer.ID); err != nil {
			return SyncResult{Peer: peer.ID}, err
		}
	}
	return s.syncPeer(ctx, peer, false)
}

// peerChangedLocked records a change to peer's stored record (see
// peerGen). The caller holds s.mu.
func (s *Service) peerChangedLocked(peer string) {
	if s.peerGen == nil {
		s.peerGen = map[string]uint64{}
	}
	s.peerGen[peer]++
}

// syncPeer is SyncPeer of a peer record just read. Its outcome is
// recorded at once when urgent, when it failed, when it is the peer's
// first sync or clears an error; else with the other peer-state records
// that wait (see recordPeer).
func (s *Service) syncPeer(ctx context.Context, peer Peer, urgent bool) (SyncResult, error) {
	id := peer.ID
	res := SyncResult{Peer: id}
	s.mu.Lock()
	if s.syncing == nil {
		s.syncing = map[string]bool{}
	}
	if s.syncing[id] {
		s.mu.Unlock()
		return res, entente.Errorf(entente.ECONFLICT, "peer %s is already syncing", id)
	}
	s.syncing[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.peerChangedLocked(id)
		s.syncDoneLocked(id)
		s.mu.Unlock()
	}()

	var cp syncCheckpoint
	if len(peer.Checkpoint) > 0 {
		if err := json.Unmarshal(peer.Checkpoint, &cp); err != nil {
			s.log.WarnContext(ctx, "peer checkpoint is unreadable; starting over", "peer", id, "err", err)
			cp = syncCheckpoint{}
		}
	}
	s.unsavedPush(id, &cp)
	r := s.remote(peer)
	var errs []error
	if peer.Direction == DirectionPull || peer.Direction == DirectionBoth {
		if err := s.pull(ctx, peer, r, &cp, &res); err != nil {
			errs = append(errs, fmt.Errorf("pull: %w", err))
		}
	}
	if peer.Direction == DirectionPush || peer.Direction == DirectionBoth {
		if err := s.push(ctx, peer, r, &cp, &res); err != nil {
			errs = append(errs, fmt.Errorf("push: %w", err))
		}
	}
	syncErr := errors.Join(errs...)
	s.keyRefused(ctx, peer, syncErr)
	lastErr := ""
	if syncErr != nil {
		lastErr = syncErr.Error()
		s.log.WarnContext(ctx, "peer sync failed", "peer", id, "name", peer.Name, "err", syncErr)
	} else {
		s.log.InfoContext(ctx, "peer synced", "peer", id, "name", peer.Name, "pulled", res.Pulled, "stored", res.Stored,
			"invalid", res.Invalid, "pushed", res.Pushed, "push_failed", res.PushFailed)
	}
	b, _ := json.Marshal(cp)
	urgent = urgent || syncErr != nil || peer.LastError != "" || peer.LastSync.IsZero()
	if err := s.recordPeer(context.WithoutCancel(ctx), id, b, s.now(), lastErr, urgent); err != nil {
		return res, errors.Join(syncErr, fmt.Errorf("record sync of peer %s: %w", id, err))
	}
	if syncErr != nil {
		return res, &entente.Error{Code: entente.EUNAVAILABLE, Message: fmt.Sprintf("sync of peer %s: %v", id, syncErr), Err: syncErr}
	}
	return res, nil
}

// origin is the organisation recorded as the origin of what a peer
// sends: its identity, or a name that is never the node's own.
func origin(peer Peer) string {
	if peer.Org != "" {
		return peer.Org
	}
	return "peer:" + peer.ID
}

// pull stores a peer's new objects page by page, with their provenance,
// persisting the checkpoint after each page.
func (s *Service) pull(ctx context.Context, peer Peer, r Remote, cp *syncCheckpoint, res *SyncResult) error {
	from := origin(peer)
	return r.Pull(ctx, peer.Collection, cp.Pull, func(page *Pulled) error {
		res.Pulled += len(page.Objects)
		res.Invalid += len(page.Invalid)
		for _, inv := range page.Invalid {
			s.log.WarnContext(ctx, "peer sent an invalid object; skipped", "peer", peer.ID, "url", page.URL, "err", inv.Error())
		}
		if len(page.Objects) > 0 {
			valid, invalid := validate(page.Objects)
			res.Invalid += invalid
			if len(valid) > 0 {
				n, err := s.cfg.Receive.Receive(ctx, peer.LocalCollection, valid, Origin{Org: from, Peer: peer.ID, At: page.ReceivedAt})
				if err != nil {
					return fmt.Errorf("store %d objects from peer %s: %w", len(valid), peer.ID, err)
				}
				res.Stored += n
			}
		}
		cp.Pull = page.Checkpoint
		b, _ := json.Marshal(cp)
		if err := s.recordPeer(ctx, peer.ID, b, s.now(), "", true); err != nil {
			return fmt.Errorf("save checkpoint of peer %s: %w", peer.ID, err)
		}
		return nil
	})
}

// validate decodes and validates a page's objects, on every core, and
// returns the valid ones in order with the number of invalid ones.
func validate(objects []json.RawMessage) ([]*stix.Object, int) {
	out := make([]*stix.Object, len(objects))
	check := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o, err := stix.Decode(objects[i])
			if err == nil && stix.Validate(o) == nil {
				out[i] = o
			}
		}
	}
	if workers := runtime.GOMAXPROCS(0); len(objects) >= 512 && workers > 1 {
		var wg sync.WaitGroup
		chunk := (len(objects) + workers - 1) / workers
		for lo := 0; lo < len(objects); lo += chunk {
			wg.Go(func() { check(lo, min(lo+chunk, len(objects))) })
		}
		wg.Wait()
	} else {
		check(0, len(objects))
	}
	valid := out[:0]
	for _, o := range out {
		if o != nil {
			valid = append(valid, o)
		}
	}
	return valid, len(objects) - len(valid)
}

// push sends the peer what the gate releases to its organisation from
// the local collection, added since the last push. The checkpoint
// reached after each page is kept in memory (see unsavedPush) and its
// record waits to be written with the other peers' (see recordPeer).
func (s *Service) push(ctx context.Context, peer Peer, r Remote, cp *syncCheckpoint, res *SyncResult) (err error) {
	// Whatever was stored before now is read by this push (or was sent):
	// a later push scheduled before now is not needed (kickPushLater).
	s.mu.Lock()
	if s.pushStarts == nil {
		s.pushStarts = map[string]uint64{}
	}
	s.pushStarts[peer.ID]++
	s.mu.Unlock()
	gen, idle := s.idlePush(ctx, peer, cp.Push)
	if idle {
		return nil
	}
	defer func() { s.pushDone(peer.ID, gen, err) }()
	as := entente.Principal{KeyID: "peer:" + peer.ID, Org: peer.Org, Role: entente.RolePartner}
	q := entente.ObjectQuery{AddedAfter: cp.Push.AddedAfter, Limit: pushPage}
	for {
		page, err := s.cfg.Release(ctx, as, "push", peer.LocalCollection, q)
		if err != nil {
			return err
		}
		if len(page.Entries) > 0 {
			objs := make([]json.RawMessage, len(page.Entries))
			var last time.Time
			for i, e := range page.Entries {
				objs[i] = e.Raw
				if e.DateAdded.After(last) {
					last = e.DateAdded
				}
			}
			ok, refused, err := r.Push(ctx, peer.Collection, objs)
			res.Pushed += ok
			res.PushFailed += refused
			if err != nil {
				return err
			}
			if last.After(cp.Push.AddedAfter) {
				cp.Push.AddedAfter = last
			}
			s.pushProgress(peer.ID, cp.Push)
			b, _ := json.Marshal(cp)
			at := s.now()
			if err := s.recordPeer(ctx, peer.ID, b, at, "", false); err != nil {
				return fmt.Errorf("save checkpoint of peer %s: %w", peer.ID, err)
			}
			s.pushRecorded(peer.ID, b, at, "")
		}
		if !page.More {
			return nil
		}
		q.Next = page.Next
	}
}

// idlePush reports whether a push to peer from checkpoint cp is certain
// to find nothing to send, without asking the gate: the local collection
// holds no entry added after cp (its LatestAdded is not after it), so
// the push's first page query, which selects only entries added after
// cp, would be empty whatever the terms — the push never goes back
// before its checkpoint, a widened agreement included. As a safeguard it
// also requires that the peer's last push ran to the end without error
// under the same terms (no change of peers, partners or agreements made
// through this node since) and that the peer's last sync recorded no
// error, so a push that would fail still runs and records why. It
// returns the terms generation the push runs under.
func (s *Service) idlePush(ctx context.Context, peer Peer, cp pushCheckpoint) (uint64, bool) {
	s.mu.Lock()
	gen := s.termsGen
	last, ok := s.pushedGen[peer.ID]
	s.mu.Unlock()
	if s.cfg.LatestAdded == nil || !ok || last != gen || peer.LastError != "" {
		return gen, false
	}
	latest, err := s.cfg.LatestAdded(ctx, peer.LocalCollection)
	if err != nil {
		return gen, false // the push runs and reports the error
	}
	return gen, !latest.After(cp.AddedAfter)
}

// pushDone records how a push to peer under terms generation gen ended:
// only a push run to the end without error lets the next be skipped
// (see idlePush).
func (s *Service) pushDone(peer string, gen uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.pushedGen, peer)
		return
	}
	if s.pushedGen == nil {
		s.pushedGen = map[string]uint64{}
	}
	s.pushedGen[peer] = gen
}

// RunPeerSync syncs every peer every interval until ctx ends, each in its
// own goroutine: a slow or failing peer never delays the others, and its
// error is recorded in its LastError and logged. A peer still syncing when
// its next turn comes is skipped that turn. Every peer syncs at once when
// it starts; later rounds spread the peers over half the interval.
func (s *Service) RunPeerSync(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(interval)
	defer t.Stop()
	for round := 0; ; {
		peers, err := s.cfg.Peers.Peers(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "list peers for sync", "err", err)
		}
		for i, peer := range peers {
			s.mu.Lock()
			busy := s.syncing[peer.ID]
			gen := s.peerGen[peer.ID]
			s.mu.Unlock()
			if busy {
				continue
			}
			// After the first round (which catches up at once), the peers'
			// syncs are spread over half the interval rather than started
			// together: a node with many peers does not stall its other
			// work (immediate pushes) with a burst every interval.
			delay := time.Duration(0)
			if round > 0 {
				delay = interval / 2 * time.Duration(i) / time.Duration(len(peers))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if delay > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(delay):
					}
				}
				// Errors are recorded in the peer's LastError and logged.
				_, _ = s.syncListed(ctx, peer, gen)
			}()
		}
		round++
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

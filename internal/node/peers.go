package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/store"
	"github.com/entente-cti/entente/internal/taxiiclient"
)

// Peer is another TAXII 2.1 server the node federates with (see
// [store.Peer]). Its Token is a secret of the peer's: [Service.Peers]
// never returns it.
type Peer = store.Peer

// Peer directions.
const (
	DirectionPull = store.DirectionPull
	DirectionPush = store.DirectionPush
	DirectionBoth = store.DirectionBoth
)

// pushCheckpoint is where a push resumes: the date_added of the last
// local entry pushed.
type pushCheckpoint struct {
	AddedAfter time.Time `json:"added_after,omitzero"`
}

// syncCheckpoint is a peer's stored checkpoint: the pull's and the
// push's.
type syncCheckpoint struct {
	Pull taxiiclient.Checkpoint `json:"pull"`
	Push pushCheckpoint         `json:"push"`
}

// AddPeer records a peer to federate with (admin only) and returns it
// without its token. The ID defaults to a new UUID; Direction to pull.
// EINVALID names the field at fault.
func (s *Service) AddPeer(ctx context.Context, p entente.Principal, peer Peer) (Peer, error) {
	if err := requireAdmin(p, "managing peers"); err != nil {
		return Peer{}, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return Peer{}, err
	}
	if peer.ID == "" {
		peer.ID = uuid.NewString()
	}
	if peer.Direction == "" {
		peer.Direction = DirectionPull
	}
	if err := s.checkPeer(ctx, &peer); err != nil {
		return Peer{}, joinAudit(err, s.auditAdmin(ctx, p, "peer.add", peer.Org, "peer "+peer.ID+" "+peer.Name, err))
	}
	peer.Created = s.now()
	peer.Checkpoint, peer.LastSync, peer.LastError = nil, time.Time{}, ""
	if err := ps.PutPeer(ctx, peer); err != nil {
		return Peer{}, fmt.Errorf("add peer %s: %w", peer.ID, err)
	}
	s.log.InfoContext(ctx, "peer added", "peer", peer.ID, "name", peer.Name, "api_root", peer.APIRoot, "direction", peer.Direction, "by", p.KeyID)
	peer.Token = ""
	s.invalidatePushTargets()
	s.forgetPush(peer.ID)
	return peer, s.auditAdmin(ctx, p, "peer.add", peer.Org, fmt.Sprintf("peer %s %q %s collection %s into %s direction %s", peer.ID, peer.Name, peer.APIRoot, peer.Collection, peer.LocalCollection, peer.Direction), nil)
}

// checkPeer validates a peer's configuration and resolves its local
// collection to an id.
func (s *Service) checkPeer(ctx context.Context, peer *Peer) error {
	var errs []string
	u, err := url.Parse(peer.APIRoot)
	if peer.APIRoot == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Sprintf("api_root: %q is not an http(s) URL", peer.APIRoot))
	}
	if peer.Collection == "" {
		errs = append(errs, "collection: the peer's collection id is required")
	}
	switch peer.Direction {
	case DirectionPull, DirectionPush, DirectionBoth:
	default:
		errs = append(errs, fmt.Sprintf("direction: %q is not pull, push or both", peer.Direction))
	}
	if peer.Org != "" && !strings.HasPrefix(peer.Org, "identity--") {
		errs = append(errs, fmt.Sprintf("org: %q is not a STIX identity id", peer.Org))
	}
	if peer.Direction != DirectionPull && peer.Org == "" {
		errs = append(errs, "org: pushing needs the peer's organisation (its agreement decides what is pushed)")
	}
	if c, err := s.collection(ctx, peer.LocalCollection); err != nil {
		errs = append(errs, fmt.Sprintf("local_collection: %v", err))
	} else {
		peer.LocalCollection = c.ID
	}
	if len(errs) > 0 {
		return entente.Errorf(entente.EINVALID, "peer %s: %s", peer.ID, strings.Join(errs, "; "))
	}
	return nil
}

// Peers lists the peers with their sync state (admin only), without
// their tokens.
func (s *Service) Peers(ctx context.Context, p entente.Principal) ([]Peer, error) {
	if err := requireAdmin(p, "listing peers"); err != nil {
		return nil, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return nil, err
	}
	peers, err := ps.Peers(ctx)
	if err != nil {
		return nil, err
	}
	for i := range peers {
		peers[i].Token = ""
	}
	return peers, nil
}

// Peer returns one peer with its sync state (admin only), without its
// token. ENOTFOUND if none.
func (s *Service) Peer(ctx context.Context, p entente.Principal, id string) (Peer, error) {
	if err := requireAdmin(p, "reading peers"); err != nil {
		return Peer{}, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return Peer{}, err
	}
	peer, err := ps.Peer(ctx, id)
	peer.Token = ""
	return peer, err
}

// RemovePeer removes a peer (admin only). ENOTFOUND if none.
func (s *Service) RemovePeer(ctx context.Context, p entente.Principal, id string) error {
	if err := requireAdmin(p, "managing peers"); err != nil {
		return err
	}
	ps, err := s.policyStore()
	if err != nil {
		return err
	}
	if err := ps.DeletePeer(ctx, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "peer removed", "peer", id, "by", p.KeyID)
	s.invalidatePushTargets()
	s.forgetPush(id)
	return s.auditAdmin(ctx, p, "peer.remove", "", "peer "+id, nil)
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

// SyncOptions tune how a peer is reached; the zero value takes the
// taxiiclient defaults.
type SyncOptions struct {
	// HTTP is the HTTP client (nil: a client without a global timeout;
	// the taxiiclient limits bound every exchange).
	HTTP *http.Client
	// Limits bound the exchange with the peer.
	Limits taxiiclient.Limits
}

// SyncPeer pulls from and pushes to one peer, as its direction says
// (admin only). A pull stores the peer's objects in the peer's local
// collection, records their provenance (the peer and its organisation)
// and persists the checkpoint after each stored page, so that a sync
// interrupted by a crash resumes where it stopped. A push sends the
// objects of the local collection that the policy gate releases to the
// peer's organisation (and audits them). The outcome is recorded in the
// peer's LastSync and LastError whatever happens.
func (s *Service) SyncPeer(ctx context.Context, p entente.Principal, id string, opt SyncOptions) (SyncResult, error) {
	res := SyncResult{Peer: id}
	if err := requireAdmin(p, "syncing peers"); err != nil {
		return res, err
	}
	ps, err := s.policyStore()
	if err != nil {
		return res, err
	}
	peer, err := ps.Peer(ctx, id)
	if err != nil {
		return res, err
	}
	s.pol.mu.Lock()
	if s.pol.syncing == nil {
		s.pol.syncing = map[string]bool{}
	}
	if s.pol.syncing[id] {
		s.pol.mu.Unlock()
		return res, entente.Errorf(entente.ECONFLICT, "peer %s is already syncing", id)
	}
	s.pol.syncing[id] = true
	s.pol.mu.Unlock()
	defer func() {
		s.pol.mu.Lock()
		s.syncDoneLocked(id)
		s.pol.mu.Unlock()
	}()

	var cp syncCheckpoint
	if len(peer.Checkpoint) > 0 {
		if err := json.Unmarshal(peer.Checkpoint, &cp); err != nil {
			s.log.WarnContext(ctx, "peer checkpoint is unreadable; starting over", "peer", id, "err", err)
			cp = syncCheckpoint{}
		}
	}
	s.unsavedPush(id, &cp)
	if opt.Limits.PageSize == 0 {
		// Large pages: each page costs a few durable commits on both sides.
		opt.Limits.PageSize = store.MaxPageSize
	}
	client := &taxiiclient.Client{DiscoveryURL: peer.DiscoveryURL, APIRoot: peer.APIRoot, HTTP: opt.HTTP,
		Auth: taxiiclient.Auth{Token: peer.Token}, UserAgent: "entente", Limits: opt.Limits}
	var errs []error
	if peer.Direction == DirectionPull || peer.Direction == DirectionBoth {
		if err := s.pull(ctx, ps, peer, client, &cp, &res); err != nil {
			errs = append(errs, err)
		}
	}
	if peer.Direction == DirectionPush || peer.Direction == DirectionBoth {
		if err := s.push(ctx, ps, peer, client, &cp, &res, 0); err != nil {
			errs = append(errs, err)
		}
	}
	syncErr := errors.Join(errs...)
	lastErr := ""
	if syncErr != nil {
		lastErr = syncErr.Error()
		s.log.WarnContext(ctx, "peer sync failed", "peer", id, "name", peer.Name, "err", syncErr)
	} else {
		s.log.InfoContext(ctx, "peer synced", "peer", id, "name", peer.Name, "pulled", res.Pulled, "stored", res.Stored,
			"invalid", res.Invalid, "pushed", res.Pushed, "push_failed", res.PushFailed)
	}
	b, _ := json.Marshal(cp)
	if err := ps.UpdatePeerSync(context.WithoutCancel(ctx), id, b, s.now(), lastErr); err != nil {
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
func (s *Service) pull(ctx context.Context, ps store.PolicyStore, peer Peer, client *taxiiclient.Client, cp *syncCheckpoint, res *SyncResult) error {
	from := origin(peer)
	_, err := client.Pull(ctx, peer.Collection, cp.Pull, func(page *taxiiclient.Page) error {
		res.Pulled += len(page.Objects)
		res.Invalid += len(page.Invalid)
		for _, inv := range page.Invalid {
			s.log.WarnContext(ctx, "peer sent an invalid object; skipped", "peer", peer.ID, "url", page.URL, "err", inv.Error())
		}
		if len(page.Objects) > 0 {
			valid, failures := validateObjects(page.Objects)
			res.Invalid += len(failures)
			if len(valid) > 0 {
				outcomes, err := s.st.AddObjects(ctx, peer.LocalCollection, valid)
				if err != nil {
					return fmt.Errorf("store %d objects from peer %s: %w", len(valid), peer.ID, err)
				}
				prov := make([]store.Provenance, 0, len(outcomes))
				for _, o := range outcomes {
					if o.Duplicate {
						continue // an existing version keeps its provenance
					}
					prov = append(prov, store.Provenance{Collection: peer.LocalCollection, ObjectID: o.ID, Version: o.Version,
						Origin: from, Peer: peer.ID, ReceivedAt: page.ReceivedAt})
				}
				res.Stored += len(prov)
				if err := ps.SetProvenance(ctx, prov); err != nil {
					return fmt.Errorf("record provenance of %d objects from peer %s: %w", len(prov), peer.ID, err)
				}
				// Correlated and passed on at once (sightings, push peers).
				s.stored(peer.LocalCollection, valid, true)
			}
		}
		cp.Pull = page.Checkpoint
		b, _ := json.Marshal(cp)
		if err := ps.UpdatePeerSync(ctx, peer.ID, b, s.now(), ""); err != nil {
			return fmt.Errorf("save checkpoint of peer %s: %w", peer.ID, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	return nil
}

// push sends the peer what the gate releases to its organisation from
// the local collection, added since the last push. The checkpoint is
// saved after each page, or, with saveEvery > 0, at most that often (it
// is kept in memory meanwhile, see unsavedPush).
func (s *Service) push(ctx context.Context, ps store.PolicyStore, peer Peer, client *taxiiclient.Client, cp *syncCheckpoint, res *SyncResult, saveEvery time.Duration) error {
	as := entente.Principal{KeyID: "peer:" + peer.ID, Org: peer.Org, Role: entente.RolePartner}
	q := entente.ObjectQuery{AddedAfter: cp.Push.AddedAfter, Limit: DefaultLimit}
	for {
		page, err := s.releaseOn(ctx, as, "push", peer.LocalCollection, q)
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		if len(page.Entries) > 0 {
			objs := make([]json.RawMessage, len(page.Entries))
			for i, e := range page.Entries {
				objs[i] = e.Raw
			}
			pr, err := client.Push(ctx, peer.Collection, objs)
			if pr != nil {
				res.Pushed += pr.Success
				res.PushFailed += pr.Failure
			}
			if err != nil {
				return fmt.Errorf("push: %w", err)
			}
			if _, last, ok := DateAddedRange(page); ok && last.After(cp.Push.AddedAfter) {
				cp.Push.AddedAfter = last
			}
			if s.pushProgress(peer.ID, cp.Push, saveEvery) {
				b, _ := json.Marshal(cp)
				if err := ps.UpdatePeerSync(ctx, peer.ID, b, s.now(), ""); err != nil {
					return fmt.Errorf("save checkpoint of peer %s: %w", peer.ID, err)
				}
			}
		}
		if !page.More {
			return nil
		}
		q.Next = page.Next
	}
}

// RunPeerSync syncs every peer every interval until ctx ends, each in its
// own goroutine: a slow or failing peer never delays the others, and its
// error is recorded in its LastError and logged. A peer still syncing when
// its next turn comes is skipped that turn. Every peer syncs at once when
// it starts; later rounds spread the peers over half the interval.
func (s *Service) RunPeerSync(ctx context.Context, interval time.Duration, opt SyncOptions) {
	ps, err := s.policyStore()
	if err != nil {
		s.log.ErrorContext(ctx, "peer sync disabled", "err", err)
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	admin := entente.Principal{KeyID: "sync", Org: s.cfg.Org, Role: entente.RoleAdmin}
	s.prop.mu.Lock()
	s.prop.opt = opt // immediate pushes reach peers the same way
	s.prop.mu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for round := 0; ; {
		peers, err := ps.Peers(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "list peers for sync", "err", err)
		}
		for i, peer := range peers {
			s.pol.mu.Lock()
			busy := s.pol.syncing[peer.ID]
			s.pol.mu.Unlock()
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
				_, _ = s.SyncPeer(ctx, admin, peer.ID, opt)
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

// recordPushed records the provenance of the new object versions a
// partner pushed: its organisation, through its key.
func (s *Service) recordPushed(ctx context.Context, p entente.Principal, collection string, outcomes []entente.AddOutcome, at time.Time) error {
	ps, err := s.policyStore()
	if err != nil {
		return err
	}
	from := p.Org
	if from == "" {
		from = "key:" + p.KeyID
	}
	prov := make([]store.Provenance, 0, len(outcomes))
	for _, o := range outcomes {
		if !o.Duplicate {
			prov = append(prov, store.Provenance{Collection: collection, ObjectID: o.ID, Version: o.Version, Origin: from, Peer: "key:" + p.KeyID, ReceivedAt: at})
		}
	}
	if err := ps.SetProvenance(ctx, prov); err != nil {
		return fmt.Errorf("record provenance of %d objects pushed by %s: %w", len(prov), from, err)
	}
	return nil
}

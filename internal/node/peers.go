package node

import (
	"context"
	"fmt"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// Peer is another TAXII 2.1 server the node federates with (see
// [entente.Peer]). Its Token is a secret of the peer's: [Service.Peers]
// never returns it.
type Peer = entente.Peer

// Peer directions.
const (
	DirectionPull = entente.DirectionPull
	DirectionPush = entente.DirectionPush
	DirectionBoth = entente.DirectionBoth
)

// SyncResult says what one sync of a peer did.
type SyncResult = federation.SyncResult

// AddPeer records a peer to federate with (see [federation.Service.AddPeer]).
func (s *Service) AddPeer(ctx context.Context, p entente.Principal, peer Peer) (Peer, error) {
	return s.fed.AddPeer(ctx, p, peer)
}

// Peers lists the peers with their sync state (admin only), without
// their tokens.
func (s *Service) Peers(ctx context.Context, p entente.Principal) ([]Peer, error) {
	return s.fed.Peers(ctx, p)
}

// Peer returns one peer with its sync state (admin only), without its
// token. ENOTFOUND if none.
func (s *Service) Peer(ctx context.Context, p entente.Principal, id string) (Peer, error) {
	return s.fed.Peer(ctx, p, id)
}

// RemovePeer removes a peer (admin only). ENOTFOUND if none.
func (s *Service) RemovePeer(ctx context.Context, p entente.Principal, id string) error {
	return s.fed.RemovePeer(ctx, p, id)
}

// SyncPeer pulls from and pushes to one peer, as its direction says
// (see [federation.Service.SyncPeer]).
func (s *Service) SyncPeer(ctx context.Context, p entente.Principal, id string) (SyncResult, error) {
	return s.fed.SyncPeer(ctx, p, id)
}

// RunPeerSync syncs every peer every interval until ctx ends (see
// [federation.Service.RunPeerSync]).
func (s *Service) RunPeerSync(ctx context.Context, interval time.Duration) {
	s.fed.RunPeerSync(ctx, interval)
}

// receiver stores what peers send, for the federation.
type receiver struct{ s *Service }

// Receive implements federation.Receiver: the objects are stored in the
// local collection, each new version with where it came from, and passed
// on (correlation, pushes).
func (r receiver) Receive(ctx context.Context, collection string, objs []*stix.Object, from federation.Origin) (int, error) {
	s := r.s
	ps, err := s.policyStore()
	if err != nil {
		return 0, err
	}
	outcomes, err := s.st.AddObjects(ctx, collection, objs)
	if err != nil {
		return 0, err
	}
	prov := make([]store.Provenance, 0, len(outcomes))
	for _, o := range outcomes {
		if o.Duplicate {
			continue // an existing version keeps its provenance
		}
		prov = append(prov, store.Provenance{Collection: collection, ObjectID: o.ID, Version: o.Version,
			Origin: from.Org, Peer: from.Peer, ReceivedAt: from.At})
	}
	if err := ps.SetProvenance(ctx, prov); err != nil {
		return 0, fmt.Errorf("record provenance of %d objects from peer %s: %w", len(prov), from.Peer, err)
	}
	// Correlated and passed on at once (sightings, push peers).
	s.stored(collection, objs, true)
	return len(prov), nil
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

package node

import (
	"context"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/federation"
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

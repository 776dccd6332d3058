// Package federation is how a node exchanges objects with its peers —
// partner nodes and any TAXII 2.1 server: it pulls a peer's new objects
// into a local collection, with their provenance, and pushes what the
// policy gate releases to a peer's organisation, at once when objects
// are stored and periodically, resuming from durable checkpoints after
// a crash and retrying with back-off when a peer is down.
//
// It depends on ports only: the store of peers and agreements
// ([PeerStore]), the gate that releases what is pushed ([Releaser]), the
// ingest that stores what is pulled ([Receiver]) and a [Dialer] that
// reaches a peer (the TAXII client adapter, wired in cmd/entente).
package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/pin"
	"github.com/entente-cti/entente/internal/policy"
	"github.com/entente-cti/entente/internal/stix"
)

// Peer is another TAXII 2.1 server the node federates with.
type Peer = entente.Peer

// Peer directions.
const (
	DirectionPull = entente.DirectionPull
	DirectionPush = entente.DirectionPush
	DirectionBoth = entente.DirectionBoth
)

// PeerStore keeps peers and their sync state, and answers which
// agreement covers a peer's organisation (every store backend
// implements it).
type PeerStore interface {
	PutPeer(ctx context.Context, p Peer) error
	Peer(ctx context.Context, id string) (Peer, error)
	Peers(ctx context.Context) ([]Peer, error)
	DeletePeer(ctx context.Context, id string) error
	UpdatePeerSync(ctx context.Context, id string, checkpoint json.RawMessage, lastSync time.Time, lastError string) error
	Agreement(ctx context.Context, partner string) (policy.Agreement, error)
	AppendAudit(ctx context.Context, recs []audit.Record) error
}

// Releaser releases one page of a collection to an audience through the
// policy gate, on a channel named for the audit ("push"), appending the
// audit record before it returns.
type Releaser func(ctx context.Context, p entente.Principal, channel, collection string, q entente.ObjectQuery) (entente.Page, error)

// Receiver stores objects received from a peer in a local collection,
// records where each new version came from (the origin organisation and
// the peer), and passes them on (correlation, pushes); it returns how
// many versions were new.
type Receiver interface {
	Receive(ctx context.Context, collection string, objs []*stix.Object, from Origin) (int, error)
}

// Origin is where received objects came from.
type Origin struct {
	// Org is the organisation the objects came from: the peer's, or a
	// name that is never the node's own.
	Org string
	// Peer is the id of the peer they came through.
	Peer string
	// At is when they arrived.
	At time.Time
}

// Remote is one peer as the node reaches it (the TAXII client).
type Remote interface {
	// Pull reads the peer's collection from checkpoint from (nil: from
	// the start), calling page for each page; it stops at the first
	// error page returns.
	Pull(ctx context.Context, collection string, from json.RawMessage, page func(*Pulled) error) error
	// Push adds objects to the peer's collection and says how many the
	// peer accepted and refused.
	Push(ctx context.Context, collection string, objects []json.RawMessage) (accepted, refused int, err error)
}

// Pulled is one page of a pull.
type Pulled struct {
	// URL is where the page was read from.
	URL string
	// Objects are the page's objects, verbatim (valid STIX as far as the
	// client checks; the receiver validates again).
	Objects []json.RawMessage
	// Invalid describes the objects the client refused.
	Invalid []error
	// Checkpoint is where to resume once the page is stored.
	Checkpoint json.RawMessage
	// ReceivedAt is when the page arrived.
	ReceivedAt time.Time
}

// Dialer returns the Remote of a peer (its API root, discovery URL and
// token).
type Dialer func(p Peer) Remote

// Config is what the federation needs.
type Config struct {
	Peers   PeerStore
	Release Releaser
	Receive Receiver
	Dial    Dialer
	// Collection resolves a local collection by id or alias.
	Collection func(ctx context.Context, idOrAlias string) (entente.Collection, error)
	// LatestAdded returns an upper bound of the date_added of a local
	// collection's entries (the zero time when it holds none; see
	// store.Store.LatestAdded). A push whose checkpoint is at or past it
	// has nothing to send and is skipped before it reads anything else.
	// Nil: every push runs.
	LatestAdded func(ctx context.Context, collection string) (time.Time, error)
	// Org is the node's organisation (the actor of background syncs).
	Org    string
	Now    func() time.Time
	Logger *slog.Logger
}

// Service federates a node with its peers. It is safe for concurrent
// use.
type Service struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// syncing holds the ids of the peers whose sync or push is running;
	// pushAgain those for which one more push was asked meanwhile.
	syncing   map[string]bool
	pushAgain map[string]bool
	// remotes caches one Remote per peer (its API root is read once),
	// keyed by peer id.
	remotes map[string]*remote
	// targets caches the push peers and their agreements.
	targets   []pushTarget
	targetsAt time.Time
	// pushed is, per peer, the push checkpoint reached (its record may
	// wait to be written, see recordPeer).
	pushed map[string]pushCheckpoint
	// failures counts, per peer, the immediate pushes that failed in a
	// row; retrying holds the peers whose retry is scheduled.
	failures map[string]int
	retrying map[string]bool
	// later holds the peers whose later push is scheduled (StoredLater),
	// with pushStarts of the peer then; pushStarts counts, per peer, the
	// pushes started (immediate or periodic).
	later      map[string]uint64
	pushStarts map[string]uint64
	// laterDelay replaces lazyPushDelay (tests).
	laterDelay time.Duration
	// termsGen counts the changes of peers, partners and agreements made
	// through this node (TermsChanged); pushedGen is, per peer, termsGen
	// when its last push ran to the end without error (see idlePush).
	termsGen  uint64
	pushedGen map[string]uint64
	// peerGen counts, per peer, the changes to its stored record made
	// through this node (added or removed, the end of each sync, a failed
	// immediate push): RunPeerSync syncs the record it listed unless it
	// changed since (see syncListed).
	peerGen map[string]uint64
	// pushPeers caches, per peer, the record an immediate push read (see
	// pushPeer).
	pushPeers map[string]cachedPeer
	// peerTTL replaces peerCacheTTL (tests).
	peerTTL time.Duration
	// keyAudited is when a peer's presenting a given key (peer id and
	// fingerprint) was last audited.
	keyAudited map[[2]string]time.Time
	// state holds the peer-state records that wait to be written
	// together (peerstate.go).
	state  peerStates
	closed bool
	bg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns the federation of a node.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// requireAdmin refuses principals that are not admins.
func requireAdmin(p entente.Principal, action string) error {
	if p.Role != entente.RoleAdmin {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the admin role; this key's role is %q", action, p.Role)
	}
	return nil
}

// auditAdmin appends the record of an administrative change.
func (s *Service) auditAdmin(ctx context.Context, p entente.Principal, rule, partner, detail string, refused error) error {
	rec := audit.AdminRecord(s.now(), audit.Actor(p.KeyID, p.Org), rule, partner, detail, refused)
	if err := s.cfg.Peers.AppendAudit(context.WithoutCancel(ctx), []audit.Record{rec}); err != nil {
		return fmt.Errorf("audit %s: %w", rec.Rule, err)
	}
	return nil
}

func joinAudit(err, auditErr error) error {
	if auditErr != nil {
		return fmt.Errorf("%w (and it could not be audited: %v)", err, auditErr)
	}
	return err
}

// AddPeer records a peer to federate with (admin only) and returns it
// without its token. The ID defaults to a new UUID; Direction to pull.
// EINVALID names the field at fault.
func (s *Service) AddPeer(ctx context.Context, p entente.Principal, peer Peer) (Peer, error) {
	if err := requireAdmin(p, "managing peers"); err != nil {
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
	s.forgetPeerState(peer.ID)
	if err := s.cfg.Peers.PutPeer(ctx, peer); err != nil {
		return Peer{}, fmt.Errorf("add peer %s: %w", peer.ID, err)
	}
	s.log.InfoContext(ctx, "peer added", "peer", peer.ID, "name", peer.Name, "api_root", peer.APIRoot, "direction", peer.Direction, "pinned", peer.Pin != "", "by", p.KeyID)
	peer.Token = ""
	s.TermsChanged()
	s.forgetPush(peer.ID)
	detail := fmt.Sprintf("peer %s %q %s collection %s into %s direction %s", peer.ID, peer.Name, peer.APIRoot, peer.Collection, peer.LocalCollection, peer.Direction)
	if peer.Pin != "" {
		detail += " pinned to " + peer.Pin
	}
	return peer, s.auditAdmin(ctx, p, "peer.add", peer.Org, detail, nil)
}

// keyAuditEvery is how often, at most, the same peer presenting the same
// wrong key is audited again (every refusal is logged).
const keyAuditEvery = time.Hour

// RuleKeyMismatch is the audit rule of a peer refused because it
// presented another TLS key than the one pinned.
const RuleKeyMismatch = "peer.key_mismatch"

// keyRefused records that err (from a pull or push) is a pinned peer
// presenting another key: an error log every time, and an admin audit
// record the first time the peer presents that key and then at most
// every keyAuditEvery.
func (s *Service) keyRefused(ctx context.Context, peer Peer, err error) {
	if err == nil {
		return
	}
	var mm *pin.MismatchError
	if !errors.As(err, &mm) {
		return
	}
	s.log.ErrorContext(ctx, "peer presented another TLS key than the one pinned; connection refused",
		"peer", peer.ID, "name", peer.Name, "api_root", peer.APIRoot, "pinned", mm.Want, "presented", mm.Got)
	key := [2]string{peer.ID, mm.Got}
	now := s.now()
	s.mu.Lock()
	if s.keyAudited == nil {
		s.keyAudited = map[[2]string]time.Time{}
	}
	last, seen := s.keyAudited[key]
	due := !seen || now.Sub(last) >= keyAuditEvery
	if due {
		s.keyAudited[key] = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	rec := audit.AdminRecord(now, audit.Actor("sync", s.cfg.Org), RuleKeyMismatch, peer.Org,
		fmt.Sprintf("peer %s %q at %s presented TLS key %s, not the pinned %s; the connection was refused", peer.ID, peer.Name, peer.APIRoot, mm.Got, mm.Want), nil)
	if aerr := s.cfg.Peers.AppendAudit(context.WithoutCancel(ctx), []audit.Record{rec}); aerr != nil {
		s.log.ErrorContext(ctx, "audit a refused peer key", "peer", peer.ID, "err", aerr)
		s.mu.Lock()
		delete(s.keyAudited, key) // try again next time
		s.mu.Unlock()
	}
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
	if peer.Pin != "" {
		if p, err := pin.Parse(peer.Pin); err != nil {
			errs = append(errs, "pin: "+err.Error())
		} else {
			peer.Pin = p
			if u != nil && u.Scheme != "https" {
				errs = append(errs, fmt.Sprintf("pin: a pinned peer is reached over TLS, but api_root %q is not https", peer.APIRoot))
			}
		}
	}
	if peer.Org != "" && !strings.HasPrefix(peer.Org, "identity--") {
		errs = append(errs, fmt.Sprintf("org: %q is not a STIX identity id", peer.Org))
	}
	if peer.Direction != DirectionPull && peer.Org == "" {
		errs = append(errs, "org: pushing needs the peer's organisation (its agreement decides what is pushed)")
	}
	if c, err := s.cfg.Collection(ctx, peer.LocalCollection); err != nil {
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
	peers, err := s.cfg.Peers.Peers(ctx)
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
	peer, err := s.cfg.Peers.Peer(ctx, id)
	peer.Token = ""
	return peer, err
}

// RemovePeer removes a peer (admin only). ENOTFOUND if none.
func (s *Service) RemovePeer(ctx context.Context, p entente.Principal, id string) error {
	if err := requireAdmin(p, "managing peers"); err != nil {
		return err
	}
	s.forgetPeerState(id)
	if err := s.cfg.Peers.DeletePeer(ctx, id); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "peer removed", "peer", id, "by", p.KeyID)
	s.TermsChanged()
	s.forgetPush(id)
	return s.auditAdmin(ctx, p, "peer.remove", "", "peer "+id, nil)
}

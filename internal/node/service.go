// Package node is the application service of an Entente node: the only
// holder of its store. Every read and every write, from the TAXII server,
// the node API or the offline CLI, goes through a [Service], which
// authenticates keys, authorises each action for the principal that asks
// (its role and the collection's read and write permissions), validates
// STIX objects before anything is stored, and keeps TAXII status
// resources.
//
// Every method that reads objects funnels through one unexported method,
// release, which is where the sharing-policy gate (agreements, TLP,
// residency, redaction, audit of egress) is plugged in: no object leaves
// the service by another path.
//
// Methods take the acting principal as an explicit parameter. Errors meant
// for clients are *entente.Error: EUNAUTHORIZED, EFORBIDDEN, ENOTFOUND,
// EINVALID, ECONFLICT; anything else is internal.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/alerting"
	"github.com/entente-cti/entente/internal/blind"
	"github.com/entente-cti/entente/internal/blindaccess"
	"github.com/entente-cti/entente/internal/devicenode"
	"github.com/entente-cti/entente/internal/egress"
	"github.com/entente-cti/entente/internal/exports"
	"github.com/entente-cti/entente/internal/federation"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/ingest"
	"github.com/entente-cti/entente/internal/safety"
	"github.com/entente-cti/entente/internal/search"
	"github.com/entente-cti/entente/internal/snapshots"
	"github.com/entente-cti/entente/internal/store"
)

// Config is what the service needs to know about its node.
type Config struct {
	// Title, Description and Contact are shown in TAXII discovery.
	Title       string
	Description string
	Contact     string
	// APIRoot is the name of the node's one TAXII API root
	// (/taxii2/APIRoot/); "api1" when empty.
	APIRoot string
	// APIRootTitle and APIRootDescription describe the API root; the
	// title defaults to Title.
	APIRootTitle       string
	APIRootDescription string
	// MaxContentLength is the largest request body, in bytes, the API
	// root accepts (advertised in the API root resource); 32 MiB when 0.
	MaxContentLength int64
	// Org is the STIX identity id of the organisation that runs the
	// node; keys created without an organisation belong to it.
	Org string
	// KeyCacheTTL is how long a successful key lookup is remembered, so
	// that each request does not read the store. A key revoked through
	// this service is forgotten at once; one revoked by another replica
	// is refused here after at most this long. 10 s when 0; negative
	// disables the cache.
	KeyCacheTTL time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Dial reaches peers (the TAXII client adapter, wired by the
	// caller); without it peers can be recorded but not synced.
	Dial federation.Dialer
	// FetchFeed fetches feeds (the HTTP adapter, wired by the caller);
	// without it feeds can be recorded but not polled.
	FetchFeed ingest.Fetcher
	// Safety is the safety net applied wherever intelligence becomes
	// action: exports, sensor snapshots, correlation (internal/safety);
	// nil protects nothing.
	Safety *safety.Net
	// BlindSecret is the secret blind access derives every partner's
	// keys from (at least 32 random bytes; never logged); when nil, the
	// store's, generated the first time it is needed.
	BlindSecret []byte
	// BlindEpochs are blind access's epochs (blind.DefaultEpochs when
	// zero).
	BlindEpochs blind.Epochs
	// DialBlind reaches a peer's blind access (the blindhttp adapter,
	// wired by the caller), for matching against the sets of the
	// partners that grant this node blind access ([Service.BlindPeer]).
	DialBlind func(p federation.Peer) blind.Peer
	// OneShot is set for a service that serves one command and exits
	// (the CLI's verbs other than serve): background work whose only
	// use is to make this process's later requests cheaper, such as
	// reading just-stored relationships into the reference index
	// (refs.go), is skipped; what it would have done is done when asked.
	OneShot bool
}

// Defaults of Config.
const (
	DefaultAPIRoot          = "api1"
	DefaultMaxContentLength = 32 << 20
	DefaultKeyCacheTTL      = 10 * time.Second
	// DefaultLimit is the page size of a read that asks for none (the
	// store caps larger limits at store.MaxPageSize).
	DefaultLimit = egress.DefaultLimit
	// maxKeyCache bounds the number of remembered keys.
	maxKeyCache = 10000
	// maxMessage bounds the length of a failure message in a status.
	maxMessage = 2000
)

// Service is a node's application service. It is safe for concurrent use.
type Service struct {
	st  store.Store
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	keys map[string]cachedKey // by hash of the secret
	// protectMu orders the updates of the partners' constituencies in
	// the safety net.
	protectMu sync.Mutex
	// quota bounds the sightings each partner pushes per window.
	quota pushQuota

	// gate is the one policy gate: every object that leaves goes
	// through it, and it owns every cache of released content.
	gate *egress.Gate
	// exports renders blocklists, snaps compiles sensor snapshots, both
	// through the gate.
	exports *exports.Service
	snaps   *snapshots.Service
	// ingest adds objects: TAXII additions, imports, feeds, peers' objects.
	ingest *ingest.Service
	// fed pulls from and pushes to peers.
	fed *federation.Service
	// alerting correlates sightings into alerts and keeps their lifecycle.
	alerting *alerting.Service
	// search finds and shows objects.
	search *search.Service
	// geo locates addresses (exports, feeds); nil without geolocation data.
	geoMu sync.Mutex
	geo   geo.Locator
	// prop pushes and correlates what was just stored (propagate.go).
	prop propagation
	// blind is blind access (blind.go), made when first needed under
	// blindMu; read without it (the store's writer calls stored).
	blindMu sync.Mutex
	blind   atomic.Pointer[blindaccess.Service]
	// devices is the device watch (devices.go); nil without one.
	devMu   sync.Mutex
	devices *devicenode.Watch
	// deletions counts deletions and writes the objects stored through
	// this service, both part of storeVersion, which version caches.
	deletions, writes atomic.Int64
	versionMu         sync.Mutex
	version           cachedVersion
	// refsVersion is the store version the reference index was last
	// brought up to date at (searchRefs).
	refsMu      sync.Mutex
	refsVersion string
	// refsBG refreshes the reference index after additions (refs.go).
	refsBG refsBehind
}

// cachedVersion is a store version computed at a count of writes.
type cachedVersion struct {
	token  string
	writes int64
	at     time.Time
}

type cachedKey struct {
	p       entente.Principal
	expires time.Time
}

// New returns the service of a node whose data is in st. Zero fields of
// cfg take their defaults; logger may be nil (nothing is logged).
func New(st store.Store, cfg Config, logger *slog.Logger) *Service {
	if cfg.APIRoot == "" {
		cfg.APIRoot = DefaultAPIRoot
	}
	if cfg.Title == "" {
		cfg.Title = "Entente node"
	}
	if cfg.APIRootTitle == "" {
		cfg.APIRootTitle = cfg.Title
	}
	if cfg.MaxContentLength <= 0 {
		cfg.MaxContentLength = DefaultMaxContentLength
	}
	if cfg.KeyCacheTTL == 0 {
		cfg.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: st, cfg: cfg, log: logger, keys: make(map[string]cachedKey)}
	s.prop.ctx, s.prop.cancel = context.WithCancel(context.Background())
	s.gate = egress.New(st, egress.Config{Self: s.selfParty, Now: cfg.Now, Logger: logger})
	s.exports = exports.New(exports.Config{Gate: s.gate, Reader: LocalAdmin(cfg.Org), Logger: logger, Now: cfg.Now,
		Guard: cfg.Safety.Guard(safety.OutputExport)})
	s.snaps = snapshots.New(s.gate, logger, snapshots.WithGuard(cfg.Safety.Guard(safety.OutputSnapshot)))
	dial := cfg.Dial
	if dial == nil {
		dial = func(p federation.Peer) federation.Remote { return unreachable{} }
	}
	s.ingest = s.newIngest()
	s.alerting = s.newAlerting()
	s.search = s.newSearch()
	ps, _ := st.(store.PolicyStore)
	s.fed = federation.New(federation.Config{Peers: ps, Release: s.releaseOn, Receive: s.ingest, Dial: dial,
		Collection: s.collection, LatestAdded: st.LatestAdded, Org: cfg.Org, Now: cfg.Now, Logger: logger})
	return s
}

// Gate returns the node's one policy gate.
func (s *Service) Gate() *egress.Gate { return s.gate }

// Config returns the service's configuration, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// LocalAdmin returns the principal of the node's operator acting on the
// node's data directly (the offline CLI: init, ingest --data, key).
func LocalAdmin(org string) entente.Principal {
	return entente.Principal{KeyID: "local", Org: org, Role: entente.RoleAdmin}
}

// Ready reports whether the node can serve requests (for /readyz).
func (s *Service) Ready(ctx context.Context) error {
	if err := s.st.Ping(ctx); err != nil {
		return &entente.Error{Code: entente.EUNAVAILABLE, Message: "the store is not reachable", Err: err}
	}
	return nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// requireAdmin refuses principals that are not admins.
func requireAdmin(p entente.Principal, action string) error {
	if p.Role != entente.RoleAdmin {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the admin role; this key's role is %q", action, p.Role)
	}
	return nil
}

// unreachable is the Remote of a node configured without a Dialer.
type unreachable struct{}

func (unreachable) Pull(context.Context, string, json.RawMessage, func(*federation.Pulled) error) error {
	return errors.New("this node has no way to reach peers (no Dial configured)")
}

func (unreachable) Push(context.Context, string, []json.RawMessage) (int, int, error) {
	return 0, 0, errors.New("this node has no way to reach peers (no Dial configured)")
}

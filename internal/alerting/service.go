// Package alerting turns sightings reported by many organisations in many
// countries into coordinated alerts and keeps each alert's lifecycle on
// the node: correlation of the sightings the node receives (by the
// correlate engine), alerts raised, escalated, superseded, acknowledged
// and resolved, alerts received from partners taken into the same
// lifecycle, live events for the dashboard, and notification of every
// change.
//
// It depends on ports only: the node's stored objects ([Objects]), the
// lifecycles ([States]), the policy gate ([Releaser]) through which every
// alert it notifies or shows is read, and a [Notifier] (the webhook and
// syslog adapter, wired in cmd/entente).
package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/correlate"
	"github.com/entente-cti/entente/internal/policy"
)

// Objects reads the node's stored objects: what correlation reads
// (sightings, relationships, identities) is the node's own business, not
// egress.
type Objects interface {
	Collections(ctx context.Context) ([]entente.Collection, error)
	QueryObjects(ctx context.Context, q entente.ObjectQuery) (entente.Page, error)
}

// latestAdder is what Objects also does when it can say cheaply whether
// a collection changed (store.Store.LatestAdded): refreshRelationships
// then reads only the collections that did.
type latestAdder interface {
	LatestAdded(ctx context.Context, collection string) (time.Time, error)
}

// States keeps the lifecycle of each alert (every store backend
// implements it).
type States interface {
	PutAlertState(ctx context.Context, st correlate.State) error
	AlertState(ctx context.Context, id string) (correlate.State, error)
	AlertStates(ctx context.Context) ([]correlate.State, error)
}

// Releaser releases one page of a collection to an audience through the
// policy gate ("" channel: a read).
type Releaser func(ctx context.Context, p entente.Principal, channel, collection string, q entente.ObjectQuery) (entente.Page, error)

// Self is the node's own organisation.
type Self struct {
	ID      string
	Country string
}

// Notifier is told of every alert change (webhooks, syslog).
type Notifier interface {
	Notify(ctx context.Context, ev AlertEvent)
}

// Config is what alerting needs.
type Config struct {
	Objects Objects
	States  States
	Release Releaser
	// Store stores alert objects (the node's own) in a collection and
	// the lifecycles states of the alerts they change, in one durable
	// commit where the store can.
	Store func(ctx context.Context, collection string, objs []json.RawMessage, states []correlate.State) error
	// Collection resolves a collection by id or alias.
	Collection func(ctx context.Context, idOrAlias string) (entente.Collection, error)
	// Self returns the node's organisation.
	Self func(ctx context.Context) (Self, error)
	// Party returns a partner organisation the node knows (ENOTFOUND
	// otherwise).
	Party func(ctx context.Context, id string) (policy.Party, error)
	// Parties lists the partners the node knows (their trust).
	Parties func(ctx context.Context) ([]policy.Party, error)
	// Retractions lists the retractions the node honours (read when
	// correlation starts; later ones are given to Retract).
	Retractions func(ctx context.Context) ([]Retraction, error)
	// Origins returns, for objects of a collection, the organisation
	// each was received from ("" for the node's own).
	Origins func(ctx context.Context, collection string, ids []string) (map[string]string, error)
	// Audit appends audit records (lifecycle changes).
	Audit func(ctx context.Context, recs []audit.Record) error
	// AlertsCollection is the collection (id or alias) the node's own
	// alert objects are stored in.
	AlertsCollection string
	// Protected, when set, is the safety net (internal/safety): it tells
	// whether a sighting of the object raw (the sighted indicator's
	// latest version) must never count towards an alert, and names the
	// rule. Such a sighting is stored like any other, but it neither
	// raises nor escalates an alert.
	Protected func(raw json.RawMessage) (bool, string)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service correlates and keeps alerts. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // serialises correlation and lifecycle changes
	ccfg     correlate.Config
	enabled  bool
	engine   *correlate.Engine
	resolver *correlate.ThreatResolver
	// relAfter is, per collection, the date_added up to which
	// relationships have been read into resolver and located.
	relAfter map[string]time.Time
	// relLast is, per collection, the relationships (id and version)
	// read at relAfter: the store may give a later addition the same
	// date_added, so that instant is looked at again, by metadata.
	relLast map[string]map[string]bool
	// relSeen is, per collection, its latest addition (LatestAdded) when
	// its relationships were last read: while it is the same, nothing
	// was added since and the collection is not read again.
	relSeen map[string]time.Time
	// looked is, per collection, what lookup found there (see lookedUp).
	looked map[string]*lookedUp
	// passLatest is, during a correlation pass, each collection's latest
	// addition as read once for the pass (latestAdded).
	passLatest map[string]time.Time
	// sightAfter is, per collection, the date_added up to which
	// sightings have been correlated by scans.
	sightAfter map[string]time.Time
	// located maps an identity id to the location ids it is located at.
	located map[string][]string

	orgMu     sync.Mutex
	countries map[string]string // organisation → country, known ones only

	extStored bool
	replaying bool
	// notifier, when set, is told of every alert change.
	notifier Notifier

	events eventHub
	refs   Refs // who refers to each object

	// sourcesKnown are the sources the engine was told about;
	// quarantined the partners quarantined; retracted maps a retracted
	// object (or sighting) to the sources whose contributions no longer
	// count (anySource: all); suppressed counts, per threat, the
	// sightings the safety net kept out of correlation, by rule. All
	// guarded by mu.
	sourcesKnown map[string]bool
	quarantined  map[string]bool
	retracted    map[string]map[string]bool
	suppressed   map[correlate.ThreatKey]map[string]int
}

// New returns the alerting of a node.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// SetNotifier makes every later alert change notified to n (nil: none).
func (s *Service) SetNotifier(n Notifier) {
	s.mu.Lock()
	s.notifier = n
	s.mu.Unlock()
}

// Refs returns the index of who refers to each object, filled as
// correlation reads relationships and sightings.
func (s *Service) Refs() *Refs { return &s.refs }

// CountryOf returns the country of an organisation correlation knows, ""
// otherwise.
func (s *Service) CountryOf(org string) string { return s.countryOf(org) }

// localAdmin is the node's own admin, acting for the node.
func localAdmin(org string) entente.Principal {
	return entente.Principal{KeyID: "local", Org: org, Role: entente.RoleAdmin}
}

// auditAdmin appends the audit record of a change by p.
func (s *Service) auditAdmin(ctx context.Context, p entente.Principal, rule, partner, detail string, refused error) error {
	rec := audit.AdminRecord(s.now(), audit.Actor(p.KeyID, p.Org), rule, partner, detail, refused)
	if err := s.cfg.Audit(context.WithoutCancel(ctx), []audit.Record{rec}); err != nil {
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

// ReleaseToPartner releases the alert of ev to a partner organisation
// through the policy gate, as a read by that partner would (audited, on
// the channel "webhook" with actor as the reader): nil when the gate
// withholds it (the partner's agreement does not cover the alert, or it
// has none).
func (s *Service) ReleaseToPartner(ctx context.Context, partner, actor string, ev AlertEvent) (json.RawMessage, error) {
	collection := ev.Collection
	if collection == "" {
		collection = s.cfg.AlertsCollection
	}
	c, err := s.cfg.Collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	p := entente.Principal{KeyID: actor, Role: entente.RolePartner, Org: partner}
	if !c.CanRead(p.Role) {
		// The collection is closed to partners: nothing leaves.
		return nil, nil
	}
	page, err := s.cfg.Release(ctx, p, "webhook", c.ID, entente.ObjectQuery{IDs: []string{ev.Alert.ID}, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(page.Entries) == 0 {
		return nil, nil
	}
	return page.Entries[0].Raw, nil
}

// Package ingest is how objects enter a node: TAXII Add Objects requests
// (validated, stored durably, with TAXII status resources), imports of
// files and feeds converted to STIX (merged with what is stored), feeds
// polled on a schedule, and objects received from peers (stored with
// their provenance). Every addition is then handed on — to the export
// indexes, to correlation and to immediate pushes — through hooks the
// node wires, never on the store's writer.
package ingest

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/geo"
	"github.com/entente-cti/entente/internal/stix"
	"github.com/entente-cti/entente/internal/store"
)

// Releaser reads one page of a collection as an audience may receive it,
// through the policy gate.
type Releaser func(ctx context.Context, p entente.Principal, channel, collection string, q entente.ObjectQuery) (entente.Page, error)

// Config is what ingest needs.
type Config struct {
	// Store is the node's store: ingest writes objects, statuses, feeds
	// and provenance.
	Store store.Store
	// Release reads what an importer may read (to merge an import with
	// what is stored).
	Release Releaser
	// Collection resolves a collection by id or alias.
	Collection func(ctx context.Context, idOrAlias string) (entente.Collection, error)
	// Stored is told of every durable addition (correlation, pushes); it
	// must not block: it may be called on the store's writer.
	Stored func(collection string, objs []*stix.Object, received bool)
	// Imported is told of every batch of an import once it is durable
	// (an import is neither correlated nor pushed at once: the periodic
	// scan and sync take it); it must not block.
	Imported func(collection string, objs []*stix.Object)
	// Admit, when set, is asked about the valid objects a principal adds
	// before they are stored: errs[i], when not nil, refuses objs[i]
	// (it is listed in the status's failures with the reason). A
	// partner's quota of sightings is enforced here, so that a flood is
	// neither stored nor passed on. Nil admits everything.
	Admit func(ctx context.Context, p entente.Principal, objs []*stix.Object) (errs []error)
	// Added is told that objects were added to a collection (the export
	// index catches up in the background).
	Added func(c entente.Collection)
	// Deleted is told of a deletion before DeleteObject returns (caches
	// of released content are invalidated).
	Deleted func(ctx context.Context, c entente.Collection, id string) error
	// Fetch fetches feeds (the HTTP adapter); without it feeds can be
	// recorded but not polled.
	Fetch Fetcher
	// Geo returns the geolocation data (feeds locate their values), or
	// nil.
	Geo func() geo.Locator
	// Org is the node's organisation (the actor of scheduled feed polls).
	Org string
	// DefaultFeedCollection is where a feed's objects go when it names
	// no collection.
	DefaultFeedCollection string
	Now                   func() time.Time
	Logger                *slog.Logger
}

// Service is a node's ingest. It is safe for concurrent use.
type Service struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	pending pendingStatuses
	// completed are told of every complete Add Objects status.
	completedMu sync.Mutex
	completed   []func(*entente.Status)
}

// New returns the ingest of a node.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stored == nil {
		cfg.Stored = func(string, []*stix.Object, bool) {}
	}
	if cfg.Imported == nil {
		cfg.Imported = func(string, []*stix.Object) {}
	}
	if cfg.Added == nil {
		cfg.Added = func(entente.Collection) {}
	}
	if cfg.Deleted == nil {
		cfg.Deleted = func(context.Context, entente.Collection, string) error { return nil }
	}
	if cfg.Geo == nil {
		cfg.Geo = func() geo.Locator { return nil }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, st: cfg.Store, log: log}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// maxMessage bounds the length of a failure message in a status.
const maxMessage = 2000

// forbidden is the error of a principal that may not act on c.
func forbidden(p entente.Principal, what string, c entente.Collection) error {
	return entente.Errorf(entente.EFORBIDDEN, "a key of role %q may not %s collection %s", p.Role, what, c.ID)
}

// requireAdmin refuses principals that are not admins.
func requireAdmin(p entente.Principal, action string) error {
	if p.Role != entente.RoleAdmin {
		return entente.Errorf(entente.EFORBIDDEN, "%s requires the admin role; this key's role is %q", action, p.Role)
	}
	return nil
}

// localAdmin is the node's own admin, acting for the node.
func localAdmin(org string) entente.Principal {
	return entente.Principal{KeyID: "local", Org: org, Role: entente.RoleAdmin}
}

// policyStore returns the store's policy storage (provenance).
func (s *Service) policyStore() (store.PolicyStore, error) {
	ps, ok := s.st.(store.PolicyStore)
	if !ok {
		return nil, fmt.Errorf("the store %T keeps no provenance", s.st)
	}
	return ps, nil
}

// all yields every entry of collection that q selects, as p may read
// them, through the gate.
func (s *Service) all(ctx context.Context, p entente.Principal, collection string, q entente.ObjectQuery) iter.Seq2[entente.ObjectEntry, error] {
	return func(yield func(entente.ObjectEntry, error) bool) {
		for {
			page, err := s.cfg.Release(ctx, p, "", collection, q)
			if err != nil {
				yield(entente.ObjectEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if !page.More {
				return
			}
			q.Next = page.Next
		}
	}
}

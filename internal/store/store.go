// Package store defines the contract of a node's persistent storage: one
// [Store] interface that every backend (internal/store/sqlite,
// internal/store/postgres) implements and that one conformance suite
// (internal/store/storetest) checks.
//
// Only the node service (internal/node) holds a Store. Packages by which
// data leaves the node never import this package: they go through the
// node service, which applies the policy gate.
package store

import (
	"context"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// MaxPageSize is the largest page a query returns, whatever limit it asks.
const MaxPageSize = 10000

// CollectionPager is a Store that reads a page of a collection with the
// one lookup of the collection a caller needs anyway to decide whether it
// may (the gate's read of a collection's permissions), where Collection
// then QueryObjects look it up twice.
type CollectionPager interface {
	// QueryCollection looks up the collection q.Collection names (ID or
	// alias) and calls check with what Collection would return: the
	// collection or its error. When check returns an error,
	// QueryCollection returns it unchanged and reads nothing; check must
	// refuse a failed lookup. Otherwise it returns the collection and
	// the page QueryObjects would return for q with q.Collection set to
	// the collection's ID, with QueryObjects' errors.
	QueryCollection(ctx context.Context, q entente.ObjectQuery, check func(entente.Collection, error) error) (entente.Collection, entente.Page, error)
}

// PageReader is a Store that reads a page of objects into entries the
// caller provides, so that a caller reading many pages one after the
// other (the gate's parts of a partner's large read) reuses them rather
// than allocate each page anew.
type PageReader interface {
	// QueryObjectsInto returns what QueryObjects returns for q, its
	// entries appended to buf[:0]: in buf's array when it has the
	// capacity (the page's limit, at most MaxPageSize), else in a new
	// one.
	QueryObjectsInto(ctx context.Context, q entente.ObjectQuery, buf []entente.ObjectEntry) (entente.Page, error)
}

// Store is a node's persistent storage.
//
// All methods are safe for concurrent use. Errors that callers branch on
// are *entente.Error with code ENOTFOUND, ECONFLICT or EINVALID; any other
// error is internal. Several processes (replicas) may share one store when
// the backend allows it (PostgreSQL); they then see one consistent state.
type Store interface {
	// CreateCollection adds a collection. ECONFLICT if its ID or alias is
	// taken.
	CreateCollection(ctx context.Context, c entente.Collection) error
	// UpdateCollection replaces a collection's title, description,
	// default marking and permissions. ENOTFOUND if it does not exist.
	UpdateCollection(ctx context.Context, c entente.Collection) error
	// Collection returns one collection by ID or alias. ENOTFOUND if none.
	Collection(ctx context.Context, idOrAlias string) (entente.Collection, error)
	// Collections lists all collections, ordered by creation.
	Collections(ctx context.Context) ([]entente.Collection, error)

	// AddObjects adds objects to a collection, all or nothing, in one
	// transaction, and returns one outcome per object in input order.
	// Objects are versioned by (id, version): adding a version that the
	// collection already holds writes nothing for it (Duplicate). Every
	// new entry gets a date_added that is greater than or equal to every
	// date_added already in the collection, and entries are ordered by
	// (date_added, insertion sequence), so a reader paging concurrently
	// with writers sees no gap and no duplicate. When AddObjects returns
	// nil the objects are durable. ENOTFOUND if the collection does not
	// exist.
	AddObjects(ctx context.Context, collection string, objs []*stix.Object) ([]entente.AddOutcome, error)

	// QueryObjects returns one page of entries of q.Collection matching
	// q, in date_added order. The default version filter selects each
	// object's latest version. Page.Next is a keyset cursor: fetching any
	// page costs the same whatever its position. EINVALID if q.Next is
	// not a cursor this store issued; ENOTFOUND if the collection does
	// not exist.
	QueryObjects(ctx context.Context, q entente.ObjectQuery) (entente.Page, error)

	// LatestAdded returns the greatest date_added given to an entry of
	// the collection (the zero time before its first), cheaply: a cache
	// of what was read from the collection is still valid while this is
	// unchanged and nothing was deleted. ENOTFOUND if the collection does
	// not exist.
	LatestAdded(ctx context.Context, collection string) (time.Time, error)

	// DeleteObjects deletes the versions of object id in collection that
	// match versions and specVersions (empty: every spec version) and
	// returns how many were deleted. ENOTFOUND if the collection does not
	// exist or nothing matched.
	DeleteObjects(ctx context.Context, collection, id string, versions entente.VersionFilter, specVersions []string) (int, error)

	// PutStatus stores (or replaces) a TAXII status resource, as the
	// bytes the caller encodes it in (the ingest package's status record).
	PutStatus(ctx context.Context, id string, body []byte) error
	// Status returns a status resource stored by PutStatus. ENOTFOUND if
	// none.
	Status(ctx context.Context, id string) ([]byte, error)

	// CreateKey stores an API key (its hash only). ECONFLICT if its ID or
	// hash is taken.
	CreateKey(ctx context.Context, k entente.Key) error
	// KeyByHash returns the key whose secret hashes to hash, revoked or
	// not. ENOTFOUND if none.
	KeyByHash(ctx context.Context, hash []byte) (entente.Key, error)
	// Keys lists every key, ordered by creation.
	Keys(ctx context.Context) ([]entente.Key, error)
	// RevokeKey marks a key revoked at time at. ENOTFOUND if no such key.
	RevokeKey(ctx context.Context, id string, at time.Time) error

	// Setting returns a node setting's value. ENOTFOUND if unset.
	Setting(ctx context.Context, name string) ([]byte, error)
	// PutSetting sets a node setting.
	PutSetting(ctx context.Context, name string, value []byte) error

	// Ping checks that the store can serve requests (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/audit"
	"github.com/entente-cti/entente/internal/policy"
)

// PolicyStore is the storage of the sharing policy and of federation:
// partners, agreements, peers, the provenance of received objects and the
// append-only audit log. Every backend implements it alongside [Store];
// the node service obtains it by type assertion.
//
// Errors follow the conventions of [Store]: ENOTFOUND, ECONFLICT and
// EINVALID are *entente.Error.
type PolicyStore interface {
	// PutParty creates or replaces a partner organisation, keyed by its
	// identity id.
	PutParty(ctx context.Context, p policy.Party) error
	// Party returns a partner by identity id. ENOTFOUND if none.
	Party(ctx context.Context, id string) (policy.Party, error)
	// Parties lists the partners, ordered by identity id.
	Parties(ctx context.Context) ([]policy.Party, error)
	// DeleteParty removes a partner. ENOTFOUND if none.
	DeleteParty(ctx context.Context, id string) error

	// PutAgreement creates or replaces the agreement with a.Partner.ID
	// (one agreement per partner).
	PutAgreement(ctx context.Context, a policy.Agreement) error
	// Agreement returns the agreement with a partner. ENOTFOUND if none.
	Agreement(ctx context.Context, partner string) (policy.Agreement, error)
	// Agreements lists every agreement, ordered by partner id.
	Agreements(ctx context.Context) ([]policy.Agreement, error)
	// DeleteAgreement removes the agreement with a partner. ENOTFOUND if
	// none.
	DeleteAgreement(ctx context.Context, partner string) error

	// PutPeer creates or replaces a peer's configuration (its sync state
	// is kept when it exists).
	PutPeer(ctx context.Context, p Peer) error
	// Peer returns a peer by id. ENOTFOUND if none.
	Peer(ctx context.Context, id string) (Peer, error)
	// Peers lists every peer, ordered by creation.
	Peers(ctx context.Context) ([]Peer, error)
	// DeletePeer removes a peer. ENOTFOUND if none.
	DeletePeer(ctx context.Context, id string) error
	// UpdatePeerSync records a peer's sync state: the checkpoint to resume
	// from (nil keeps the stored one), when it last synced and the error
	// of the last attempt ("" after a success). ENOTFOUND if no such peer.
	UpdatePeerSync(ctx context.Context, id string, checkpoint json.RawMessage, lastSync time.Time, lastError string) error

	// SetProvenance records where object versions came from. Recording
	// the same version again replaces its provenance.
	SetProvenance(ctx context.Context, recs []Provenance) error
	// Provenance returns the recorded provenance of the given objects of
	// a collection (every version of each), keyed by object id and
	// version. Objects without a record are absent from the map.
	Provenance(ctx context.Context, collection string, ids []string) (map[VersionKey]Provenance, error)
	// ProvenanceFrom returns the provenance records of the object
	// versions received from origin, in every collection, the most
	// recently received first, at most limit of them.
	ProvenanceFrom(ctx context.Context, origin string, limit int) ([]Provenance, error)

	// AppendAudit appends records to the audit log, all or nothing. The
	// log is append-only: there is no way to change or remove a record.
	AppendAudit(ctx context.Context, recs []audit.Record) error
	// AppendRelease appends the egress record of object versions released
	// together (see [audit.Release]), with its index by object, all or nothing:
	// when it returns nil the record is durable. EINVALID if r does not
	// validate.
	AppendRelease(ctx context.Context, r audit.Release) error
	// QueryAudit returns one page of audit records matching q, oldest
	// first; each version of a release is one record. EINVALID if q.Next
	// is not a cursor this store issued.
	QueryAudit(ctx context.Context, q audit.Query) (audit.Page, error)
}

// Peer is a peer's configuration and sync state (see [entente.Peer]).
type Peer = entente.Peer

// Peer directions.
const (
	DirectionPull = entente.DirectionPull
	DirectionPush = entente.DirectionPush
	DirectionBoth = entente.DirectionBoth
)

// Provenance says where one version of an object in a collection came
// from: which organisation, through which peer, and when.
type Provenance struct {
	Collection string
	ObjectID   string
	Version    time.Time
	// Origin is the identity id of the organisation the object came from.
	Origin string
	// Peer is the id of the peer it was received through.
	Peer       string
	ReceivedAt time.Time
}

// VersionKey identifies one version of an object: its id and its version
// in Unix nanoseconds.
type VersionKey struct {
	ID      string
	Version int64
}

package store

import (
	"context"
	"time"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// Received is an addition of objects another organisation sent — pushed
// to the node by a partner's key, or pulled from a peer — with where they
// came from.
type Received struct {
	Collection string
	Objects    []*stix.Object
	// Origin is the organisation the objects came from (an identity id,
	// or a name that is never the node's own); Peer the peer or key they
	// came through; ReceivedAt when they arrived. They are recorded as the
	// provenance of every new version (see [Received.Provenance]).
	Origin     string
	Peer       string
	ReceivedAt time.Time
	// StatusID, when not empty, names a TAXII status resource written in
	// the same transaction, with the bytes Status returns for the
	// outcome. Status is called only when the objects are stored.
	StatusID string
	Status   func(out []entente.AddOutcome) []byte
}

// Provenance returns the provenance records of the versions an addition
// stored: one per outcome that is not a duplicate (an existing version
// keeps the provenance it had).
func (r Received) Provenance(out []entente.AddOutcome) []Provenance {
	prov := make([]Provenance, 0, len(out))
	for _, o := range out {
		if o.Duplicate {
			continue
		}
		prov = append(prov, Provenance{Collection: r.Collection, ObjectID: o.ID, Version: o.Version,
			Origin: r.Origin, Peer: r.Peer, ReceivedAt: r.ReceivedAt})
	}
	return prov
}

// ReceivedAdder is implemented by stores that store what another
// organisation sent in one durable commit: objects, provenance and
// status together. Without it a received push costs three commits on the
// store's single writer (objects, then provenance, then status), and a
// crash between them leaves objects whose origin is unknown — which the
// policy gate's re-sharing rule would take for the node's own.
type ReceivedAdder interface {
	// AddReceived adds r.Objects to r.Collection as [Store.AddObjects]
	// does, records the provenance of every new version and, when
	// r.StatusID is set, writes the status resource, all in one
	// transaction: when it returns nil all of it is durable; when it
	// returns an error none of it was written. ENOTFOUND if the
	// collection does not exist; EINVALID if r.ReceivedAt or a version is
	// out of the store's range.
	AddReceived(ctx context.Context, r Received) ([]entente.AddOutcome, error)
}

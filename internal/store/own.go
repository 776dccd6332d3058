package store

import (
	"context"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// Own is an addition of the node's own objects (an analyst's, a sensor's
// through the node API, correlation's alerts) with the records that must
// be durable with them.
type Own struct {
	Collection string
	Objects    []*stix.Object
	// StatusID, when not empty, names a TAXII status resource written in
	// the same transaction, with the bytes Status returns for the
	// outcome. Status is called only when the objects are stored.
	StatusID string
	Status   func(out []entente.AddOutcome) []byte
	// AlertStates are alert lifecycles (see [AlertStore]) created or
	// replaced in the same transaction: correlation's alert objects and
	// the lifecycles they open, escalate or withdraw.
	AlertStates []AlertState
}

// OwnAdder is implemented by stores that store the node's own addition
// and its records in one durable commit. Without it an addition by the
// node costs a commit for the objects, one for their status and one for
// the lifecycles of the alerts among them, one after the other on the
// store's single writer; with synchronous commits each is an fsync, and
// on a busy CERT of a large federation each is a turn on a starved CPU
// (issue 16).
type OwnAdder interface {
	// AddOwn adds o.Objects to o.Collection as [Store.AddObjects] does,
	// writes the status resource when o.StatusID is set and the alert
	// states, all in one transaction: when it returns nil all of it is
	// durable; when it returns an error none of it was written.
	// ENOTFOUND if the collection does not exist; EINVALID if an alert
	// state has no id or no body.
	AddOwn(ctx context.Context, o Own) ([]entente.AddOutcome, error)
}

// CheckAlertStates returns EINVALID if a state has no id or no body.
func CheckAlertStates(states []AlertState) error {
	for _, st := range states {
		if st.ID == "" {
			return entente.Errorf(entente.EINVALID, "alert state: id is required")
		}
		if len(st.Body) == 0 {
			return entente.Errorf(entente.EINVALID, "alert state %s: body is required", st.ID)
		}
	}
	return nil
}

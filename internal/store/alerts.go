package store

import (
	"context"

	"github.com/entente-cti/entente/internal/correlate"
)

// AlertStore keeps the lifecycle of coordinated alerts on this node: for
// each alert its current status and the history of its transitions (who
// changed it, when and why). The alert objects themselves are ordinary
// STIX objects kept in a collection; this table holds what is local to
// the node and never shared. Every backend implements it alongside
// [Store]; the node service obtains it by type assertion.
//
// Errors follow the conventions of [Store]: ENOTFOUND and EINVALID are
// *entente.Error.
type AlertStore interface {
	// PutAlertState creates or replaces the state of alert st.ID.
	PutAlertState(ctx context.Context, st AlertState) error
	// AlertState returns the state of one alert. ENOTFOUND if none.
	AlertState(ctx context.Context, id string) (AlertState, error)
	// AlertStates lists every alert state, most recently updated first
	// (ties by id).
	AlertStates(ctx context.Context) ([]AlertState, error)
}

// AlertState is the node-local state of one alert (see
// [correlate.State]).
type AlertState = correlate.State

package correlate

import (
	"encoding/json"
	"time"
)

// State is the node-local state of one alert, as a store keeps it: its
// status and its lifecycle (a [Lifecycle] as JSON).
type State struct {
	// ID is the alert's STIX id.
	ID string `json:"id"`
	// Status is the alert's current status ("new", "acknowledged", ...).
	Status string `json:"status"`
	// Updated is when the state last changed.
	Updated time.Time `json:"updated"`
	// Body is the lifecycle with its history, as JSON (the node's
	// encoding of correlate.Lifecycle).
	Body json.RawMessage `json:"body"`
}

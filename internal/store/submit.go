package store

import (
	"context"

	"github.com/entente-cti/entente"
	"github.com/entente-cti/entente/internal/stix"
)

// Submission is an addition handed to a [Submitter].
type Submission struct {
	Collection string
	Objects    []*stix.Object
	// Prepare, when not nil, is called by the store's writer just before
	// it stores the submission, and returns the objects to store in place
	// of Objects (which then only sizes the work). It may block until they
	// are ready: the caller can validate in parallel with the writer
	// storing earlier submissions, without losing the place Submit fixed.
	// It may be called more than once, and must then return the same.
	Prepare func() []*stix.Object
	// StatusID, when not empty, names a status resource that is written
	// in the same transaction as the objects, with the bytes Status
	// returns for the outcome. Status may be called more than once (a
	// transaction tried again after another submission failed in it):
	// the last call's outcome is the one stored.
	StatusID string
	Status   func(out []entente.AddOutcome, err error) []byte
	// Done is called once the objects are durable (err nil) or could not
	// be stored. It runs on the store's writer and must not block.
	Done func(out []entente.AddOutcome, err error)
}

// Submitter is implemented by stores that can fix the place of an addition
// in the collection's order at once and make it durable afterwards. A
// TAXII server then answers a POST "pending" without waiting for the
// disk, the client polls the status, and the additions of many requests
// share one durable commit.
type Submitter interface {
	// Submit queues s. When it returns nil, the objects' date_added is
	// decided: every later Submit or AddObjects on the store orders after
	// them. Nothing is durable until s.Done is called with a nil error.
	Submit(ctx context.Context, s Submission) error
}

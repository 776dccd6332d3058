package blind

import (
	"fmt"
	"time"

	"github.com/entente-cti/entente"
)

// Reason says why a request was refused.
type Reason string

// The reasons for refusing an evaluation request or a set.
const (
	// ReasonLength: an element is not ElementLen bytes long (400).
	ReasonLength Reason = "bad_length"
	// ReasonElement: an element is not the canonical encoding of a group
	// element (not on the curve, not canonical) (400).
	ReasonElement Reason = "bad_element"
	// ReasonIdentity: an element is the identity (400).
	ReasonIdentity Reason = "identity_element"
	// ReasonEmpty: a batch without elements (400).
	ReasonEmpty Reason = "empty_batch"
	// ReasonBatchTooLarge: more elements than the server takes in one
	// batch (413).
	ReasonBatchTooLarge Reason = "batch_too_large"
	// ReasonReplay: a batch already evaluated, or the same element twice
	// in one batch (409).
	ReasonReplay Reason = "replayed_batch"
	// ReasonEpochExpired: the epoch named is not the current one (409):
	// fetch the current epoch's set and translate again.
	ReasonEpochExpired Reason = "epoch_expired"
	// ReasonBudget: the partner's budget for the period is spent (429,
	// with RetryAfter).
	ReasonBudget Reason = "budget_exhausted"
	// ReasonNoAccess: the partner has no blind access (403).
	ReasonNoAccess Reason = "no_blind_access"
)

// Error is a refused request. Its message is safe to show to the partner;
// [Error.Status] is the HTTP status it maps to, and it unwraps to an
// [entente.Error] with the matching code, so the node's error table
// applies unchanged.
type Error struct {
	Reason Reason
	// Index is the position of the faulty element in the batch, or -1.
	Index int
	// Message says what was wrong, naming the field.
	Message string
	// RetryAfter is, for ReasonBudget, how long until the next period.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// Status returns the HTTP status code of the refusal.
func (e *Error) Status() int {
	switch e.Reason {
	case ReasonBatchTooLarge:
		return 413
	case ReasonReplay, ReasonEpochExpired:
		return 409
	case ReasonBudget:
		return 429
	case ReasonNoAccess:
		return 403
	}
	return 400
}

// Code returns the application error code of the refusal.
func (e *Error) Code() entente.Code {
	switch e.Reason {
	case ReasonBatchTooLarge:
		return entente.ETOOLARGE
	case ReasonReplay, ReasonEpochExpired:
		return entente.ECONFLICT
	case ReasonBudget:
		return entente.ERATELIMIT
	case ReasonNoAccess:
		return entente.EFORBIDDEN
	}
	return entente.EINVALID
}

// Unwrap returns the refusal as an [entente.Error].
func (e *Error) Unwrap() error { return &entente.Error{Code: e.Code(), Message: e.Message} }

// Is makes errors.Is(err, &Error{Reason: r}) test the reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

func refuse(r Reason, index int, format string, args ...any) *Error {
	return &Error{Reason: r, Index: index, Message: fmt.Sprintf(format, args...)}
}

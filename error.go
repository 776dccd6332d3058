package entente

import (
	"errors"
	"fmt"
)

// Code classifies an application error. Adapters map codes to their own
// vocabulary (HTTP status codes, exit codes) in one table each.
type Code string

// Application error codes.
const (
	EINVALID       Code = "invalid"        // the input is malformed or breaks a rule
	ENOTFOUND      Code = "not_found"      // the named thing does not exist (or is not visible)
	ECONFLICT      Code = "conflict"       // the request conflicts with the current state
	EUNAUTHORIZED  Code = "unauthorized"   // no valid credentials were presented
	EFORBIDDEN     Code = "forbidden"      // the credentials do not allow this
	ETOOLARGE      Code = "too_large"      // the request exceeds a size limit
	EUNSUPPORTED   Code = "unsupported"    // the request's media type is not supported
	ENOTACCEPTABLE Code = "not_acceptable" // no acceptable media type can be produced
	ERATELIMIT     Code = "rate_limited"   // too many requests
	EUNAVAILABLE   Code = "unavailable"    // a dependency is temporarily unavailable
	EINTERNAL      Code = "internal"       // anything else; details are logged, never shown
)

// Error is an error whose message is safe to show to the client. Any error
// that is not an *Error (after unwrapping) is internal: its text is logged
// and the client is told only "internal error".
type Error struct {
	Code    Code
	Message string
	// Err is an optional underlying cause. It is not shown to clients.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the message of the
// first *Error in its chain, or "internal error".
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

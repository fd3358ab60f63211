package remote

import (
	"errors"
	"fmt"

	"github.com/stateloop/stateloop/functions"
)

var (
	// ErrCallTimeout is wrapped by the error of an invocation that got no
	// usable response within the endpoint's call timeout, retries
	// included. The function may have run (a response can be lost), so a
	// runtime that tries again must expect the function to see the same
	// messages twice, as StateFun does.
	ErrCallTimeout = errors.New("remote: call timeout exhausted")
	// ErrProtocol is wrapped by the error of an invocation whose response
	// breaks the request-reply protocol: an HTTP status that is not
	// retried (404, 400, a redirect...), a wrong content type, a
	// body that does not decode, or effects that are not valid (a state
	// change of an undeclared state or with the wrong type name, a message
	// without a type name, a message to an invalid address). Such errors
	// are permanent: the same request would get the same response.
	ErrProtocol = errors.New("remote: protocol violation")
	// ErrStateType is wrapped by the error of an invocation that was not
	// sent because a stored state value has another type name than the
	// function now declares for it. The stored value needs a migration
	// (or the old declaration back); retrying cannot help.
	ErrStateType = errors.New("remote: stored state has another type")
)

// Error is the error of a failed [Client.Invoke]. Its message names the
// endpoint URL and the invoked address and says what to check.
//
// A permanent error (one that a retry cannot fix: a 4xx status other than
// the retryable ones, a protocol violation, a state type conflict) wraps
// [functions.Permanent], so [functions.IsPermanent] and [IsPermanent]
// report it.
type Error struct {
	// URL is the endpoint URL the request went to.
	URL string
	// Address is the invoked address.
	Address functions.Address
	// Attempts is the number of HTTP requests made, retries and
	// missing-state round trips included.
	Attempts int
	// Status is the HTTP status of the last response, 0 if none arrived.
	Status int
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("remote: invoke %s at %s: %v", e.Address, e.URL, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is an invocation error that a retry
// cannot fix. It is [functions.IsPermanent], repeated here for callers
// that only import this package.
func IsPermanent(err error) bool { return functions.IsPermanent(err) }

// detailError is a cause with a message of its own that wraps a sentinel
// (for errors.Is) and optionally a lower-level error, without repeating
// the sentinel's "remote:" prefix in the middle of the message.
type detailError struct {
	msg  string
	errs []error
}

func (e *detailError) Error() string   { return e.msg }
func (e *detailError) Unwrap() []error { return e.errs }

// newDetail returns an error with message msg wrapping sentinel and, if
// not nil, cause.
func newDetail(sentinel error, cause error, msg string) error {
	errs := []error{sentinel}
	if cause != nil {
		errs = append(errs, cause)
	}
	return &detailError{msg: msg, errs: errs}
}

// protocolError returns a permanent error wrapping ErrProtocol, with the
// message "protocol violation: " and the formatted text.
func protocolError(format string, args ...any) error {
	return functions.Permanent(newDetail(ErrProtocol, nil, "protocol violation: "+fmt.Sprintf(format, args...)))
}

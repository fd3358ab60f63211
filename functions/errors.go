package functions

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidTypeName is wrapped by errors about malformed type names.
	ErrInvalidTypeName = errors.New("functions: invalid type name")
	// ErrUnhandledType is returned by a [Router] for a message type it has
	// no handler for.
	ErrUnhandledType = errors.New("functions: unhandled message type")
	// ErrUnknownFunction is returned for a message to a function type that
	// is not registered.
	ErrUnknownFunction = errors.New("functions: unknown function type")
	// ErrUndeclaredState is the invocation error when a function uses a
	// state value that its [Spec] does not declare.
	ErrUndeclaredState = errors.New("functions: undeclared state")
	// ErrUndeclaredEgress is the invocation error when a function sends to
	// an egress that its [Spec] does not declare.
	ErrUndeclaredEgress = errors.New("functions: undeclared egress")
)

// InvocationError is the error of a failed invocation: the function
// returned an error, panicked, or used the API wrongly.
type InvocationError struct {
	Address Address
	Err     error
	// Panic is true when the function panicked; Stack then holds the
	// goroutine's stack at the panic, starting at the user's frames.
	Panic bool
	Stack string
}

func (e *InvocationError) Error() string {
	if e.Panic {
		return fmt.Sprintf("functions: invoke %s: panic: %v", e.Address, e.Err)
	}
	return fmt.Sprintf("functions: invoke %s: %v", e.Address, e.Err)
}

func (e *InvocationError) Unwrap() error { return e.Err }

// DecodeError reports stored state or a message that its codec cannot
// decode. A function whose state does not decode is not called.
type DecodeError struct {
	// State is the state name, or "" when a message failed to decode.
	State    string
	TypeName TypeName
	Err      error
}

func (e *DecodeError) Error() string {
	if e.State != "" {
		return fmt.Sprintf("functions: decode state %q (%s): %v", e.State, e.TypeName, e.Err)
	}
	return fmt.Sprintf("functions: decode message %s: %v", e.TypeName, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the runtime sends the message
// to the dead-letter topic at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// [Permanent], or is a [DecodeError], [ErrUnhandledType],
// [ErrUnknownFunction], [ErrUndeclaredState], [ErrUndeclaredEgress] or
// [ErrInvalidTypeName]:
// errors that a retry cannot fix. Invalid uses of a [Context] (sending to
// an invalid address, a message that failed to encode) are permanent too.
func IsPermanent(err error) bool {
	var p permanentError
	var d *DecodeError
	return errors.As(err, &p) || errors.As(err, &d) ||
		errors.Is(err, ErrUnhandledType) || errors.Is(err, ErrUnknownFunction) ||
		errors.Is(err, ErrUndeclaredState) || errors.Is(err, ErrUndeclaredEgress) || errors.Is(err, ErrInvalidTypeName)
}

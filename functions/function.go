package functions

import (
	"context"
	"fmt"
	"time"
)

// Function is the code of a function type. The runtime calls Invoke once
// per message, never concurrently for one address, and applies the
// effects recorded on ctx only when Invoke returns nil.
//
// A returned error is retried with backoff and then sent to the dead-letter
// topic; wrap it with [Permanent] to skip the retries. A panic is recovered
// and treated as an error.
type Function interface {
	Invoke(ctx Context, msg Message) error
}

// FunctionFunc adapts a plain func to [Function], as http.HandlerFunc does.
type FunctionFunc func(ctx Context, msg Message) error

// Invoke calls f(ctx, msg).
func (f FunctionFunc) Invoke(ctx Context, msg Message) error { return f(ctx, msg) }

// Context is what a function sees during one invocation: the address being
// invoked, its caller, and the methods that record effects.
//
// A Context is valid only until Invoke returns. Do not keep it or use it
// from other goroutines.
//
// Effect methods return nothing. The first invalid call (an invalid address,
// a message that failed to encode) sticks to the invocation and becomes its
// error, like bufio.Writer; all effects are then discarded.
type Context interface {
	context.Context
	// Self returns the address being invoked.
	Self() Address
	// Caller returns the address of the function that sent the message, and
	// false for messages from an ingress.
	Caller() (Address, bool)
	// Send sends msg to the address to. The target may be any address,
	// including Self: cycles are allowed.
	Send(to Address, msg Message)
	// Reply sends msg to the caller: to the function that sent the message,
	// or, for a request to stateloop's HTTP ingress that waits for an
	// answer (?wait=), back to the HTTP client as the response. When the
	// message has no caller (it came from a Kafka ingress, or from
	// `stateloop send --to`), nobody waits for an answer and the reply is
	// dropped, as the reply to an HTTP request without ?wait= is; the
	// runtime logs it at debug level. So one function can answer HTTP
	// requests and take the same messages from Kafka. Use [Context.Caller]
	// to tell the cases apart. A msg that failed to encode fails the
	// invocation either way.
	//
	// StateFun's 2.x Python SDK raises an error here instead; stateloop
	// does not, because whether a message has a caller depends on how it
	// was sent, not on the function.
	Reply(msg Message)
	// SendEgress sends msg to the egress named egress, which the function's
	// [Spec] must declare in Egresses (else the invocation fails with
	// [ErrUndeclaredEgress]). For a Kafka egress, msg is a
	// [KafkaRecordType] message (see [KafkaMessage]).
	SendEgress(egress TypeName, msg Message)
	// SendAfter sends msg to the address to once delay has passed, with
	// Self as its caller (StateFun's delayed message). The message is kept
	// in Kafka until then, so it arrives after crashes and restarts, once.
	// It may arrive a little late (see docs/timers.md), never early.
	SendAfter(delay time.Duration, to Address, msg Message)
	// SendAfterWithToken is SendAfter with a cancellation token: while the
	// message waits, CancelDelayed(token) drops it. A token belongs to the
	// sending address; sending again with the token of a waiting message
	// replaces that message.
	SendAfterWithToken(delay time.Duration, token string, to Address, msg Message)
	// CancelDelayed drops the delayed message this address sent with
	// token, if it is still waiting; otherwise (an unknown token, a message
	// already delivered) it does nothing.
	CancelDelayed(token string)

	invocation() *invocation
}

// Handler is one entry of a [Router], made by [Handle].
type Handler struct {
	typeName TypeName
	fn       func(Context, Message) error
}

// Handle returns a handler that decodes messages of type t and passes them
// to fn. A message that does not decode fails the invocation with a
// *[DecodeError].
func Handle[T any](t Type[T], fn func(ctx Context, v T) error) Handler {
	return Handler{typeName: t.name, fn: func(ctx Context, m Message) error {
		v, err := t.As(m)
		if err != nil {
			return err
		}
		return fn(ctx, v)
	}}
}

// Router returns a function that dispatches each message to the handler of
// its type. A message of any other type fails with [ErrUnhandledType]. It
// panics if two handlers have the same type, a programming error.
func Router(handlers ...Handler) Function {
	m := make(map[TypeName]func(Context, Message) error, len(handlers))
	for _, h := range handlers {
		if _, dup := m[h.typeName]; dup {
			panic(fmt.Sprintf("functions: Router: two handlers for %s", h.typeName))
		}
		m[h.typeName] = h.fn
	}
	return FunctionFunc(func(ctx Context, msg Message) error {
		fn, ok := m[msg.TypeName()]
		if !ok {
			return fmt.Errorf("%w %s", ErrUnhandledType, msg.TypeName())
		}
		return fn(ctx, msg)
	})
}

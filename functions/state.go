package functions

import (
	"fmt"
	"regexp"
	"time"
)

// State declares one named, typed value that every address of a function
// type owns. Declare it once at package level and list it in the [Spec]:
//
//	var visits = functions.NewState("visits", functions.LongType)
//
// Its methods read and change the value of the address being invoked. They
// must be called with the [Context] of a running invocation, and the state
// must be declared in that function's Spec; otherwise the invocation fails
// with [ErrUndeclaredState].
type State[T any] struct {
	name string
	typ  Type[T]
	exp  Expiration
}

// Expiration says when a state value expires: a runtime then reads it as
// absent and removes it. Expiration uses processing time (the clock of the
// machine running the function's address).
type Expiration struct {
	Mode ExpireMode
	// After is the time to live after the last write or call.
	After time.Duration
}

// ExpireMode is when the time to live of an expiring state value starts.
type ExpireMode int

const (
	// ExpireNever keeps the value until it is cleared.
	ExpireNever ExpireMode = iota
	// ExpireAfterWrite expires the value After its last write.
	ExpireAfterWrite
	// ExpireAfterCall expires the value After the last invocation of its
	// address, whether it read or wrote the value or not.
	ExpireAfterCall
)

func (m ExpireMode) String() string {
	switch m {
	case ExpireAfterWrite:
		return "after-write"
	case ExpireAfterCall:
		return "after-call"
	default:
		return "never"
	}
}

// NewState declares a state value with a name and a type. The name must
// match ^[a-zA-Z_][a-zA-Z_0-9]*$ (as in StateFun); [Registry.Register]
// checks it.
func NewState[T any](name string, typ Type[T]) State[T] {
	return State[T]{name: name, typ: typ}
}

// ExpireAfterWrite returns the state declared to expire ttl after each
// write of its value (StateFun's expireAfterWrite).
func (s State[T]) ExpireAfterWrite(ttl time.Duration) State[T] {
	s.exp = Expiration{Mode: ExpireAfterWrite, After: ttl}
	return s
}

// ExpireAfterCall returns the state declared to expire ttl after the last
// invocation of its address (StateFun's expireAfterCall).
func (s State[T]) ExpireAfterCall(ttl time.Duration) State[T] {
	s.exp = Expiration{Mode: ExpireAfterCall, After: ttl}
	return s
}

// Expiration returns when the state's value expires.
func (s State[T]) Expiration() Expiration { return s.exp }

// Name returns the state's name.
func (s State[T]) Name() string { return s.name }

// TypeName returns the type name the value is stored with.
func (s State[T]) TypeName() TypeName { return s.typ.name }

// Type returns the state's type, whose codec encodes the stored bytes (for
// reading or seeding stored state, as functionstest.StateOf and SetState
// do).
func (s State[T]) Type() Type[T] { return s.typ }

// Get returns the current value and whether it is set. A value set earlier
// in the same invocation is returned as set.
func (s State[T]) Get(ctx Context) (T, bool) {
	var zero T
	c := ctx.invocation().cell(s.name, s.typ.name)
	if c == nil || !c.present {
		return zero, false
	}
	if c.decoded == nil { // the zero value of an interface type
		return zero, true
	}
	v, ok := c.decoded.(T)
	if !ok {
		ctx.invocation().fail(fmt.Errorf("%w: state %q is declared with another type", ErrUndeclaredState, s.name))
		return zero, false
	}
	return v, true
}

// Set replaces the value. An encode error fails the invocation.
func (s State[T]) Set(ctx Context, v T) {
	inv := ctx.invocation()
	c := inv.cell(s.name, s.typ.name)
	if c == nil {
		return
	}
	b, err := s.typ.codec.Encode(v)
	if err != nil {
		inv.fail(fmt.Errorf("functions: encode state %q: %w", s.name, err))
		return
	}
	c.decoded, c.encoded, c.present, c.dirty = v, b, true, true
}

// Clear removes the value; Get then reports it as not set.
func (s State[T]) Clear(ctx Context) {
	c := ctx.invocation().cell(s.name, s.typ.name)
	if c == nil {
		return
	}
	var zero T
	c.decoded, c.encoded, c.present, c.dirty = zero, nil, false, true
}

func (s State[T]) decl() stateDecl {
	d := stateDecl{name: s.name, typeName: s.typ.name, exp: s.exp}
	if s.typ.codec != nil { // a zero Type has none; Register reports it
		d.decode = func(b []byte) (any, error) { return s.typ.codec.Decode(b) }
	}
	return d
}

// StateSpec is implemented by [State] values, for listing them in a [Spec].
type StateSpec interface {
	// Name returns the state's name.
	Name() string
	// TypeName returns the type name its value is stored with.
	TypeName() TypeName
	// Expiration returns when its value expires.
	Expiration() Expiration

	decl() stateDecl
}

type stateDecl struct {
	name     string
	typeName TypeName
	exp      Expiration
	decode   func([]byte) (any, error)
}

var stateNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z_0-9]*$`)

package driver

import (
	"context"
	"fmt"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/internal/hook"
)

// StoredValue is a state value as a runtime stores it: the type name it was
// written with and its bytes.
//
// StoredValue, [StateChange] and [DelayedMessage] are aliases of struct
// types rather than defined types so that package functions, which cannot
// import this package, builds values of the very same types; they have no
// methods.
type StoredValue = struct {
	TypeName functions.TypeName
	Value    []byte
	// ExpiresAt is when an expiring value expires (set by [ApplyState]
	// from the state's [functions.Expiration]); zero for a value that does
	// not.
	ExpiresAt time.Time
}

// StateChange is the new value of one state value; Deleted means cleared.
type StateChange = struct {
	Name    string
	Value   StoredValue
	Deleted bool
}

// DelayedMessage is a message to send after a delay, or (Cancel) the
// cancellation of one by its token.
type DelayedMessage = struct {
	// Delay is at least 0.
	Delay   time.Duration
	To      functions.Address
	Message functions.Message
	// Token, if not empty, names the message for cancellation; tokens
	// belong to the sending address.
	Token string
	// Cancel marks a cancellation of the message sent with Token; Delay,
	// To and Message are then unset.
	Cancel bool
}

// Invocation is one call of a function, as a runtime builds it.
type Invocation struct {
	Target  functions.Address
	Caller  *functions.Address // nil for a message from an ingress
	Message functions.Message
	// State holds the address's stored values by state name, without
	// expired ones (see [Unexpired]). Values of names the function type
	// does not declare are ignored.
	State map[string]StoredValue
}

// Effects are what a successful invocation asks the runtime to do, in the
// order the function recorded them.
type Effects struct {
	// State has one entry per declared state value that the invocation
	// changed, in declaration order; [ApplyState] applies them.
	State    []StateChange
	Messages []functions.OutgoingMessage
	Egress   []functions.EgressMessage
	// Delayed are delayed messages and their cancellations, in order.
	Delayed []DelayedMessage
	// DroppedReplies are the replies ([functions.Context.Reply]) to a
	// message without a caller: nobody waits for them, so the runtime
	// drops them (the processor logs each at debug level).
	DroppedReplies []functions.Message
}

// Invoke runs the function of inv.Target.Type in reg for one message.
//
// It returns an error wrapping [functions.ErrUnknownFunction] for an
// unregistered type, a *[functions.DecodeError] (inside a
// *[functions.InvocationError]) when stored state does not decode, and a
// *[functions.InvocationError] when the function returns an error, panics
// or records an invalid effect. Effects are returned only with a nil
// error; the runtime applies all of them or, on error, none.
func Invoke(ctx context.Context, reg *functions.Registry, inv Invocation) (Effects, error) {
	state, msgs, egress, delayed, dropped, err := engine(ctx, reg, inv.Target, inv.Caller, inv.Message, inv.State)
	if err != nil {
		return Effects{}, err
	}
	return Effects{State: state, Messages: msgs, Egress: egress, Delayed: delayed, DroppedReplies: dropped}, nil
}

// engineFunc is the type of package functions' engine (see internal/hook).
type engineFunc = func(ctx context.Context, reg *functions.Registry, target functions.Address, caller *functions.Address,
	msg functions.Message, state map[string]StoredValue) ([]StateChange, []functions.OutgoingMessage, []functions.EgressMessage, []DelayedMessage, []functions.Message, error)

var engine = mustEngine()

func mustEngine() engineFunc {
	f, ok := hook.Invoke.(engineFunc)
	if !ok {
		panic(fmt.Sprintf("functions/driver: the engine of package functions is a %T, want a %T: "+
			"change the types in functions/invoke.go and functions/driver/driver.go together", hook.Invoke, engineFunc(nil)))
	}
	return f
}

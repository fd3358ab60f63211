package functions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// This file is the contract between a runtime (the processor, the
// functionstest harness) and function code: a runtime hands an Invocation
// with the address's stored state to Registry.Invoke and applies the
// returned Effects if, and only if, the error is nil.

// StoredValue is a state value as a runtime stores it: the type name it was
// written with and its bytes.
type StoredValue struct {
	TypeName TypeName
	Value    []byte
	// ExpiresAt is when an expiring value expires (set by the runtime from
	// the state's [Expiration]); zero for a value that does not.
	ExpiresAt time.Time
}

// Invocation is one call of a function, as a runtime builds it.
type Invocation struct {
	Target  Address
	Caller  *Address // nil for a message from an ingress
	Message Message
	// State holds the address's stored values by state name. Values of
	// names the function type does not declare are ignored.
	State map[string]StoredValue
}

// Effects are what a successful invocation asks the runtime to do, in the
// order the function recorded them.
type Effects struct {
	// State has one entry per declared state value that the invocation
	// changed, in declaration order.
	State    []StateChange
	Messages []OutgoingMessage
	Egress   []EgressMessage
	// Delayed are delayed messages and their cancellations, in order.
	Delayed []DelayedMessage
}

// DelayedMessage is a message to send after a delay, or (Cancel) the
// cancellation of one by its token.
type DelayedMessage struct {
	// Delay is at least 0.
	Delay   time.Duration
	To      Address
	Message Message
	// Token, if not empty, names the message for CancelDelayed; tokens
	// belong to the sending address.
	Token string
	// Cancel marks a cancellation of the message sent with Token; Delay,
	// To and Message are then unset.
	Cancel bool
}

// StateChange is the new value of one state value; Deleted means cleared.
type StateChange struct {
	Name    string
	Value   StoredValue
	Deleted bool
}

// OutgoingMessage is a message to an address.
type OutgoingMessage struct {
	To      Address
	Message Message
}

// EgressMessage is a message to an egress.
type EgressMessage struct {
	Egress  TypeName
	Message Message
}

// Invoke runs the function of inv.Target.Type for one message.
//
// It returns an error wrapping [ErrUnknownFunction] for an unregistered
// type, a *[DecodeError] (inside an *[InvocationError]) when stored state
// does not decode, and an *[InvocationError] when the function returns an
// error, panics or records an invalid effect. Effects are returned only
// with a nil error.
func (r *Registry) Invoke(ctx context.Context, inv Invocation) (Effects, error) {
	reg := r.lookup(inv.Target.Type)
	if reg == nil {
		return Effects{}, fmt.Errorf("%w %s", ErrUnknownFunction, inv.Target.Type)
	}
	in := &invocation{Context: ctx, self: inv.Target, caller: inv.Caller, decls: reg.state, egresses: reg.spec.Egresses}
	in.cells = make([]cell, len(reg.state))
	for i, d := range reg.state {
		sv, ok := inv.State[d.name]
		if !ok {
			continue
		}
		if sv.TypeName != d.typeName {
			return Effects{}, &InvocationError{Address: inv.Target, Err: &DecodeError{State: d.name, TypeName: sv.TypeName,
				Err: fmt.Errorf("stored with type %s, declared as %s", sv.TypeName, d.typeName)}}
		}
		v, err := d.decode(sv.Value)
		if err != nil {
			return Effects{}, &InvocationError{Address: inv.Target, Err: &DecodeError{State: d.name, TypeName: sv.TypeName, Err: err}}
		}
		in.cells[i] = cell{decoded: v, encoded: sv.Value, present: true}
	}
	if err := in.run(reg.spec.Function, inv.Message); err != nil {
		return Effects{}, err
	}
	for i, c := range in.cells {
		if !c.dirty {
			continue
		}
		d := reg.state[i]
		in.effects.State = append(in.effects.State, StateChange{
			Name:    d.name,
			Value:   StoredValue{TypeName: d.typeName, Value: c.encoded},
			Deleted: !c.present,
		})
	}
	return in.effects, nil
}

type cell struct {
	decoded any
	encoded []byte
	present bool
	dirty   bool
}

type invocation struct {
	context.Context
	self     Address
	caller   *Address
	decls    []stateDecl
	egresses []TypeName // declared
	cells    []cell
	effects  Effects
	err      error
}

func (in *invocation) run(f Function, msg Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			perr, ok := p.(error)
			if !ok {
				perr = fmt.Errorf("%v", p)
			}
			err = &InvocationError{Address: in.self, Err: perr, Panic: true, Stack: userStack(debug.Stack())}
		}
	}()
	if err := f.Invoke(in, msg); err != nil {
		return &InvocationError{Address: in.self, Err: err}
	}
	if in.err != nil {
		return &InvocationError{Address: in.self, Err: in.err}
	}
	return nil
}

// userStack drops the frames of the runtime and of this package above the
// user's code, so the first frame shown is the one that panicked.
func userStack(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i := 1; i+1 < len(lines); i += 2 {
		if strings.HasPrefix(lines[i], "panic(") {
			return strings.Join(append(lines[:1:1], lines[i+2:]...), "\n")
		}
	}
	return string(stack)
}

func (in *invocation) invocation() *invocation { return in }

// fail records the first misuse of the API in this invocation. Misuse is
// deterministic (an invalid address, a value that does not encode), so a
// retry cannot fix it: the error is permanent.
func (in *invocation) fail(err error) {
	if in.err == nil {
		in.err = Permanent(err)
	}
}

// cell returns the cell of the declared state name, or fails the
// invocation if there is none or it is declared with another type: writing
// bytes of one codec under another type name would corrupt the state.
func (in *invocation) cell(name string, typeName TypeName) *cell {
	for i := range in.decls {
		if in.decls[i].name == name {
			if in.decls[i].typeName != typeName {
				in.fail(fmt.Errorf("%w %q: used with type %s, declared in the Spec of %s with %s",
					ErrUndeclaredState, name, typeName, in.self.Type, in.decls[i].typeName))
				return nil
			}
			return &in.cells[i]
		}
	}
	in.fail(fmt.Errorf("%w %q: declare it in the Spec of %s", ErrUndeclaredState, name, in.self.Type))
	return nil
}

func (in *invocation) Self() Address { return in.self }

func (in *invocation) Caller() (Address, bool) {
	if in.caller == nil {
		return Address{}, false
	}
	return *in.caller, true
}

func (in *invocation) Send(to Address, msg Message) {
	if err := to.Validate(); err != nil {
		in.fail(fmt.Errorf("functions: send to %s: %w", to, err))
		return
	}
	if err := checkMessage(msg); err != nil {
		in.fail(fmt.Errorf("functions: send to %s: %w", to, err))
		return
	}
	in.effects.Messages = append(in.effects.Messages, OutgoingMessage{To: to, Message: msg})
}

func (in *invocation) Reply(msg Message) {
	if in.caller == nil {
		in.fail(errors.New("functions: reply: the message has no caller to reply to (it came from an ingress)"))
		return
	}
	in.Send(*in.caller, msg)
}

func (in *invocation) SendEgress(egress TypeName, msg Message) {
	if _, err := ParseTypeName(string(egress)); err != nil {
		in.fail(fmt.Errorf("functions: send to egress: %w", err))
		return
	}
	if !slices.Contains(in.egresses, egress) {
		in.fail(fmt.Errorf("%w %s: declare it in the Spec of %s (Egresses)", ErrUndeclaredEgress, egress, in.self.Type))
		return
	}
	if err := checkMessage(msg); err != nil {
		in.fail(fmt.Errorf("functions: send to egress %s: %w", egress, err))
		return
	}
	in.effects.Egress = append(in.effects.Egress, EgressMessage{Egress: egress, Message: msg})
}

func (in *invocation) SendAfter(delay time.Duration, to Address, msg Message) {
	in.sendAfter(delay, "", to, msg)
}

func (in *invocation) SendAfterWithToken(delay time.Duration, token string, to Address, msg Message) {
	if token == "" {
		in.fail(fmt.Errorf("functions: send after %v to %s: empty cancellation token; use SendAfter for a message that is never cancelled", delay, to))
		return
	}
	in.sendAfter(delay, token, to, msg)
}

func (in *invocation) sendAfter(delay time.Duration, token string, to Address, msg Message) {
	if delay < 0 {
		in.fail(fmt.Errorf("functions: send after %v to %s: negative delay", delay, to))
		return
	}
	if err := to.Validate(); err != nil {
		in.fail(fmt.Errorf("functions: send after %v to %s: %w", delay, to, err))
		return
	}
	if err := checkMessage(msg); err != nil {
		in.fail(fmt.Errorf("functions: send after %v to %s: %w", delay, to, err))
		return
	}
	in.effects.Delayed = append(in.effects.Delayed, DelayedMessage{Delay: delay, To: to, Message: msg, Token: token})
}

func (in *invocation) CancelDelayed(token string) {
	if token == "" {
		in.fail(errors.New("functions: cancel a delayed message: empty token"))
		return
	}
	in.effects.Delayed = append(in.effects.Delayed, DelayedMessage{Token: token, Cancel: true})
}

func checkMessage(m Message) error {
	if m.err != nil {
		return m.err
	}
	if _, err := ParseTypeName(string(m.typeName)); err != nil {
		return errors.New("functions: message has no valid type name (build it with Type.Of or NewMessage)")
	}
	return nil
}

// Unexpired returns the values of state that have not expired at now: the
// state an invocation at now sees. It returns state itself when nothing
// expired.
func Unexpired(state map[string]StoredValue, now time.Time) map[string]StoredValue {
	var out map[string]StoredValue
	for name, v := range state {
		if v.ExpiresAt.IsZero() || now.Before(v.ExpiresAt) {
			continue
		}
		if out == nil {
			out = maps.Clone(state)
		}
		delete(out, name)
	}
	if out == nil {
		return state
	}
	return out
}

// StampExpiry sets the expiry of the values of state after an invocation
// at now that wrote the values named in written: a value of a state that
// expires after write gets now + After when written; one that expires
// after call gets it at every invocation. exps holds the declared
// expirations by name. It reports whether any expiry changed.
func StampExpiry(state map[string]StoredValue, written []string, exps map[string]Expiration, now time.Time) bool {
	changed := false
	for name, v := range state {
		e := exps[name]
		if e.Mode == ExpireNever || (e.Mode == ExpireAfterWrite && !slices.Contains(written, name)) {
			continue
		}
		if at := now.Add(e.After); !at.Equal(v.ExpiresAt) {
			v.ExpiresAt = at
			state[name] = v
			changed = true
		}
	}
	return changed
}

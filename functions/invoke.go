package functions

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions/internal/hook"
)

// This file is the invocation engine. A runtime reaches it through
// package functions/driver (driver.Invoke), which holds the types a runtime
// exchanges with it; internal/hook carries it there, so that nothing of it
// is part of this package's API.

func init() { hook.Invoke = invoke }

// The types below are driver.StoredValue, driver.StateChange and
// driver.DelayedMessage: driver declares them as aliases of the same
// unnamed struct types, so the engine builds values of them without
// copying and without naming driver (which imports this package). Driver
// asserts the engine's type when it is initialised, so a difference
// between the two spellings fails every program and test that uses driver
// at once; change both together.
type (
	storedValue = struct {
		TypeName  TypeName
		Value     []byte
		ExpiresAt time.Time
	}
	stateChange = struct {
		Name    string
		Value   storedValue
		Deleted bool
	}
	delayedMessage = struct {
		Delay   time.Duration
		To      Address
		Message Message
		Token   string
		Cancel  bool
	}
)

// recorded are the effects an invocation records, in order.
type recorded struct {
	messages []OutgoingMessage
	egress   []EgressMessage
	delayed  []delayedMessage
	dropped  []Message // replies without a caller
}

// invoke runs the function of target.Type for one message, with state
// holding the address's stored values by state name. It is driver.Invoke,
// whose documentation states the contract; effects are returned only with
// a nil error.
func invoke(ctx context.Context, r *Registry, target Address, caller *Address, msg Message, state map[string]storedValue) (
	[]stateChange, []OutgoingMessage, []EgressMessage, []delayedMessage, []Message, error) {
	reg := r.lookup(target.Type)
	if reg == nil {
		return nil, nil, nil, nil, nil, fmt.Errorf("%w %s", ErrUnknownFunction, target.Type)
	}
	in := &invocation{Context: ctx, self: target, caller: caller, decls: reg.state, egresses: reg.spec.Egresses}
	in.cells = make([]cell, len(reg.state))
	for i, d := range reg.state {
		sv, ok := state[d.name]
		if !ok {
			continue
		}
		if sv.TypeName != d.typeName {
			return nil, nil, nil, nil, nil, &InvocationError{Address: target, Err: &DecodeError{State: d.name, TypeName: sv.TypeName,
				Err: fmt.Errorf("stored with type %s, declared as %s", sv.TypeName, d.typeName)}}
		}
		v, err := d.decode(sv.Value)
		if err != nil {
			return nil, nil, nil, nil, nil, &InvocationError{Address: target, Err: &DecodeError{State: d.name, TypeName: sv.TypeName, Err: err}}
		}
		in.cells[i] = cell{decoded: v, encoded: sv.Value, present: true}
	}
	if err := in.run(reg.spec.Function, msg); err != nil {
		return nil, nil, nil, nil, nil, err
	}
	var changes []stateChange
	for i, c := range in.cells {
		if !c.dirty {
			continue
		}
		d := reg.state[i]
		changes = append(changes, stateChange{
			Name:    d.name,
			Value:   storedValue{TypeName: d.typeName, Value: c.encoded},
			Deleted: !c.present,
		})
	}
	return changes, in.rec.messages, in.rec.egress, in.rec.delayed, in.rec.dropped, nil
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
	rec      recorded
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
	in.rec.messages = append(in.rec.messages, OutgoingMessage{To: to, Message: msg})
}

func (in *invocation) Reply(msg Message) {
	if in.caller != nil {
		in.Send(*in.caller, msg)
		return
	}
	if err := checkMessage(msg); err != nil {
		in.fail(fmt.Errorf("functions: reply: %w", err))
		return
	}
	in.rec.dropped = append(in.rec.dropped, msg)
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
	in.rec.egress = append(in.rec.egress, EgressMessage{Egress: egress, Message: msg})
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
	in.rec.delayed = append(in.rec.delayed, delayedMessage{Delay: delay, To: to, Message: msg, Token: token})
}

func (in *invocation) CancelDelayed(token string) {
	if token == "" {
		in.fail(errors.New("functions: cancel a delayed message: empty token"))
		return
	}
	in.rec.delayed = append(in.rec.delayed, delayedMessage{Token: token, Cancel: true})
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

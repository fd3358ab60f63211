package functionstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/topology"
)

// ErrTooManyInvocations is wrapped by the error of [Harness.Run] when the
// functions are still sending each other messages after the maximum number
// of invocations.
var ErrTooManyInvocations = errors.New("functionstest: too many invocations")

// Harness runs the functions of a registry in memory. Create one with
// [New]; the zero Harness is not usable.
type Harness struct {
	reg *functions.Registry

	mu     sync.Mutex
	state  map[functions.Address]map[string]driver.StoredValue
	sent   []functions.OutgoingMessage
	egress []functions.EgressMessage

	// the fake clock and the delayed messages waiting for it
	now     time.Time
	delayed []Delayed
	seq     int
}

// Result holds the effects of one successful invocation.
type Result struct {
	// Messages are the messages the function sent, in order.
	Messages []functions.OutgoingMessage
	// Egress are the egress records the function sent, in order.
	Egress []functions.EgressMessage
	// State are the changes to the invoked address's state, in declaration
	// order; the harness has applied them.
	State []driver.StateChange
	// Delayed are the delayed messages and cancellations the function
	// sent; the harness keeps the messages until [Harness.Advance] makes
	// them due.
	Delayed []driver.DelayedMessage
	// DroppedReplies are the replies the function made to a message
	// without a caller (see [functions.Context.Reply]); the runtime drops
	// them.
	DroppedReplies []functions.Message
}

// New returns a harness for the function types of reg, with empty state
// for every address. It panics if reg is nil, and, as httptest.NewServer
// does when it cannot listen, with an error listing every problem when an
// option's check fails (see [WithTopology]).
func New(reg *functions.Registry, opts ...Option) *Harness {
	if reg == nil {
		panic("functionstest: New: nil registry")
	}
	var errs []error
	for _, o := range opts {
		if err := o.check(reg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		panic(fmt.Errorf("functionstest: New: %w", err))
	}
	return &Harness{reg: reg, state: make(map[functions.Address]map[string]driver.StoredValue), now: Epoch}
}

// Option configures a [Harness]; pass options to [New].
type Option interface {
	check(reg *functions.Registry) error
}

type topologyOption topology.Topology

func (o topologyOption) check(reg *functions.Registry) error {
	topo := topology.Topology(o)
	return errors.Join(topo.Validate(), topo.ValidateRegistry(reg))
}

// WithTopology makes [New] check the registry against the application's
// topology the way the runtime does at start-up (processor.New): the
// topology must be valid, every registered function type must be one of
// its functions, and every egress a [functions.Spec] declares must be one
// of its egresses. Without it, the harness knows no topology; a function
// that sends to an egress its Spec does not declare fails either way.
func WithTopology(topo topology.Topology) Option { return topologyOption(topo) }

// Invoke delivers msg to the function at to as an ingress does, with no
// caller. On success it applies the state changes, records the messages
// and egress records (see [Harness.Sent] and [Harness.Egress]) and returns
// them. On error nothing changes and the error is the one the runtime would
// see: an *[functions.InvocationError] when the function fails, an error
// wrapping [functions.ErrUnknownFunction] for an unregistered type.
func (h *Harness) Invoke(to functions.Address, msg functions.Message) (*Result, error) {
	return h.invokeAndRecord(nil, to, msg)
}

// InvokeFrom is like [Harness.Invoke] but delivers msg as sent by the
// function at caller, which the invoked function sees as ctx.Caller().
func (h *Harness) InvokeFrom(caller, to functions.Address, msg functions.Message) (*Result, error) {
	if err := caller.Validate(); err != nil {
		return nil, fmt.Errorf("functionstest: invoke %s: caller: %w", to, err)
	}
	return h.invokeAndRecord(&caller, to, msg)
}

func (h *Harness) invokeAndRecord(caller *functions.Address, to functions.Address, msg functions.Message) (*Result, error) {
	res, err := h.invoke(caller, to, msg, nil)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.sent = append(h.sent, res.Messages...)
	h.egress = append(h.egress, res.Egress...)
	h.mu.Unlock()
	return res, nil
}

// invoke runs one invocation and applies its state changes and delayed
// messages. check, if not nil, sees the effects first: an error from it
// fails the invocation, which then changes nothing (the runtime's own
// checks of effects, such as egress records that the topology refuses).
// The lock is not held while the function runs, so that a function may
// use the harness (say, a test's closure reading StateOf) without a
// deadlock.
func (h *Harness) invoke(caller *functions.Address, to functions.Address, msg functions.Message, check func(driver.Effects) error) (*Result, error) {
	if err := to.Validate(); err != nil {
		return nil, fmt.Errorf("functionstest: invoke %s: %w", to, err)
	}
	if err := msg.Err(); err != nil {
		return nil, fmt.Errorf("functionstest: invoke %s: message: %w", to, err)
	}
	if _, err := functions.ParseTypeName(string(msg.TypeName())); err != nil {
		return nil, fmt.Errorf("functionstest: invoke %s: message: %w", to, err)
	}
	effects, err := driver.Invoke(context.Background(), h.reg, driver.Invocation{
		Target:  to,
		Caller:  caller,
		Message: msg,
		State:   h.load(to),
	})
	if err == nil && check != nil {
		err = check(effects)
	}
	if err != nil {
		return nil, err
	}
	h.apply(to, effects.State)
	h.schedule(to, effects.Delayed)
	return &Result{Messages: effects.Messages, Egress: effects.Egress, State: effects.State, Delayed: effects.Delayed, DroppedReplies: effects.DroppedReplies}, nil
}

// load returns a copy of the stored state of addr, as the runtime reads it
// afresh from its store for each invocation: without expired values.
func (h *Harness) load(addr functions.Address) map[string]driver.StoredValue {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := driver.Unexpired(h.state[addr], h.now)
	out := make(map[string]driver.StoredValue, len(st))
	for name, v := range st {
		out[name] = driver.StoredValue{TypeName: v.TypeName, Value: bytes.Clone(v.Value)}
	}
	return out
}

// apply applies an invocation's state changes with the runtime's rules
// (driver.ApplyState): expired values dropped, changes applied, expiry
// stamped. The values are copied: the test keeps the ones in its Result.
func (h *Harness) apply(addr functions.Address, changes []driver.StateChange) {
	infos, _ := driver.States(h.reg, addr.Type)
	h.mu.Lock()
	defer h.mu.Unlock()
	owned := make([]driver.StateChange, len(changes))
	for i, c := range changes {
		c.Value.Value = bytes.Clone(c.Value.Value)
		owned[i] = c
	}
	h.put(addr, owned, driver.Expirations(infos))
}

// put applies changes to the state of addr, which the harness owns, with
// the expirations exps; h.mu must be held.
func (h *Harness) put(addr functions.Address, changes []driver.StateChange, exps map[string]functions.Expiration) {
	st, _ := driver.ApplyState(driver.Unexpired(h.state[addr], h.now), true, changes, exps, h.now)
	if len(st) == 0 {
		delete(h.state, addr)
		return
	}
	h.state[addr] = st
}

// Run delivers msg to the function at to, then every message sent during
// the run to a registered function type, with the sender as caller, first
// sent first delivered, until none are left. It returns an error wrapping
// [ErrTooManyInvocations] if messages are left after maxInvocations
// invocations, and the error of the first invocation that fails; the
// invocations before it keep their effects.
//
// Messages to types that are not registered, and messages left undelivered
// when Run stops with an error, are added to [Harness.Sent]; egress
// records to [Harness.Egress]. Delivered messages are not.
func (h *Harness) Run(to functions.Address, msg functions.Message, maxInvocations int) error {
	if maxInvocations < 1 {
		return fmt.Errorf("functionstest: Run: maxInvocations is %d, want at least 1", maxInvocations)
	}
	type delivery struct {
		from *functions.Address
		functions.OutgoingMessage
	}
	queue := []delivery{{OutgoingMessage: functions.OutgoingMessage{To: to, Message: msg}}}
	var sent []functions.OutgoingMessage // not delivered
	defer func() {
		h.mu.Lock()
		h.sent = append(h.sent, sent...)
		h.mu.Unlock()
	}()
	undelivered := func() {
		for _, d := range queue {
			if d.from != nil { // the first message is not a sent one
				sent = append(sent, d.OutgoingMessage)
			}
		}
	}
	for n := 1; len(queue) > 0; n++ {
		if n > maxInvocations {
			next := queue[0]
			undelivered()
			return fmt.Errorf("%w: stopped after %d with %d message(s) undelivered, the next to %s", ErrTooManyInvocations, maxInvocations, len(queue), next.To)
		}
		d := queue[0]
		queue = queue[1:]
		res, err := h.invoke(d.from, d.To, d.Message, nil)
		if err != nil {
			undelivered()
			if d.from == nil {
				return err
			}
			return fmt.Errorf("functionstest: Run: invocation %d, from %s: %w", n, d.from, err)
		}
		h.mu.Lock()
		h.egress = append(h.egress, res.Egress...)
		h.mu.Unlock()
		from := d.To
		for _, m := range res.Messages {
			if _, ok := h.reg.Lookup(m.To.Type); ok {
				queue = append(queue, delivery{from: &from, OutgoingMessage: m})
			} else {
				sent = append(sent, m)
			}
		}
	}
	return nil
}

// Sent returns the messages recorded since New or the last [Harness.Reset],
// in the order sent.
func (h *Harness) Sent() []functions.OutgoingMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sent)
}

// Egress returns the egress records recorded since New or the last
// [Harness.Reset], in the order sent.
func (h *Harness) Egress() []functions.EgressMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.egress)
}

// Reset forgets the recorded messages and egress records. State and
// waiting delayed messages are kept.
func (h *Harness) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent, h.egress = nil, nil
}

// InMemory is an in-memory runtime of this package, a [*Harness] or a
// [*TopologyDriver]: what [StateOf] reads and [SetState] changes.
type InMemory interface {
	harness() *Harness
}

func (h *Harness) harness() *Harness { return h }

// StateOf returns the value of state s of addr in r and whether it is set
// (an expired value is not).
//
// It panics if the stored value was written with another type than s's or
// does not decode with s's codec: s is then not the state the function
// declared under that name.
func StateOf[T any](r InMemory, addr functions.Address, s functions.State[T]) (T, bool) {
	h := r.harness()
	var zero T
	h.mu.Lock()
	sv, ok := h.state[addr][s.Name()]
	now := h.now
	h.mu.Unlock()
	if !ok || (!sv.ExpiresAt.IsZero() && !now.Before(sv.ExpiresAt)) {
		return zero, false
	}
	if sv.TypeName != s.TypeName() {
		panic(fmt.Sprintf("functionstest: StateOf %s %q: stored with type %s, not %s", addr, s.Name(), sv.TypeName, s.TypeName()))
	}
	v, err := s.Type().Codec().Decode(sv.Value)
	if err != nil {
		panic(fmt.Sprintf("functionstest: StateOf %s %q: %v", addr, s.Name(), err))
	}
	return v, true
}

// SetState sets state s of addr in r to v, as if a function had set it.
// It returns an error if addr is invalid, its type is not registered, s is
// not declared by that type with s's type name, or v does not encode.
func SetState[T any](r InMemory, addr functions.Address, s functions.State[T], v T) error {
	h := r.harness()
	if err := addr.Validate(); err != nil {
		return fmt.Errorf("functionstest: SetState: %w", err)
	}
	infos, ok := driver.States(h.reg, addr.Type)
	if !ok {
		return fmt.Errorf("functionstest: SetState: %w %s", functions.ErrUnknownFunction, addr.Type)
	}
	i := slices.IndexFunc(infos, func(info driver.StateInfo) bool { return info.Name == s.Name() })
	if i < 0 {
		return fmt.Errorf("functionstest: SetState: %w %q: %s declares %v", functions.ErrUndeclaredState, s.Name(), addr.Type, names(infos))
	}
	if infos[i].TypeName != s.TypeName() {
		return fmt.Errorf("functionstest: SetState: %w %q: %s declares it with type %s, not %s", functions.ErrUndeclaredState, s.Name(), addr.Type, infos[i].TypeName, s.TypeName())
	}
	b, err := s.Type().Codec().Encode(v)
	if err != nil {
		return fmt.Errorf("functionstest: SetState %s %q: %w", addr, s.Name(), err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.put(addr, []driver.StateChange{{Name: s.Name(), Value: driver.StoredValue{TypeName: s.TypeName(), Value: bytes.Clone(b)}}},
		driver.Expirations(infos[i:i+1]))
	return nil
}

func names(infos []driver.StateInfo) []string {
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = info.Name
	}
	return out
}

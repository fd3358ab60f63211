package remote

import (
	"slices"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote/pb"
)

// Call is one message for the invoked address.
type Call struct {
	// Caller is the sending address; nil for a message from an ingress.
	Caller   *functions.Address
	Argument functions.Message
	// TraceParent and TraceState are the W3C trace context of the call's
	// span ("" for none): a request sends those of its first call as
	// its traceparent and tracestate headers.
	TraceParent, TraceState string
}

// Result is what a remote function asks the runtime to do after a batch
// of calls to one address, checked against the protocol. A runtime applies
// all of it or none of it, in this order (StateFun's): messages, delayed
// messages and cancellations, egress messages, state changes.
type Result struct {
	// State has the final value of each state value the batch changed,
	// sorted by name, with the declared type name (for a deletion too, as
	// [driver.Invoke] does). A value of zero bytes that is not
	// Deleted is present (an int 0, say) and must be stored as such.
	State []driver.StateChange
	// Messages are sent with the invoked address as caller.
	Messages []functions.OutgoingMessage
	// Delayed are messages to send later, and cancellations of such
	// messages; a delay is in whole milliseconds (the wire's unit).
	Delayed []driver.DelayedMessage
	// Egress are messages to egresses; the egress type name is
	// egress_namespace/egress_type.
	Egress []functions.EgressMessage
	// Specs are the state values the client knows the function type
	// declares after this invocation (learned from the function's
	// IncompleteInvocationContext), sorted by name: what a runtime needs
	// for expiration. The slice is shared: do not change it.
	Specs []driver.StateInfo
}

// Effects returns the state changes, messages, egress messages and
// delayed messages of r as [driver.Effects], for runtimes that apply
// embedded and remote invocations the same way.
func (r *Result) Effects() driver.Effects {
	return driver.Effects{State: r.State, Messages: r.Messages, Egress: r.Egress, Delayed: r.Delayed}
}

// resultFrom checks an InvocationResponse against the specs the request
// carried and converts it. Every problem is a permanent protocol error.
func resultFrom(r *pb.FromFunction_InvocationResponse, specs []driver.StateInfo) (*Result, error) {
	res := &Result{Specs: specs}
	if n := len(r.GetStateMutations()); n > 0 {
		res.State = make([]driver.StateChange, 0, n)
	}
	for _, m := range r.GetStateMutations() {
		name := m.GetStateName()
		i, ok := slices.BinarySearchFunc(specs, name, cmpSpecName)
		if !ok {
			return nil, protocolError("function changed state %q, which it did not declare: declare it in the function's state specs (ValueSpec)", name)
		}
		declared := specs[i].TypeName
		switch m.GetMutationType() {
		case pb.FromFunction_PersistedValueMutation_DELETE:
			res.State = append(res.State, driver.StateChange{Name: name, Value: driver.StoredValue{TypeName: declared}, Deleted: true})
		case pb.FromFunction_PersistedValueMutation_MODIFY:
			v := m.GetStateValue()
			if v == nil {
				return nil, protocolError("function modified state %q without a value", name)
			}
			if got := functions.TypeName(v.GetTypename()); got != declared {
				return nil, protocolError("function wrote state %q with type %q, but declared it with type %s: the function must write the type it declares", name, got, declared)
			}
			res.State = append(res.State, driver.StateChange{Name: name, Value: driver.StoredValue{TypeName: declared, Value: v.GetValue()}})
		default:
			return nil, protocolError("unknown mutation type %d for state %q: the function's SDK speaks a newer protocol", m.GetMutationType(), name)
		}
	}
	// The Go SDK emits mutations in map order; sort them so that equal
	// responses give equal results (stable: a repeated name keeps order).
	slices.SortStableFunc(res.State, func(a, b driver.StateChange) int { return strings.Compare(a.Name, b.Name) })
	if n := len(r.GetOutgoingMessages()); n > 0 {
		res.Messages = make([]functions.OutgoingMessage, 0, n)
	}
	for _, m := range r.GetOutgoingMessages() {
		to, err := addressFrom(m.GetTarget(), "message")
		if err != nil {
			return nil, err
		}
		msg, err := messageFrom(m.GetArgument(), "message to "+to.String())
		if err != nil {
			return nil, err
		}
		res.Messages = append(res.Messages, functions.OutgoingMessage{To: to, Message: msg})
	}
	if n := len(r.GetDelayedInvocations()); n > 0 {
		res.Delayed = make([]driver.DelayedMessage, 0, n)
	}
	for _, d := range r.GetDelayedInvocations() {
		if d.GetIsCancellationRequest() {
			if d.GetCancellationToken() == "" {
				return nil, protocolError("cancellation of a delayed message without a cancellation token")
			}
			res.Delayed = append(res.Delayed, driver.DelayedMessage{Token: d.GetCancellationToken(), Cancel: true})
			continue
		}
		ms := d.GetDelayInMs()
		if ms < 0 || ms > int64(1<<63-1)/int64(time.Millisecond) {
			return nil, protocolError("delayed message with a delay of %d ms", ms)
		}
		to, err := addressFrom(d.GetTarget(), "delayed message")
		if err != nil {
			return nil, err
		}
		msg, err := messageFrom(d.GetArgument(), "delayed message to "+to.String())
		if err != nil {
			return nil, err
		}
		res.Delayed = append(res.Delayed, driver.DelayedMessage{
			Delay: time.Duration(ms) * time.Millisecond, To: to, Message: msg, Token: d.GetCancellationToken(),
		})
	}
	if n := len(r.GetOutgoingEgresses()); n > 0 {
		res.Egress = make([]functions.EgressMessage, 0, n)
	}
	for _, e := range r.GetOutgoingEgresses() {
		name := e.GetEgressNamespace() + "/" + e.GetEgressType()
		eg, err := functions.ParseTypeName(name)
		if err != nil {
			return nil, protocolError("egress message to an invalid egress: %v", err)
		}
		msg, err := messageFrom(e.GetArgument(), "egress message to "+name)
		if err != nil {
			return nil, err
		}
		res.Egress = append(res.Egress, functions.EgressMessage{Egress: eg, Message: msg})
	}
	return res, nil
}

func addressFrom(a *pb.Address, what string) (functions.Address, error) {
	if a == nil {
		return functions.Address{}, protocolError("%s without a target address", what)
	}
	addr := functions.Address{Type: functions.TypeName(a.GetNamespace() + "/" + a.GetType()), ID: a.GetId()}
	if err := addr.Validate(); err != nil {
		return addr, protocolError("%s to an invalid address: %v", what, err)
	}
	return addr, nil
}

func messageFrom(v *pb.TypedValue, what string) (functions.Message, error) {
	if v == nil {
		return functions.Message{}, protocolError("%s without a value", what)
	}
	tn, err := functions.ParseTypeName(v.GetTypename())
	if err != nil {
		return functions.Message{}, protocolError("%s without a valid type name: %v", what, err)
	}
	return functions.NewMessage(tn, v.GetValue()), nil
}

func toAddress(a functions.Address) *pb.Address {
	return &pb.Address{Namespace: a.Type.Namespace(), Type: a.Type.Name(), Id: a.ID}
}

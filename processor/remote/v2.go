package remote

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"github.com/stateloop/stateloop/processor/remote/pbv2"
)

// RawState2Type is the type name under which a state value of a
// [Protocol2] function is stored when its bytes are not a protobuf Any
// (the Python SDK 2.x stores whatever message is assigned): the bytes as
// the function wrote them, sent back unchanged.
const RawState2Type functions.TypeName = "stateloop/statefun2-state-bytes"

// invoke2 is [Client.Invoke] for Protocol2: one request with every
// declared state and the whole batch, no missing-state round trip.
func (c *Client) invoke2(ctx context.Context, inv *invocation, state map[string]driver.StoredValue, batch []Call) (*Result, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	req := &pbv2.ToFunction_InvocationBatchRequest{
		Target:      toAddress2(inv.target),
		State:       make([]*pbv2.ToFunction_PersistedValue, len(c.declared)),
		Invocations: make([]*pbv2.ToFunction_Invocation, len(batch)),
	}
	for i, s := range c.declared {
		pv := &pbv2.ToFunction_PersistedValue{StateName: s.Name}
		if v, ok := state[s.Name]; ok {
			pv.StateValue = stateBytes2(v)
		}
		req.State[i] = pv
	}
	for i, call := range batch {
		pi := &pbv2.ToFunction_Invocation{Argument: &anypb.Any{TypeUrl: string(call.Argument.TypeName()), Value: call.Argument.Bytes()}}
		if call.Caller != nil {
			pi.Caller = toAddress2(*call.Caller)
		}
		req.Invocations[i] = pi
	}
	body, err := proto.Marshal(&pbv2.ToFunction{Request: &pbv2.ToFunction_Invocation_{Invocation: req}})
	if err != nil { // only for invalid UTF-8 in a string field
		return nil, inv.fail(functions.Permanent(fmt.Errorf("encode request (address ids, type names and state names must be valid UTF-8): %w", err)))
	}
	from := &pbv2.FromFunction{}
	if err := inv.post(ctx, callCtx, body, func(b []byte) error { return proto.Unmarshal(b, from) }); err != nil {
		return nil, inv.fail(err)
	}
	if err := checkNot3(from); err != nil {
		return nil, inv.fail(err)
	}
	// A FromFunction without a result is a call without effects, as in
	// StateFun 2.x: the Python SDK 2.x sends an empty body then.
	res, err := resultFrom2(from.GetInvocationResult(), c.declared)
	if err != nil {
		return nil, inv.fail(err)
	}
	return res, nil
}

// resultFrom2 checks a StateFun 2.x InvocationResponse against the
// declared states and converts it. Every problem is a permanent protocol
// error.
func resultFrom2(r *pbv2.FromFunction_InvocationResponse, declared []driver.StateInfo) (*Result, error) {
	res := &Result{Specs: declared}
	for _, m := range r.GetStateMutations() {
		name := m.GetStateName()
		if _, ok := slices.BinarySearchFunc(declared, name, cmpSpecName); !ok {
			return nil, protocolError("function changed state %q, which the module file does not declare for it: add it to the function's states", name)
		}
		switch m.GetMutationType() {
		case pbv2.FromFunction_PersistedValueMutation_DELETE:
			res.State = append(res.State, driver.StateChange{Name: name, Deleted: true})
		case pbv2.FromFunction_PersistedValueMutation_MODIFY:
			if looksLikeTypedValue(m.GetStateValue()) {
				return nil, mismatch(Protocol2, fmt.Sprintf("state %q was written as a TypedValue", name))
			}
			res.State = append(res.State, driver.StateChange{Name: name, Value: storedFromState2(m.GetStateValue())})
		default:
			return nil, protocolError("unknown mutation type %d for state %q", m.GetMutationType(), name)
		}
	}
	// A name changed twice keeps its order (stable), as for 3.x.
	slices.SortStableFunc(res.State, func(a, b driver.StateChange) int { return cmpSpecName(driver.StateInfo{Name: a.Name}, b.Name) })
	for _, m := range r.GetOutgoingMessages() {
		to, err := addressFrom2(m.GetTarget(), "message")
		if err != nil {
			return nil, err
		}
		msg, err := messageFrom2(m.GetArgument(), "message to "+to.String())
		if err != nil {
			return nil, err
		}
		res.Messages = append(res.Messages, functions.OutgoingMessage{To: to, Message: msg})
	}
	for _, d := range r.GetDelayedInvocations() {
		ms := d.GetDelayInMs()
		if ms < 0 || ms > int64(1<<63-1)/int64(time.Millisecond) {
			return nil, protocolError("delayed message with a delay of %d ms", ms)
		}
		to, err := addressFrom2(d.GetTarget(), "delayed message")
		if err != nil {
			return nil, err
		}
		msg, err := messageFrom2(d.GetArgument(), "delayed message to "+to.String())
		if err != nil {
			return nil, err
		}
		res.Delayed = append(res.Delayed, driver.DelayedMessage{Delay: time.Duration(ms) * time.Millisecond, To: to, Message: msg})
	}
	for _, e := range r.GetOutgoingEgresses() {
		name := e.GetEgressNamespace() + "/" + e.GetEgressType()
		eg, err := functions.ParseTypeName(name)
		if err != nil {
			return nil, protocolError("egress message to an invalid egress: %v", err)
		}
		msg, err := messageFrom2(e.GetArgument(), "egress message to "+name)
		if err != nil {
			return nil, err
		}
		res.Egress = append(res.Egress, functions.EgressMessage{Egress: eg, Message: msg})
	}
	return res, nil
}

func addressFrom2(a *pbv2.Address, what string) (functions.Address, error) {
	if a == nil {
		return functions.Address{}, protocolError("%s without a target address", what)
	}
	return addressFrom(&pb.Address{Namespace: a.GetNamespace(), Type: a.GetType(), Id: a.GetId()}, what)
}

// messageFrom2 converts a StateFun 2.x message, a protobuf Any, to the
// message of type name type URL with the Any's value.
func messageFrom2(a *anypb.Any, what string) (functions.Message, error) {
	if a == nil {
		return functions.Message{}, protocolError("%s without a value", what)
	}
	if a.GetTypeUrl() == "" {
		return functions.Message{}, protocolError("%s is an Any without a type URL: pack messages with Any.Pack (pack_and_send)", what)
	}
	tn, err := functions.ParseTypeName(a.GetTypeUrl())
	if err != nil {
		return functions.Message{}, protocolError("%s has the type URL %q, which is no namespace/name: pack messages with Any.Pack (pack_and_send)", what, a.GetTypeUrl())
	}
	return functions.NewMessage(tn, a.GetValue()), nil
}

func toAddress2(a functions.Address) *pbv2.Address {
	return &pbv2.Address{Namespace: a.Type.Namespace(), Type: a.Type.Name(), Id: a.ID}
}

// stateBytes2 returns the bytes a Protocol2 function gets for a stored
// state value: a serialized Any, or the raw bytes of RawState2Type.
func stateBytes2(v driver.StoredValue) []byte {
	if v.TypeName == RawState2Type {
		return v.Value
	}
	return appendAny(nil, string(v.TypeName), v.Value)
}

// storedFromState2 returns how a Protocol2 function's state bytes are
// stored: the type URL and value of the Any they hold, when they are the
// canonical encoding of an Any (so that stateBytes2 gives them back
// unchanged) with a type URL that is a type name; else the bytes as they
// are, under RawState2Type.
func storedFromState2(b []byte) driver.StoredValue {
	var url, value []byte
	rest, field := b, 0
	for len(rest) > 0 {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || typ != protowire.BytesType || int(num) <= field || num > 2 {
			return driver.StoredValue{TypeName: RawState2Type, Value: b}
		}
		rest = rest[n:]
		v, m := protowire.ConsumeBytes(rest)
		if m < 0 {
			return driver.StoredValue{TypeName: RawState2Type, Value: b}
		}
		rest, field = rest[m:], int(num)
		if num == 1 {
			url = v
		} else {
			value = v
		}
	}
	tn, err := functions.ParseTypeName(string(url))
	if err != nil || !bytes.Equal(appendAny(nil, string(url), value), b) {
		return driver.StoredValue{TypeName: RawState2Type, Value: b}
	}
	return driver.StoredValue{TypeName: tn, Value: value}
}

// appendAny appends the canonical encoding of an Any: the type URL and the
// value, each left out when empty (as proto3 does).
func appendAny(b []byte, url string, value []byte) []byte {
	if url != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, url)
	}
	if len(value) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, value)
	}
	return b
}

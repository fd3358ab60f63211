package wire

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stateloop/stateloop/functions"
)

// Control records: an operator's request (stateloop state set, timers
// cancel, dlq replay) that travels through the loop topic to its
// address's partition, in an Envelope whose Control is set instead of its
// Argument, and is applied by the runtime at the address, in order with
// the address's messages, in a transaction. The runtime answers it with a
// message of type ControlResultType to the envelope's caller (an HTTP
// caller, so the answer goes to the replies topic).
//
//	message Envelope {
//	  ...
//	  Control control = 5;   // instead of argument
//	}
//	message Control {        // exactly one of
//	  StateEdit state = 1;
//	  TimerCancel cancel_timers = 2;
//	  Replay replay = 3;
//	}
//	message StateEdit {      // applied in this order; none of them: a read
//	  bool delete_all = 3;
//	  repeated string delete = 2;
//	  repeated StateValue set = 1;   // typename may be empty: the declared or current type
//	}
//	message TimerCancel { repeated string tokens = 1; bool all = 2; }
//	message Replay {         // a dead letter, sent to its address again
//	  int32 dead_letter_partition = 1;
//	  int64 dead_letter_offset = 2;
//	  Envelope message = 3;        // the message of a loop record, or
//	  IngressRecord record = 4;    // an ingress record that reached the address
//	}
//	message IngressRecord {
//	  string topic = 1; bytes key = 2; bool has_key = 3; bytes value = 4;
//	  int32 partition = 5; int64 offset = 6;   // where it was consumed, for a router
//	}

// Control is an operator's request to the runtime, applied at an
// envelope's target. Exactly one field is set.
type Control struct {
	State  *StateEdit
	Cancel *TimerCancel
	Replay *Replay
}

// Kind names the request for people: "state edit", "timer cancel" or
// "dead-letter replay".
func (c *Control) Kind() string {
	switch {
	case c.State != nil:
		return "state edit"
	case c.Cancel != nil:
		return "timer cancel"
	default:
		return "dead-letter replay"
	}
}

// StateEdit changes the state of an address: DeleteAll, then Delete, then
// Set. An edit with none of them reads the state and writes nothing.
type StateEdit struct {
	Set       []StateValueEdit
	Delete    []string
	DeleteAll bool
}

// StateValueEdit is the new value of one state value. An empty TypeName
// asks the runtime for the type the function declares, else the type of
// the current value.
type StateValueEdit struct {
	Name     string
	TypeName functions.TypeName
	Value    []byte
}

// TimerCancel cancels delayed messages of the target address (their
// sender): those with the tokens given, or (All) every one.
type TimerCancel struct {
	Tokens []string
	All    bool
}

// Replay sends a dead letter to its address again: the message a loop
// record carried, or an ingress record (the runtime makes its message as
// the ingress does). The dead letter's partition and offset name it in the
// replay marker the runtime writes to the dead-letter topic.
type Replay struct {
	DeadLetterPartition int32
	DeadLetterOffset    int64
	Message             *Envelope
	Record              *IngressRecord
}

// IngressRecord is a record of an ingress topic.
type IngressRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: the record has no key
	Value     []byte
}

func appendControl(b []byte, c *Control) []byte {
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	return protowire.AppendBytes(b, appendControlMessage(nil, c))
}

// appendControlMessage appends the fields of a Control message.
func appendControlMessage(m []byte, c *Control) []byte {
	switch {
	case c.State != nil:
		var s []byte
		for _, v := range c.State.Set {
			s = protowire.AppendTag(s, 1, protowire.BytesType)
			s = protowire.AppendBytes(s, appendStateValue(nil, v.Name, string(v.TypeName), v.Value, 0))
		}
		for _, name := range c.State.Delete {
			s = protowire.AppendTag(s, 2, protowire.BytesType)
			s = protowire.AppendString(s, name)
		}
		s = appendBool(s, 3, c.State.DeleteAll)
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = protowire.AppendBytes(m, s)
	case c.Cancel != nil:
		var s []byte
		for _, tok := range c.Cancel.Tokens {
			s = protowire.AppendTag(s, 1, protowire.BytesType)
			s = protowire.AppendString(s, tok)
		}
		s = appendBool(s, 2, c.Cancel.All)
		m = protowire.AppendTag(m, 2, protowire.BytesType)
		m = protowire.AppendBytes(m, s)
	case c.Replay != nil:
		r := c.Replay
		var s []byte
		s = protowire.AppendTag(s, 1, protowire.VarintType)
		s = protowire.AppendVarint(s, uint64(r.DeadLetterPartition))
		s = protowire.AppendTag(s, 2, protowire.VarintType)
		s = protowire.AppendVarint(s, uint64(r.DeadLetterOffset))
		if r.Message != nil {
			s = protowire.AppendTag(s, 3, protowire.BytesType)
			s = protowire.AppendBytes(s, AppendEnvelope(nil, *r.Message))
		}
		if r.Record != nil {
			var ir []byte
			ir = appendString(ir, 1, r.Record.Topic)
			if r.Record.Key != nil {
				ir = protowire.AppendTag(ir, 2, protowire.BytesType)
				ir = protowire.AppendBytes(ir, r.Record.Key)
				ir = appendBool(ir, 3, true)
			}
			ir = protowire.AppendTag(ir, 4, protowire.BytesType)
			ir = protowire.AppendBytes(ir, r.Record.Value)
			ir = protowire.AppendTag(ir, 5, protowire.VarintType)
			ir = protowire.AppendVarint(ir, uint64(r.Record.Partition))
			ir = protowire.AppendTag(ir, 6, protowire.VarintType)
			ir = protowire.AppendVarint(ir, uint64(r.Record.Offset))
			s = protowire.AppendTag(s, 4, protowire.BytesType)
			s = protowire.AppendBytes(s, ir)
		}
		m = protowire.AppendTag(m, 3, protowire.BytesType)
		m = protowire.AppendBytes(m, s)
	}
	return m
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// varintField decodes the payload of a varint field that fieldsAny found.
func varintField(v []byte, what string) (uint64, error) {
	x, n := protowire.ConsumeVarint(v)
	if n < 0 {
		return 0, fmt.Errorf("%w: %s: %w", ErrMalformed, what, protowire.ParseError(n))
	}
	return x, nil
}

// decodeControl decodes and checks a control record: exactly one request,
// state names that are not empty and not both set and deleted, tokens
// that are not empty, a replay of exactly one message or record.
func decodeControl(b []byte) (*Control, error) {
	c := &Control{}
	n := 0
	err := fields(b, func(num protowire.Number, v []byte) error {
		var err error
		switch num {
		case 1:
			n++
			c.State, err = decodeStateEdit(v)
		case 2:
			n++
			c.Cancel, err = decodeTimerCancel(v)
		case 3:
			n++
			c.Replay, err = decodeReplay(v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: control record with %d requests, want one", ErrMalformed, n)
	}
	return c, nil
}

func decodeStateEdit(b []byte) (*StateEdit, error) {
	e := &StateEdit{}
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			name, tn, val, _, err := decodeStateValue(v)
			if err != nil {
				return err
			}
			e.Set = append(e.Set, StateValueEdit{Name: name, TypeName: functions.TypeName(tn), Value: val})
		case num == 2 && typ == protowire.BytesType:
			e.Delete = append(e.Delete, string(v))
		case num == 3 && typ == protowire.VarintType:
			x, err := varintField(v, "delete_all")
			e.DeleteAll = x != 0
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state edit: %w", err)
	}
	var errs []error
	seen := make(map[string]bool)
	for _, name := range e.Delete {
		if name == "" {
			errs = append(errs, errors.New("a state name to delete is empty"))
		}
		seen[name] = true
	}
	for _, v := range e.Set {
		if seen[v.Name] {
			errs = append(errs, fmt.Errorf("state %q is both set and deleted", v.Name))
		}
		seen[v.Name] = true
		if v.TypeName != "" {
			if _, err := functions.ParseTypeName(string(v.TypeName)); err != nil {
				errs = append(errs, fmt.Errorf("state %q: type: %w", v.Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: state edit: %w", ErrMalformed, errors.Join(errs...))
	}
	return e, nil
}

func decodeTimerCancel(b []byte) (*TimerCancel, error) {
	c := &TimerCancel{}
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			c.Tokens = append(c.Tokens, string(v))
		case num == 2 && typ == protowire.VarintType:
			x, err := varintField(v, "all")
			c.All = x != 0
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("timer cancel: %w", err)
	}
	if slices.Contains(c.Tokens, "") {
		return nil, fmt.Errorf("%w: timer cancel: an empty token", ErrMalformed)
	}
	if len(c.Tokens) == 0 && !c.All {
		return nil, fmt.Errorf("%w: timer cancel without tokens", ErrMalformed)
	}
	return c, nil
}

func decodeReplay(b []byte) (*Replay, error) {
	r := &Replay{}
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			x, err := varintField(v, "dead_letter_partition")
			r.DeadLetterPartition = int32(x)
			return err
		case num == 2 && typ == protowire.VarintType:
			x, err := varintField(v, "dead_letter_offset")
			r.DeadLetterOffset = int64(x)
			return err
		case num == 3 && typ == protowire.BytesType:
			e, err := DecodeEnvelope(v)
			if err != nil {
				return fmt.Errorf("message: %w", err)
			}
			r.Message = &e
		case num == 4 && typ == protowire.BytesType:
			ir, err := decodeIngressRecord(v)
			if err != nil {
				return err
			}
			r.Record = ir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	switch {
	case (r.Message == nil) == (r.Record == nil):
		return nil, fmt.Errorf("%w: replay of no message or of both a message and a record", ErrMalformed)
	case r.Message != nil && r.Message.Control != nil:
		return nil, fmt.Errorf("%w: replay of a control record", ErrMalformed)
	case r.DeadLetterPartition < 0 || r.DeadLetterOffset < 0:
		return nil, fmt.Errorf("%w: replay of dead letter %d/%d", ErrMalformed, r.DeadLetterPartition, r.DeadLetterOffset)
	}
	return r, nil
}

func decodeIngressRecord(b []byte) (*IngressRecord, error) {
	r := &IngressRecord{Value: []byte{}}
	var hasKey bool
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			r.Topic = string(v)
		case num == 2 && typ == protowire.BytesType:
			r.Key = v
		case num == 3 && typ == protowire.VarintType:
			x, err := varintField(v, "has_key")
			hasKey = x != 0
			return err
		case num == 4 && typ == protowire.BytesType:
			r.Value = v
		case num == 5 && typ == protowire.VarintType:
			x, err := varintField(v, "partition")
			r.Partition = int32(x)
			return err
		case num == 6 && typ == protowire.VarintType:
			x, err := varintField(v, "offset")
			r.Offset = int64(x)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if r.Topic == "" {
		return nil, fmt.Errorf("%w: ingress record without a topic", ErrMalformed)
	}
	if hasKey && r.Key == nil {
		r.Key = []byte{}
	}
	if !hasKey {
		r.Key = nil
	}
	return r, nil
}

// ControlResultType is the type name of the runtime's answer to a control
// record: a ControlResult.
const ControlResultType functions.TypeName = "stateloop/control-result"

// ControlResult is the runtime's answer to a control record.
//
//	message ControlResult {
//	  string error = 1;                    // not applied, and why
//	  bool duplicate = 2;                  // its idempotency key was seen: not applied again
//	  StateRecord before = 3;              // state edit: the values before and after
//	  StateRecord after = 4;
//	  repeated StateDecl declared = 5;     // the state the function type declares, if known
//	  repeated CancelledTimer cancelled = 6;
//	  Address address = 7;                 // where it was applied
//	}
//	message StateDecl { string name = 1; string typename = 2; }
//	message CancelledTimer { string token = 1; Timer timer = 2; }
type ControlResult struct {
	Error     string
	Duplicate bool
	Before    StateRecord
	After     StateRecord
	Declared  []StateDecl
	Cancelled []CancelledTimer
	Address   functions.Address
}

// StateDecl is a declared state value of a function type.
type StateDecl struct {
	Name     string
	TypeName functions.TypeName
}

// CancelledTimer is a delayed message that a TimerCancel removed.
type CancelledTimer struct {
	Token string
	Timer Timer
}

// AppendControlResult appends the encoding of r to b.
func AppendControlResult(b []byte, r ControlResult) []byte {
	b = appendString(b, 1, r.Error)
	b = appendBool(b, 2, r.Duplicate)
	for _, f := range []struct {
		num protowire.Number
		rec StateRecord
	}{{3, r.Before}, {4, r.After}} {
		if len(f.rec) == 0 {
			continue
		}
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		b = protowire.AppendBytes(b, AppendStateRecord(nil, f.rec, f.rec.Names()))
	}
	for _, d := range r.Declared {
		var m []byte
		m = appendString(m, 1, d.Name)
		m = appendString(m, 2, string(d.TypeName))
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	for _, c := range r.Cancelled {
		var m []byte
		m = appendString(m, 1, c.Token)
		m = protowire.AppendTag(m, 2, protowire.BytesType)
		m = protowire.AppendBytes(m, AppendTimer(nil, c.Timer))
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	if r.Address.Type != "" {
		b = appendAddress(b, 7, r.Address)
	}
	return b
}

// DecodeControlResult decodes a control result.
func DecodeControlResult(b []byte) (ControlResult, error) {
	var r ControlResult
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ == protowire.VarintType {
			if num == 2 {
				x, err := varintField(v, "duplicate")
				r.Duplicate = x != 0
				return err
			}
			return nil
		}
		if typ != protowire.BytesType {
			return nil
		}
		var err error
		switch num {
		case 1:
			r.Error = string(v)
		case 3:
			r.Before, err = DecodeStateRecord(v)
		case 4:
			r.After, err = DecodeStateRecord(v)
		case 5:
			var d StateDecl
			err = fields(v, func(num protowire.Number, f []byte) error {
				switch num {
				case 1:
					d.Name = string(f)
				case 2:
					d.TypeName = functions.TypeName(f)
				}
				return nil
			})
			r.Declared = append(r.Declared, d)
		case 6:
			var c CancelledTimer
			haveTimer := false
			err = fields(v, func(num protowire.Number, f []byte) error {
				var err error
				switch num {
				case 1:
					c.Token = string(f)
				case 2:
					c.Timer, err = DecodeTimer(f)
					haveTimer = true
				}
				return err
			})
			if err == nil && !haveTimer {
				err = fmt.Errorf("%w: cancelled timer without its timer", ErrMalformed)
			}
			r.Cancelled = append(r.Cancelled, c)
		case 7:
			r.Address, err = decodeAddress(v)
		}
		return err
	})
	if err != nil {
		return ControlResult{}, fmt.Errorf("control result: %w", err)
	}
	return r, nil
}

// The headers of a dead-letter record (the failed record's key and value
// with these), and of a replay marker.
const (
	HeaderError           = "stateloop.error"
	HeaderSourceTopic     = "stateloop.source.topic"
	HeaderSourcePartition = "stateloop.source.partition"
	HeaderSourceOffset    = "stateloop.source.offset"
	HeaderFunctionType    = "stateloop.function.type"
	HeaderFunctionID      = "stateloop.function.id"
	HeaderValueDropped    = "stateloop.value.dropped"
	// HeaderReplayOf marks a replay marker: a record of the dead-letter
	// topic (no key, no value) that the runtime writes in the transaction
	// that delivers a replayed dead letter to its address, naming the dead
	// letter as "<partition>/<offset>" (see [FormatDeadLetterRef]).
	HeaderReplayOf = "stateloop.replay.of"
)

// FormatDeadLetterRef names a record of the dead-letter topic as
// "<partition>/<offset>".
func FormatDeadLetterRef(partition int32, offset int64) string {
	return strconv.Itoa(int(partition)) + "/" + strconv.FormatInt(offset, 10)
}

// ParseDeadLetterRef inverts [FormatDeadLetterRef].
func ParseDeadLetterRef(s string) (partition int32, offset int64, err error) {
	p, o, ok := strings.Cut(s, "/")
	pn, perr := strconv.ParseInt(p, 10, 32)
	on, oerr := strconv.ParseInt(o, 10, 64)
	if !ok || perr != nil || oerr != nil || pn < 0 || on < 0 {
		return 0, 0, fmt.Errorf("%w: dead letter %q: want <partition>/<offset>", ErrMalformed, s)
	}
	return int32(pn), on, nil
}

// ReplayKey is the idempotency key of the replay of the dead letter at
// partition/offset of the dead-letter topic: the runtime delivers a
// replay with a key it has seen once only (within its idempotency window),
// so a replay written twice (a command run again after a crash) reaches
// its address once.
func ReplayKey(partition int32, offset int64) string {
	return "stateloop/dead-letter/" + FormatDeadLetterRef(partition, offset)
}

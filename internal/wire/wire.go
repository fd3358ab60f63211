package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
)

// ErrMalformed is wrapped by every decode error.
var ErrMalformed = errors.New("wire: malformed record")

// Envelope is a message to an address on the loop topic.
//
//	message Envelope {
//	  Address target = 1;
//	  Address caller = 2;      // absent for messages from an ingress
//	  TypedValue argument = 3;
//	  string idempotency_key = 4; // from an HTTP request's Idempotency-Key
//	  Control control = 5;        // an operator's control record (control.go), instead of argument
//	  string traceparent = 6;     // W3C trace context, see Trace
//	  string tracestate = 7;
//	}
//	message Address { string namespace = 1; string type = 2; string id = 3; }
//	message TypedValue { string typename = 1; bool has_value = 2; bytes value = 3; }
type Envelope struct {
	Target   functions.Address
	Caller   *functions.Address
	Argument functions.Message
	// IdempotencyKey, if set, makes the runtime deliver only the first
	// message with this key to Target within its idempotency window.
	IdempotencyKey string
	// Control, if set, makes the envelope an operator's control record
	// for Target, which has no Argument.
	Control *Control
	// Trace is the trace context of the span that sent the message; empty
	// when tracing is off.
	Trace Trace
}

// Trace is a W3C trace context as text: the values of the traceparent and
// tracestate headers (https://www.w3.org/TR/trace-context/). The zero
// value is no trace context. Records that leave the runtime or travel
// between its instances (loop, replies, egress, dead letters) carry it as
// Kafka headers of these names; records whose value the runtime keeps in
// its local store (timers, inbox entries) carry it in their envelope.
type Trace struct {
	Parent string // traceparent
	State  string // tracestate
}

// The Kafka header names of a [Trace], as in W3C Trace Context's HTTP
// headers.
const (
	TraceParentHeader = "traceparent"
	TraceStateHeader  = "tracestate"
)

// AppendEnvelope appends the encoding of e to b.
func AppendEnvelope(b []byte, e Envelope) []byte {
	b = appendAddress(b, 1, e.Target)
	if e.Caller != nil {
		b = appendAddress(b, 2, *e.Caller)
	}
	if e.Control == nil {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, appendTypedValue(nil, e.Argument.TypeName(), e.Argument.Bytes()))
	}
	b = appendString(b, 4, e.IdempotencyKey)
	if e.Control != nil {
		b = appendControl(b, e.Control)
	}
	b = appendString(b, 6, e.Trace.Parent)
	return appendString(b, 7, e.Trace.State)
}

func appendAddress(b []byte, num protowire.Number, a functions.Address) []byte {
	var m []byte
	m = appendString(m, 1, a.Type.Namespace())
	m = appendString(m, 2, a.Type.Name())
	m = appendString(m, 3, a.ID)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func appendTypedValue(b []byte, typeName functions.TypeName, value []byte) []byte {
	b = appendString(b, 1, string(typeName))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	if len(value) > 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, value)
	}
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// DecodeEnvelope decodes an envelope and checks that its target is a valid
// address and that it has either an argument with a type name or a
// well-formed control record.
func DecodeEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	var haveTarget, haveArg bool
	err := fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			a, err := decodeAddress(v)
			if err != nil {
				return fmt.Errorf("target: %w", err)
			}
			e.Target, haveTarget = a, true
		case 2:
			a, err := decodeAddress(v)
			if err != nil {
				return fmt.Errorf("caller: %w", err)
			}
			e.Caller = &a
		case 3:
			tn, val, err := decodeTypedValue(v)
			if err != nil {
				return fmt.Errorf("argument: %w", err)
			}
			e.Argument, haveArg = functions.NewMessage(tn, val), true
		case 4:
			e.IdempotencyKey = string(v)
		case 5:
			c, err := decodeControl(v)
			if err != nil {
				return fmt.Errorf("control: %w", err)
			}
			e.Control = c
		case 6:
			e.Trace.Parent = string(v)
		case 7:
			e.Trace.State = string(v)
		}
		return nil
	})
	if err != nil {
		return Envelope{}, err
	}
	if !haveTarget || haveArg == (e.Control != nil) {
		return Envelope{}, fmt.Errorf("%w: envelope without target, or not with exactly one of argument and control", ErrMalformed)
	}
	if err := e.Target.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: target: %w", ErrMalformed, err)
	}
	return e, nil
}

func decodeAddress(b []byte) (functions.Address, error) {
	var ns, name, id string
	err := fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			ns = string(v)
		case 2:
			name = string(v)
		case 3:
			id = string(v)
		}
		return nil
	})
	if err != nil {
		return functions.Address{}, err
	}
	tn, err := functions.ParseTypeName(ns + "/" + name)
	if err != nil {
		return functions.Address{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return functions.Address{Type: tn, ID: id}, nil
}

func decodeTypedValue(b []byte) (functions.TypeName, []byte, error) {
	var tn string
	var val []byte
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			tn = string(v)
		case num == 3 && typ == protowire.BytesType:
			val = v
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	t, err := functions.ParseTypeName(tn)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return t, val, nil
}

// fields calls fn for every length-delimited field of b and skips others.
func fields(b []byte, fn func(protowire.Number, []byte) error) error {
	return fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		return fn(num, v)
	})
}

// fieldsAny calls fn for every field of b: v is the payload of a
// length-delimited field and the raw value bytes otherwise.
func fieldsAny(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			var m int
			v, m = protowire.ConsumeBytes(b)
			n = m
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n >= 0 {
				v = b[:n]
			}
		}
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// StateRecord is the value of an address in a table topic: every state
// value the address has. An address with no values is a tombstone (a nil
// Kafka value), not an empty record.
//
//	message StateRecord { repeated StateValue values = 1; }
//	message StateValue {
//	  string name = 1; string typename = 2; bytes value = 3;
//	  int64 expires_at_unix_millis = 4; // absent: never
//	}
type StateRecord map[string]driver.StoredValue

// AppendStateRecord appends the encoding of r to b, values sorted by name.
func AppendStateRecord(b []byte, r StateRecord, names []string) []byte {
	for _, name := range names {
		v, ok := r[name]
		if !ok {
			continue
		}
		var expires int64
		if !v.ExpiresAt.IsZero() {
			expires = v.ExpiresAt.UnixMilli()
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, appendStateValue(nil, name, string(v.TypeName), v.Value, expires))
	}
	return b
}

// Names returns the names of r's values, sorted.
func (r StateRecord) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// appendStateValue appends a StateValue message; expires 0 is never.
func appendStateValue(b []byte, name, typeName string, value []byte, expires int64) []byte {
	b = appendString(b, 1, name)
	b = appendString(b, 2, typeName)
	if len(value) > 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, value)
	}
	if expires != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(expires))
	}
	return b
}

// decodeStateValue decodes a StateValue message, which must have a name.
func decodeStateValue(b []byte) (name, typeName string, value []byte, expires time.Time, err error) {
	err = fieldsAny(b, func(num protowire.Number, typ protowire.Type, f []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			name = string(f)
		case num == 2 && typ == protowire.BytesType:
			typeName = string(f)
		case num == 3 && typ == protowire.BytesType:
			value = f
		case num == 4 && typ == protowire.VarintType:
			ms, n := protowire.ConsumeVarint(f)
			if n < 0 {
				return fmt.Errorf("%w: expiry: %w", ErrMalformed, protowire.ParseError(n))
			}
			expires = time.UnixMilli(int64(ms))
		}
		return nil
	})
	if err == nil && name == "" {
		err = fmt.Errorf("%w: state value without a name", ErrMalformed)
	}
	return name, typeName, value, expires, err
}

// DecodeStateRecord decodes a state record. The values alias b.
func DecodeStateRecord(b []byte) (StateRecord, error) {
	r := make(StateRecord)
	err := fields(b, func(num protowire.Number, v []byte) error {
		if num != 1 {
			return nil
		}
		name, tn, val, expires, err := decodeStateValue(v)
		if err != nil {
			return err
		}
		r[name] = driver.StoredValue{TypeName: functions.TypeName(tn), Value: val, ExpiresAt: expires}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// AppendTimerKey appends the key of a delayed message in the timers topic:
// the sending address and its cancellation token.
//
//	message TimerKey { Address sender = 1; string token = 2; }
func AppendTimerKey(b []byte, sender functions.Address, token string) []byte {
	b = appendAddress(b, 1, sender)
	return appendString(b, 2, token)
}

// DecodeTimerKey decodes a timer key.
func DecodeTimerKey(b []byte) (sender functions.Address, token string, err error) {
	var haveSender bool
	err = fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			a, err := decodeAddress(v)
			if err != nil {
				return fmt.Errorf("sender: %w", err)
			}
			sender, haveSender = a, true
		case 2:
			token = string(v)
		}
		return nil
	})
	if err != nil {
		return functions.Address{}, "", err
	}
	if !haveSender || token == "" {
		return functions.Address{}, "", fmt.Errorf("%w: timer key without sender or token", ErrMalformed)
	}
	return sender, token, nil
}

// Timer is a delayed message in the timers topic: when it is due, and the
// message with the sender as its caller.
//
//	message Timer { int64 due_unix_millis = 1; Envelope message = 2; }
type Timer struct {
	DueUnixMilli int64
	Message      Envelope
}

// AppendTimer appends the encoding of t to b.
func AppendTimer(b []byte, t Timer) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.DueUnixMilli))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, AppendEnvelope(nil, t.Message))
}

// DecodeTimer decodes a timer.
func DecodeTimer(b []byte) (Timer, error) {
	var t Timer
	var haveDue, haveMsg bool
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			due, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return fmt.Errorf("%w: due: %w", ErrMalformed, protowire.ParseError(n))
			}
			t.DueUnixMilli, haveDue = int64(due), true
		case num == 2 && typ == protowire.BytesType:
			e, err := DecodeEnvelope(v)
			if err != nil {
				return fmt.Errorf("message: %w", err)
			}
			t.Message, haveMsg = e, true
		}
		return nil
	})
	if err != nil {
		return Timer{}, err
	}
	if !haveDue || !haveMsg {
		return Timer{}, fmt.Errorf("%w: timer without due time or message", ErrMalformed)
	}
	return t, nil
}

// AppendPositionKey appends the key of an input partition's position
// record: the topic, a zero byte and the partition in decimal.
func AppendPositionKey(b []byte, topic string, partition int32) []byte {
	b = append(b, topic...)
	b = append(b, 0)
	return strconv.AppendInt(b, int64(partition), 10)
}

// DecodePositionKey inverts [AppendPositionKey].
func DecodePositionKey(b []byte) (topic string, partition int32, err error) {
	t, p, ok := bytes.Cut(b, []byte{0})
	if !ok || len(t) == 0 {
		return "", 0, fmt.Errorf("%w: position key %q", ErrMalformed, b)
	}
	n, err := strconv.ParseInt(string(p), 10, 32)
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("%w: position key %q", ErrMalformed, b)
	}
	return string(t), int32(n), nil
}

// AppendPosition appends a position record: the offset of the next input
// record to process.
//
//	message Position { int64 next_offset = 1; }
func AppendPosition(b []byte, next int64) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(next))
}

// DecodePosition inverts [AppendPosition].
func DecodePosition(b []byte) (int64, error) {
	next := int64(-1)
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, f []byte) error {
		if num == 1 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(f)
			if n < 0 {
				return fmt.Errorf("%w: position: %w", ErrMalformed, protowire.ParseError(n))
			}
			next = int64(v)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if next < 0 {
		return 0, fmt.Errorf("%w: position without an offset", ErrMalformed)
	}
	return next, nil
}

// AppendInboxKey appends the key of inbox entry seq of address a: its
// function type and id, each with its length as a uvarint before it, and
// seq as 8 bytes, big endian. The entries of one address share a prefix
// and sort by seq.
func AppendInboxKey(b []byte, a functions.Address, seq uint64) []byte {
	b = protowire.AppendVarint(b, uint64(len(a.Type)))
	b = append(b, a.Type...)
	b = protowire.AppendVarint(b, uint64(len(a.ID)))
	b = append(b, a.ID...)
	return binary.BigEndian.AppendUint64(b, seq)
}

// DecodeInboxKey inverts [AppendInboxKey].
func DecodeInboxKey(b []byte) (functions.Address, uint64, error) {
	part := func() (string, bool) {
		n, m := protowire.ConsumeVarint(b)
		if m < 0 || uint64(len(b)-m) < n {
			return "", false
		}
		s := string(b[m : m+int(n)])
		b = b[m+int(n):]
		return s, true
	}
	t, ok1 := part()
	id, ok2 := part()
	if !ok1 || !ok2 || len(b) != 8 {
		return functions.Address{}, 0, fmt.Errorf("%w: inbox key", ErrMalformed)
	}
	fn, err := functions.ParseTypeName(t)
	if err != nil {
		return functions.Address{}, 0, fmt.Errorf("%w: inbox key: %w", ErrMalformed, err)
	}
	return functions.Address{Type: fn, ID: id}, binary.BigEndian.Uint64(b), nil
}

// Source names the consumed record a message came with, for the
// dead-letter topic.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: none
	Value     []byte
}

// InboxEntry is a message waiting in its address's inbox: one that failed
// and is retried later, one queued behind it, or a remote call not
// finished when its transaction committed.
//
//	message InboxEntry {
//	  Envelope message = 1;
//	  Source source = 2;
//	  int32 attempts = 3;                   // failed attempts so far
//	  int64 next_attempt_unix_millis = 4;   // 0: as soon as its turn comes
//	}
//	message Source { string topic = 1; int32 partition = 2; int64 offset = 3; bytes key = 4; bytes value = 5; bool has_key = 6; }
type InboxEntry struct {
	Message              Envelope
	Source               Source
	Attempts             int32
	NextAttemptUnixMilli int64
}

// AppendInboxEntry appends the encoding of e to b.
func AppendInboxEntry(b []byte, e InboxEntry) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, AppendEnvelope(nil, e.Message))
	var s []byte
	s = appendString(s, 1, e.Source.Topic)
	s = protowire.AppendTag(s, 2, protowire.VarintType)
	s = protowire.AppendVarint(s, uint64(e.Source.Partition))
	s = protowire.AppendTag(s, 3, protowire.VarintType)
	s = protowire.AppendVarint(s, uint64(e.Source.Offset))
	if e.Source.Key != nil {
		s = protowire.AppendTag(s, 4, protowire.BytesType)
		s = protowire.AppendBytes(s, e.Source.Key)
		s = protowire.AppendTag(s, 6, protowire.VarintType)
		s = protowire.AppendVarint(s, 1)
	}
	s = protowire.AppendTag(s, 5, protowire.BytesType)
	s = protowire.AppendBytes(s, e.Source.Value)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, s)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(e.Attempts))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(e.NextAttemptUnixMilli))
}

// DecodeInboxEntry decodes an inbox entry.
func DecodeInboxEntry(b []byte) (InboxEntry, error) {
	var e InboxEntry
	var haveMsg, haveSource bool
	varint := func(v []byte) (uint64, error) {
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return 0, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		return x, nil
	}
	err := fieldsAny(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			m, err := DecodeEnvelope(v)
			if err != nil {
				return fmt.Errorf("message: %w", err)
			}
			e.Message, haveMsg = m, true
		case num == 2 && typ == protowire.BytesType:
			haveSource = true
			var hasKey bool
			err := fieldsAny(v, func(num protowire.Number, typ protowire.Type, f []byte) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					e.Source.Topic = string(f)
				case num == 2 && typ == protowire.VarintType:
					x, err := varint(f)
					e.Source.Partition = int32(x)
					return err
				case num == 3 && typ == protowire.VarintType:
					x, err := varint(f)
					e.Source.Offset = int64(x)
					return err
				case num == 4 && typ == protowire.BytesType:
					e.Source.Key = append([]byte(nil), f...)
				case num == 5 && typ == protowire.BytesType:
					e.Source.Value = append([]byte(nil), f...)
				case num == 6 && typ == protowire.VarintType:
					x, err := varint(f)
					hasKey = x != 0
					return err
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("source: %w", err)
			}
			if hasKey && e.Source.Key == nil {
				e.Source.Key = []byte{}
			}
		case num == 3 && typ == protowire.VarintType:
			x, err := varint(v)
			e.Attempts = int32(x)
			return err
		case num == 4 && typ == protowire.VarintType:
			x, err := varint(v)
			e.NextAttemptUnixMilli = int64(x)
			return err
		}
		return nil
	})
	if err != nil {
		return InboxEntry{}, err
	}
	if !haveMsg || !haveSource {
		return InboxEntry{}, fmt.Errorf("%w: inbox entry without message or source", ErrMalformed)
	}
	return e, nil
}

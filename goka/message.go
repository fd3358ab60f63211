package gokainterop

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/lovoo/goka"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// ErrMalformed is wrapped by the error of [MessageCodec.Decode] for bytes
// that are not a message envelope.
var ErrMalformed = errors.New("gokainterop: malformed message envelope")

// LoopStream returns the loop topic of topo as a goka stream: the topic of
// messages to function addresses, key = function id, value = a message
// envelope ([MessageCodec]).
func LoopStream(topo topology.Topology) goka.Stream {
	return goka.Stream(topo.LoopTopic())
}

// Message is a message to a function address: the value that
// [MessageCodec] writes to the loop topic.
type Message struct {
	// To is the function address that gets the message. The record key
	// must be To.ID: see [Emit].
	To functions.Address
	// Argument is the message: its type name and encoded bytes, as
	// functions.Type.Of or functions.NewMessage make it.
	Argument functions.Message
	// Caller is what the function sees as ctx.Caller(); the zero Address
	// (the default) means no caller, as for a message from an ingress.
	Caller functions.Address
	// IdempotencyKey, if set, makes the runtime deliver only the first
	// message with this key to To within its idempotency window (as the
	// HTTP ingress's Idempotency-Key header does).
	IdempotencyKey string
}

// Validate reports an invalid address, an empty id, an argument without a
// valid type name or with an encode error, and an invalid caller.
func (m Message) Validate() error {
	if err := m.To.Validate(); err != nil {
		return fmt.Errorf("gokainterop: message to %s: %w", m.To, err)
	}
	if err := m.Argument.Err(); err != nil {
		return fmt.Errorf("gokainterop: message to %s: %w", m.To, err)
	}
	if _, err := functions.ParseTypeName(string(m.Argument.TypeName())); err != nil {
		return fmt.Errorf("gokainterop: message to %s: argument type: %w", m.To, err)
	}
	if m.Caller != (functions.Address{}) {
		if err := m.Caller.Validate(); err != nil {
			return fmt.Errorf("gokainterop: message to %s: caller: %w", m.To, err)
		}
	}
	return nil
}

// MessageCodec is the goka.Codec of the loop topic: it encodes a [Message]
// (or *Message) as stateloop's message envelope, byte for byte what the
// stateloop runtime writes, and decodes an envelope into a Message. Use it
// for a goka.Emitter on [LoopStream], or with goka.Output in a goka
// processor, and always emit with the function id as key ([Emit] does).
//
// The envelope is protobuf, written by the runtime's own codec
// (internal/wire; docs/topics-and-formats.md):
//
//	message Envelope {
//	  Address target = 1;
//	  Address caller = 2;      // absent for messages from an ingress
//	  TypedValue argument = 3;
//	  string idempotency_key = 4;
//	}
//	message Address { string namespace = 1; string type = 2; string id = 3; }
//	message TypedValue { string typename = 1; bool has_value = 2; bytes value = 3; }
type MessageCodec struct{}

// Encode encodes a Message or *Message. It returns the error of
// [Message.Validate] for an invalid message, and an error for any other
// Go type.
func (MessageCodec) Encode(value any) ([]byte, error) {
	var m Message
	switch v := value.(type) {
	case Message:
		m = v
	case *Message:
		if v == nil {
			return nil, errors.New("gokainterop: cannot encode a nil *Message")
		}
		m = *v
	default:
		return nil, fmt.Errorf("gokainterop: cannot encode %T, only Message", value)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return appendEnvelope(nil, m), nil
}

// Decode decodes an envelope into a Message, which does not alias data. It
// returns an error wrapping [ErrMalformed] for bytes that are not an
// envelope with a valid target address and an argument type name.
func (MessageCodec) Decode(data []byte) (any, error) {
	m, err := decodeEnvelope(bytes.Clone(data))
	if err != nil {
		return nil, err
	}
	return m, nil
}

// NewEmitter returns a goka emitter to the loop topic of topo, with
// [MessageCodec]. Emit with [Emit] or [EmitSync]. opts are goka's. The
// loop topic must exist with the topology's partition count: start the
// stateloop application first, it creates it (an emitter to a missing
// topic may have the broker auto-create it with another partition count,
// and the application then refuses to start).
func NewEmitter(brokers []string, topo topology.Topology, opts ...goka.EmitterOption) (*goka.Emitter, error) {
	return goka.NewEmitter(brokers, LoopStream(topo), MessageCodec{}, opts...)
}

// Emit sends msg to the function address to through e, an emitter on the
// loop topic with [MessageCodec] ([NewEmitter]), with to.ID as record key:
// Goka's default hasher then puts the record on the partition that owns
// the address's state. It returns the error of [Message.Validate] for an
// invalid message, else goka's.
func Emit(e *goka.Emitter, to functions.Address, msg functions.Message) (*goka.Promise, error) {
	m := Message{To: to, Argument: msg}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return e.Emit(to.ID, m)
}

// EmitSync is [Emit] that waits until the broker has acknowledged the
// record.
func EmitSync(e *goka.Emitter, to functions.Address, msg functions.Message) error {
	m := Message{To: to, Argument: msg}
	if err := m.Validate(); err != nil {
		return err
	}
	return e.EmitSync(to.ID, m)
}

func appendEnvelope(b []byte, m Message) []byte {
	e := wire.Envelope{Target: m.To, Argument: m.Argument, IdempotencyKey: m.IdempotencyKey}
	if m.Caller != (functions.Address{}) {
		caller := m.Caller
		e.Caller = &caller
	}
	return wire.AppendEnvelope(b, e)
}

func decodeEnvelope(b []byte) (Message, error) {
	e, err := wire.DecodeEnvelope(b)
	if err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	m := Message{To: e.Target, Argument: e.Argument, IdempotencyKey: e.IdempotencyKey}
	if e.Caller != nil {
		m.Caller = *e.Caller
	}
	return m, nil
}

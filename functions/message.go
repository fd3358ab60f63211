package functions

import (
	"fmt"

	"github.com/stateloop/stateloop/codec"
)

// Message is a typed value in flight: a type name and its encoded bytes, the
// same pair as StateFun's TypedValue. Messages are immutable values.
//
// A Message built by [Type.Of] from a value that failed to encode carries
// that error; sending it fails the invocation with it.
type Message struct {
	typeName TypeName
	value    []byte
	err      error
}

// NewMessage returns a message of the given type with value as its encoded
// bytes. The bytes are not copied: do not change them afterwards.
func NewMessage(typeName TypeName, value []byte) Message {
	return Message{typeName: typeName, value: value}
}

// TypeName returns the message's type name.
func (m Message) TypeName() TypeName { return m.typeName }

// Bytes returns the encoded value. The caller must not change it.
func (m Message) Bytes() []byte { return m.value }

// Err returns the encode error the message was built with, if any.
func (m Message) Err() error { return m.err }

// OutgoingMessage is a message to an address: one that a function sent
// with [Context.Send] or [Context.Reply], or that an ingress router
// returns for a record.
type OutgoingMessage struct {
	To      Address
	Message Message
}

// EgressMessage is a message that a function sent to an egress with
// [Context.SendEgress].
type EgressMessage struct {
	Egress  TypeName
	Message Message
}

// Type binds a type name to a codec: the declaration of a message or state
// type, made once at package level.
//
//	var Greet = functions.NewType("example/greet", codec.JSON[GreetRequest]())
type Type[T any] struct {
	name  TypeName
	codec codec.Codec[T]
}

// NewType declares a type. It panics if name is not a valid [TypeName] or
// c is nil, because it is meant for package-level declarations.
func NewType[T any](name string, c codec.Codec[T]) Type[T] {
	if c == nil {
		panic("functions: NewType " + name + ": nil codec")
	}
	return Type[T]{name: MustTypeName(name), codec: c}
}

// Name returns the type name.
func (t Type[T]) Name() TypeName { return t.name }

// Codec returns the type's codec.
func (t Type[T]) Codec() codec.Codec[T] { return t.codec }

// Of encodes v as a message of this type. An encode error is kept in the
// message (see [Message.Err]) and fails the invocation that sends it.
func (t Type[T]) Of(v T) Message {
	b, err := t.codec.Encode(v)
	if err != nil {
		err = fmt.Errorf("functions: encode %s: %w", t.name, err)
	}
	return Message{typeName: t.name, value: b, err: err}
}

// Is reports whether m has this type's name.
func (t Type[T]) Is(m Message) bool { return m.typeName == t.name }

// As decodes m. It returns a *[DecodeError] if m has another type name or
// its bytes do not decode.
func (t Type[T]) As(m Message) (T, error) {
	if m.typeName != t.name {
		var zero T
		return zero, &DecodeError{TypeName: m.typeName, Err: fmt.Errorf("message is not of type %s", t.name)}
	}
	v, err := t.codec.Decode(m.value)
	if err != nil {
		return v, &DecodeError{TypeName: m.typeName, Err: err}
	}
	return v, nil
}

// The built-in types use StateFun's type names and encodings, so messages
// and state written by a Go function can be read by the StateFun SDKs in
// Python, JavaScript, Java and Go, and the other way round.
var (
	BoolType   = NewType("io.statefun.types/bool", codec.Bool())
	IntType    = NewType("io.statefun.types/int", codec.Int32())
	LongType   = NewType("io.statefun.types/long", codec.Int64())
	FloatType  = NewType("io.statefun.types/float", codec.Float32())
	DoubleType = NewType("io.statefun.types/double", codec.Float64())
	StringType = NewType("io.statefun.types/string", codec.String())
)

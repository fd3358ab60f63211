package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
)

// Codec encodes values of type T to bytes and decodes them back.
//
// Implementations must be safe for concurrent use and must round-trip:
// Decode(Encode(v)) equals v for every v that Encode accepts.
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// ErrCorrupt is wrapped by every Decode error caused by malformed bytes.
var ErrCorrupt = errors.New("codec: corrupt data")

func corrupt(what string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
}

type bytesCodec struct{}

// Bytes returns the identity codec: Encode and Decode return their input.
func Bytes() Codec[[]byte] { return bytesCodec{} }

func (bytesCodec) Encode(v []byte) ([]byte, error) { return v, nil }
func (bytesCodec) Decode(b []byte) ([]byte, error) { return b, nil }

type textCodec struct{}

// Text returns a codec for plain UTF-8 text with no framing. Encode and
// Decode reject strings that are not valid UTF-8.
func Text() Codec[string] { return textCodec{} }

func (textCodec) Encode(v string) ([]byte, error) {
	if !utf8.ValidString(v) {
		return nil, errors.New("codec: text is not valid utf-8")
	}
	return []byte(v), nil
}

func (textCodec) Decode(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", corrupt("text is not valid utf-8", nil)
	}
	return string(b), nil
}

type jsonCodec[T any] struct{}

// JSON returns a codec that encodes T with encoding/json. Encode writes no
// trailing newline; Decode accepts one (StateFun's Go SDK writes it).
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

func (jsonCodec[T]) Encode(v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: encode json: %w", err)
	}
	return b, nil
}

func (jsonCodec[T]) Decode(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, corrupt("json", err)
	}
	return v, nil
}

type protoCodec[T any, PT interface {
	*T
	proto.Message
}] struct{}

// Proto returns a codec for the generated protobuf message type T, used as
// its pointer *T: codec.Proto[pb.Order]() is a Codec[*pb.Order]. Decode
// always returns a new message; a nil message encodes as zero bytes.
func Proto[T any, PT interface {
	*T
	proto.Message
}]() Codec[PT] {
	return protoCodec[T, PT]{}
}

func (protoCodec[T, PT]) Encode(v PT) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := proto.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: encode protobuf: %w", err)
	}
	return b, nil
}

func (protoCodec[T, PT]) Decode(b []byte) (PT, error) {
	v := PT(new(T))
	if err := proto.Unmarshal(b, v); err != nil {
		return nil, corrupt("protobuf", err)
	}
	return v, nil
}

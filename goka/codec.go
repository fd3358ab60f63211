package gokainterop

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/stateloop/stateloop/codec"
)

// Codec returns c as a goka.Codec: Decode returns a T, Encode takes a T
// (or a *T). Use it for goka.Input on an egress topic whose values a
// function encoded with c, or with a functions.Type's codec
// (functions.LongType.Codec()) to read and write the values of messages.
// Decode and Encode return c's errors, and Encode an error for a value of
// another Go type.
func Codec[T any](c codec.Codec[T]) goka.Codec {
	return gokaCodec[T]{c}
}

type gokaCodec[T any] struct{ c codec.Codec[T] }

func (g gokaCodec[T]) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case T:
		return g.c.Encode(v)
	case *T:
		if v != nil {
			return g.c.Encode(*v)
		}
	}
	var zero T
	return nil, fmt.Errorf("gokainterop: cannot encode %T, only %T", value, zero)
}

func (g gokaCodec[T]) Decode(data []byte) (any, error) {
	v, err := g.c.Decode(data)
	if err != nil {
		return nil, err
	}
	return v, nil
}

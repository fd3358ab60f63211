package codec

import (
	"errors"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The wrapper codecs encode a primitive as StateFun's one-field protobuf
// wrapper messages (io.statefun.sdk.types.*Wrapper, field number 1). proto3
// leaves a zero value out, so zero encodes as zero bytes. Decoding skips
// unknown fields, as protobuf does, and keeps the last occurrence of field 1.

type boolCodec struct{}

// Bool returns the codec of io.statefun.types/bool (BooleanWrapper).
func Bool() Codec[bool] { return boolCodec{} }

func (boolCodec) Encode(v bool) ([]byte, error) {
	if !v {
		return nil, nil
	}
	return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), nil
}

func (boolCodec) Decode(b []byte) (bool, error) {
	var v bool
	err := decodeWrapper(b, protowire.VarintType, func(b []byte) int {
		x, n := protowire.ConsumeVarint(b)
		v = x != 0
		return n
	})
	return v, err
}

type int32Codec struct{}

// Int32 returns the codec of io.statefun.types/int (IntWrapper, sfixed32).
func Int32() Codec[int32] { return int32Codec{} }

func (int32Codec) Encode(v int32) ([]byte, error) {
	if v == 0 {
		return nil, nil
	}
	return protowire.AppendFixed32(protowire.AppendTag(nil, 1, protowire.Fixed32Type), uint32(v)), nil
}

func (int32Codec) Decode(b []byte) (int32, error) {
	var v int32
	err := decodeWrapper(b, protowire.Fixed32Type, func(b []byte) int {
		x, n := protowire.ConsumeFixed32(b)
		v = int32(x)
		return n
	})
	return v, err
}

type int64Codec struct{}

// Int64 returns the codec of io.statefun.types/long (LongWrapper, sfixed64).
func Int64() Codec[int64] { return int64Codec{} }

func (int64Codec) Encode(v int64) ([]byte, error) {
	if v == 0 {
		return nil, nil
	}
	return protowire.AppendFixed64(protowire.AppendTag(nil, 1, protowire.Fixed64Type), uint64(v)), nil
}

func (int64Codec) Decode(b []byte) (int64, error) {
	var v int64
	err := decodeWrapper(b, protowire.Fixed64Type, func(b []byte) int {
		x, n := protowire.ConsumeFixed64(b)
		v = int64(x)
		return n
	})
	return v, err
}

type float32Codec struct{}

// Float32 returns the codec of io.statefun.types/float (FloatWrapper).
func Float32() Codec[float32] { return float32Codec{} }

func (float32Codec) Encode(v float32) ([]byte, error) {
	bits := math.Float32bits(v)
	if bits == 0 {
		return nil, nil
	}
	return protowire.AppendFixed32(protowire.AppendTag(nil, 1, protowire.Fixed32Type), bits), nil
}

func (float32Codec) Decode(b []byte) (float32, error) {
	var v float32
	err := decodeWrapper(b, protowire.Fixed32Type, func(b []byte) int {
		x, n := protowire.ConsumeFixed32(b)
		v = math.Float32frombits(x)
		return n
	})
	return v, err
}

type float64Codec struct{}

// Float64 returns the codec of io.statefun.types/double (DoubleWrapper).
func Float64() Codec[float64] { return float64Codec{} }

func (float64Codec) Encode(v float64) ([]byte, error) {
	bits := math.Float64bits(v)
	if bits == 0 {
		return nil, nil
	}
	return protowire.AppendFixed64(protowire.AppendTag(nil, 1, protowire.Fixed64Type), bits), nil
}

func (float64Codec) Decode(b []byte) (float64, error) {
	var v float64
	err := decodeWrapper(b, protowire.Fixed64Type, func(b []byte) int {
		x, n := protowire.ConsumeFixed64(b)
		v = math.Float64frombits(x)
		return n
	})
	return v, err
}

type stringCodec struct{}

// String returns the codec of io.statefun.types/string (StringWrapper).
// For plain UTF-8 without the wrapper use [Text].
func String() Codec[string] { return stringCodec{} }

func (stringCodec) Encode(v string) ([]byte, error) {
	if !utf8.ValidString(v) {
		return nil, errors.New("codec: string is not valid utf-8")
	}
	if v == "" {
		return nil, nil
	}
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), v), nil
}

func (stringCodec) Decode(b []byte) (string, error) {
	var v string
	valid := true
	err := decodeWrapper(b, protowire.BytesType, func(b []byte) int {
		x, n := protowire.ConsumeBytes(b)
		// Check every occurrence, not only the last, as protobuf does.
		valid = valid && utf8.Valid(x)
		v = string(x)
		return n
	})
	if err == nil && !valid {
		return "", corrupt("string wrapper is not valid utf-8", nil)
	}
	return v, err
}

// decodeWrapper walks a wrapper message, handing field 1 of wire type want
// to value, which returns the bytes it consumed (negative on error).
func decodeWrapper(b []byte, want protowire.Type, value func([]byte) int) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return corrupt("wrapper tag", protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber { // ConsumeTag checks only the lower bound
			return corrupt("wrapper field number out of range", nil)
		}
		b = b[n:]
		if num == 1 {
			if typ != want {
				return corrupt("wrapper field 1 has the wrong wire type", nil)
			}
			n = value(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return corrupt("wrapper field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

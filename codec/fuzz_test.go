package codec_test

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/codec/codectest"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// statefunTypes is StateFun's types.proto (package io.statefun.sdk.types),
// built at run time so that the wrapper codecs can be checked against the
// protobuf runtime itself: the reference implementation the official SDKs
// use.
var statefunTypes = sync.OnceValue(func() protoreflect.FileDescriptor {
	field := func(t descriptorpb.FieldDescriptorProto_Type) []*descriptorpb.FieldDescriptorProto {
		return []*descriptorpb.FieldDescriptorProto{{
			Name:     proto.String("value"),
			JsonName: proto.String("value"),
			Number:   proto.Int32(1),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Type:     t.Enum(),
		}}
	}
	msg := func(name string, t descriptorpb.FieldDescriptorProto_Type) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: field(t)}
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("types/types.proto"),
		Package: proto.String("io.statefun.sdk.types"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			msg("BooleanWrapper", descriptorpb.FieldDescriptorProto_TYPE_BOOL),
			msg("IntWrapper", descriptorpb.FieldDescriptorProto_TYPE_SFIXED32),
			msg("FloatWrapper", descriptorpb.FieldDescriptorProto_TYPE_FLOAT),
			msg("LongWrapper", descriptorpb.FieldDescriptorProto_TYPE_SFIXED64),
			msg("DoubleWrapper", descriptorpb.FieldDescriptorProto_TYPE_DOUBLE),
			msg("StringWrapper", descriptorpb.FieldDescriptorProto_TYPE_STRING),
		},
	}, nil)
	if err != nil {
		panic(err)
	}
	return fd
})

// wrapperMarshal is the protobuf runtime's encoding of v as the StateFun
// wrapper message named wrapper.
func wrapperMarshal(t testing.TB, wrapper string, v protoreflect.Value) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(statefunTypes().Messages().ByName(protoreflect.Name(wrapper)))
	m.Set(m.Descriptor().Fields().ByNumber(1), v)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatalf("proto.Marshal(%s{%v}): %v", wrapper, v, err)
	}
	return b
}

// wrapperUnmarshal is the protobuf runtime's decoding of b as the StateFun
// wrapper message named wrapper.
func wrapperUnmarshal(wrapper string, b []byte) (protoreflect.Value, error) {
	m := dynamicpb.NewMessage(statefunTypes().Messages().ByName(protoreflect.Name(wrapper)))
	if err := proto.Unmarshal(b, m); err != nil {
		return protoreflect.Value{}, err
	}
	return m.Get(m.Descriptor().Fields().ByNumber(1)), nil
}

// fuzzWrapper checks one wrapper codec on arbitrary input: the contract
// property of codectest.CheckDecode, and agreement with the protobuf
// runtime. The codec may be stricter than protobuf, which reads a field 1
// of the wrong wire type as an unknown field, but whatever the codec
// accepts protobuf must accept with the same value, and whatever protobuf
// rejects the codec must reject.
func fuzzWrapper[T any](f *testing.F, c codec.Codec[T], wrapper string, wire protowire.Type, equal func(a, b T) bool, toValue func(T) protoreflect.Value, seeds ...T) {
	for _, v := range seeds {
		b, err := c.Encode(v)
		if err != nil {
			f.Fatalf("Encode(%v): %v", v, err)
		}
		f.Add(b)
		f.Add(append(bytes.Clone(b), 0x10, 0x01))                               // unknown varint field 2 after
		f.Add(append([]byte{0x1a, 0x01, 'x'}, b...))                            // unknown bytes field 3 before
		f.Add(append(bytes.Clone(b), b...))                                     // field 1 twice
		f.Add(append([]byte{0x0b, 0x0c}, b...))                                 // empty group before
		f.Add(protowire.AppendTag(bytes.Clone(b), 1, protowire.StartGroupType)) // truncated group
	}
	f.Add([]byte{})
	f.Add([]byte{0x0d, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		codectest.CheckDecode(t, c, b, equal)
		got, err := c.Decode(b)
		want, perr := wrapperUnmarshal(wrapper, b)
		switch {
		case err != nil && !errors.Is(err, codec.ErrCorrupt):
			t.Fatalf("Decode(% x): got error %v, want one wrapping ErrCorrupt", b, err)
		case perr != nil && err == nil:
			t.Fatalf("Decode(% x): got %v, nil; protobuf rejects it (%v), want an error", b, got, perr)
		case err == nil && !toValue(got).Equal(want):
			t.Fatalf("Decode(% x): got %v, protobuf decodes %v", b, got, want)
		case err != nil && perr == nil && !hasField1OfOtherType(b, wire):
			t.Fatalf("Decode(% x): got error %v; protobuf decodes %v and field 1 always has the right wire type, want no error", b, err, want)
		}
	})
}

// hasField1OfOtherType reports whether the well-formed message b has a
// top-level field 1 whose wire type is not want: the one case where the
// codecs are stricter than protobuf.
func hasField1OfOtherType(b []byte, want protowire.Type) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		if num == 1 && typ != want {
			return true
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		b = b[n:]
	}
	return false
}

func FuzzBoolDecode(f *testing.F) {
	fuzzWrapper(f, codec.Bool(), "BooleanWrapper", protowire.VarintType, nil, protoreflect.ValueOfBool, false, true)
}

func FuzzInt32Decode(f *testing.F) {
	fuzzWrapper(f, codec.Int32(), "IntWrapper", protowire.Fixed32Type, nil, protoreflect.ValueOfInt32, 0, 5, -1, math.MinInt32)
}

func FuzzInt64Decode(f *testing.F) {
	fuzzWrapper(f, codec.Int64(), "LongWrapper", protowire.Fixed64Type, nil, protoreflect.ValueOfInt64, 0, 5, -1, math.MaxInt64)
}

func FuzzFloat32Decode(f *testing.F) {
	fuzzWrapper(f, codec.Float32(), "FloatWrapper", protowire.Fixed32Type, sameFloat32, protoreflect.ValueOfFloat32, 0, 1.5, float32(math.Inf(-1)), float32(math.NaN()))
}

func FuzzFloat64Decode(f *testing.F) {
	fuzzWrapper(f, codec.Float64(), "DoubleWrapper", protowire.Fixed64Type, sameFloat64, protoreflect.ValueOfFloat64, 0, 1.5, math.Copysign(0, -1), math.NaN())
}

func FuzzStringDecode(f *testing.F) {
	fuzzWrapper(f, codec.String(), "StringWrapper", protowire.BytesType, nil, protoreflect.ValueOfString, "", "Bob", "héllo, 世界")
}

// FuzzWrapperEncode checks that every wrapper codec writes exactly the
// bytes the protobuf runtime writes for StateFun's wrapper messages.
func FuzzWrapperEncode(f *testing.F) {
	f.Add(true, int32(5), int64(5), float32(1.5), 1.5, "Bob")
	f.Add(false, int32(0), int64(0), float32(0), 0.0, "")
	f.Add(true, int32(-1), int64(math.MinInt64), float32(math.Copysign(0, -1)), math.NaN(), "\x00é")
	f.Fuzz(func(t *testing.T, bo bool, i32 int32, i64 int64, f32 float32, f64 float64, s string) {
		check := func(name string, got []byte, err error, want func() []byte) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: Encode: got error %v, want nil", name, err)
			}
			if w := want(); !bytes.Equal(got, w) {
				t.Errorf("%s: Encode: got % x, want % x (protobuf)", name, got, w)
			}
		}
		b, err := codec.Bool().Encode(bo)
		check("bool", b, err, func() []byte {
			return wrapperMarshal(t, "BooleanWrapper", protoreflect.ValueOfBool(bo))
		})
		b, err = codec.Int32().Encode(i32)
		check("int32", b, err, func() []byte {
			return wrapperMarshal(t, "IntWrapper", protoreflect.ValueOfInt32(i32))
		})
		b, err = codec.Int64().Encode(i64)
		check("int64", b, err, func() []byte {
			return wrapperMarshal(t, "LongWrapper", protoreflect.ValueOfInt64(i64))
		})
		b, err = codec.Float32().Encode(f32)
		check("float32", b, err, func() []byte {
			return wrapperMarshal(t, "FloatWrapper", protoreflect.ValueOfFloat32(f32))
		})
		b, err = codec.Float64().Encode(f64)
		check("float64", b, err, func() []byte {
			return wrapperMarshal(t, "DoubleWrapper", protoreflect.ValueOfFloat64(f64))
		})
		b, err = codec.String().Encode(s)
		if !utf8Valid(s) {
			if err == nil {
				t.Errorf("string: Encode(%q): got % x, nil, want an error for invalid UTF-8", s, b)
			}
			return
		}
		check("string", b, err, func() []byte {
			return wrapperMarshal(t, "StringWrapper", protoreflect.ValueOfString(s))
		})
	})
}

func FuzzTextDecode(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte("héllo\n"))
	f.Add([]byte{0xc3, 0x28})
	f.Fuzz(func(t *testing.T, b []byte) {
		codectest.CheckDecode(t, codec.Text(), b, nil)
		got, err := codec.Text().Decode(b)
		if valid := utf8Valid(string(b)); valid != (err == nil) {
			t.Fatalf("Decode(% x): got error %v, want an error only for invalid UTF-8", b, err)
		}
		if err == nil && got != string(b) {
			t.Fatalf("Decode(% x): got %q, want the input unchanged", b, got)
		}
	})
}

func FuzzBytesDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x00, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		codectest.CheckDecode(t, codec.Bytes(), b, nil)
		if got, err := codec.Bytes().Decode(b); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Decode(% x): got % x, %v, want the input, nil", b, got, err)
		}
	})
}

func FuzzJSONDecode(f *testing.F) {
	f.Add([]byte(`{"name":"Bob","tags":["a"],"n":3}`))
	f.Add([]byte(`{"name":"Bob"}` + "\n"))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"name":"\ud800"}`))
	f.Add([]byte(`{"n":1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		codectest.CheckDecode(t, codec.JSON[person](), b, nil)
		codectest.CheckDecode(t, codec.JSON[map[string]any](), b, nil)
	})
}

func FuzzProtoDecode(f *testing.F) {
	s, err := structpb.NewStruct(map[string]any{"name": "Bob", "n": 3.5, "ok": true, "list": []any{"a", nil}})
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []proto.Message{s, wrapperspb.String("Bob")} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		codectest.CheckDecode(t, codec.Proto[structpb.Struct](), b, equalProto)
		codectest.CheckDecode(t, codec.Proto[wrapperspb.StringValue](), b, equalProto)
	})
}

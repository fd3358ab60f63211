package codec_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/codec/codectest"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type person struct {
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
	N    int      `json:"n"`
}

// sameFloat32 and sameFloat64 compare bits, so that NaN equals itself and
// -0 differs from +0.
func sameFloat32(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }
func sameFloat64(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

func equalProto[M proto.Message](a, b M) bool { return proto.Equal(a, b) }

func utf8Valid(s string) bool { return utf8.ValidString(s) }

func mustStruct(t testing.TB, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestContract runs the codectest contract suite on every codec of the
// package.
func TestContract(t *testing.T) {
	negZero32, negZero64 := float32(math.Copysign(0, -1)), math.Copysign(0, -1)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Bool", func(t *testing.T) { codectest.Run(t, codec.Bool(), []bool{false, true}, nil) }},
		{"Int32", func(t *testing.T) {
			codectest.Run(t, codec.Int32(), []int32{0, 1, 5, -1, math.MaxInt32, math.MinInt32}, nil)
		}},
		{"Int64", func(t *testing.T) {
			codectest.Run(t, codec.Int64(), []int64{0, 1, 5, -1, math.MaxInt64, math.MinInt64}, nil)
		}},
		{"Float32", func(t *testing.T) {
			codectest.Run(t, codec.Float32(), []float32{0, negZero32, 1.5, -3.25, math.MaxFloat32, math.SmallestNonzeroFloat32,
				float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}, sameFloat32)
		}},
		{"Float64", func(t *testing.T) {
			codectest.Run(t, codec.Float64(), []float64{0, negZero64, 1.5, -3.25, math.MaxFloat64, math.SmallestNonzeroFloat64,
				math.Inf(1), math.Inf(-1), math.NaN()}, sameFloat64)
		}},
		{"String", func(t *testing.T) {
			codectest.Run(t, codec.String(), []string{"", "Bob", "héllo, 世界", "\x00", strings.Repeat("x", 300)}, nil)
		}},
		{"Text", func(t *testing.T) {
			codectest.Run(t, codec.Text(), []string{"", "plain", "héllo, 世界\n", "\x00"}, nil)
		}},
		{"Bytes", func(t *testing.T) {
			codectest.Run(t, codec.Bytes(), [][]byte{nil, {}, {0x00}, {0x00, 0x01, 0xff}}, nil)
		}},
		{"JSON/struct", func(t *testing.T) {
			codectest.Run(t, codec.JSON[person](), []person{{}, {Name: "Bob", Tags: []string{"a", "b"}, N: 3}, {Name: "<&>\u2028"}}, nil)
		}},
		{"JSON/map", func(t *testing.T) {
			codectest.Run(t, codec.JSON[map[string]any](), []map[string]any{nil, {}, {"s": "x", "n": 1.5, "l": []any{true, nil}}}, nil)
		}},
		{"Proto/StringValue", func(t *testing.T) {
			codectest.Run(t, codec.Proto[wrapperspb.StringValue](), []*wrapperspb.StringValue{wrapperspb.String(""), wrapperspb.String("Bob")}, equalProto)
		}},
		{"Proto/Struct", func(t *testing.T) {
			codectest.Run(t, codec.Proto[structpb.Struct](), []*structpb.Struct{
				{},
				mustStruct(t, map[string]any{"name": "Bob", "n": 3.5, "ok": true, "none": nil, "list": []any{"a", 1.0}, "obj": map[string]any{"k": "v"}}),
			}, equalProto)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

// wireCase pins the bytes of one value in both directions.
type wireCase struct {
	name string
	// encode encodes the value; decode decodes want and reports whether it
	// got the value back.
	encode func() ([]byte, error)
	decode func([]byte) (got any, ok bool, err error)
	want   []byte
}

func wire[T any](name string, c codec.Codec[T], v T, equal func(a, b T) bool, want ...byte) wireCase {
	return wireCase{
		name:   name,
		encode: func() ([]byte, error) { return c.Encode(v) },
		decode: func(b []byte) (any, bool, error) {
			got, err := c.Decode(b)
			return got, equal(got, v), err
		},
		want: want,
	}
}

func eq[T comparable](a, b T) bool { return a == b }

// TestStateFunWireFormat pins the encodings of the StateFun wrapper types
// byte for byte: they are the interop contract with the official SDKs.
// Zero values encode as zero bytes, as proto3 leaves them out.
func TestStateFunWireFormat(t *testing.T) {
	tests := []wireCase{
		wire("bool/true", codec.Bool(), true, eq, 0x08, 0x01),
		wire("bool/false", codec.Bool(), false, eq),
		wire("int32/5", codec.Int32(), 5, eq, 0x0d, 0x05, 0x00, 0x00, 0x00),
		wire("int32/-1", codec.Int32(), -1, eq, 0x0d, 0xff, 0xff, 0xff, 0xff),
		wire("int32/0", codec.Int32(), 0, eq),
		wire("int64/5", codec.Int64(), 5, eq, 0x09, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
		wire("int64/-1", codec.Int64(), -1, eq, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		wire("int64/0", codec.Int64(), 0, eq),
		wire("float32/1.5", codec.Float32(), 1.5, sameFloat32, 0x0d, 0x00, 0x00, 0xc0, 0x3f),
		wire("float32/0", codec.Float32(), 0, sameFloat32),
		wire("float32/-0", codec.Float32(), float32(math.Copysign(0, -1)), sameFloat32, 0x0d, 0x00, 0x00, 0x00, 0x80),
		wire("float64/1.5", codec.Float64(), 1.5, sameFloat64, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f),
		wire("float64/0", codec.Float64(), 0, sameFloat64),
		wire("string/Bob", codec.String(), "Bob", eq, 0x0a, 0x03, 0x42, 0x6f, 0x62),
		wire("string/empty", codec.String(), "", eq),
		wire("text/Bob", codec.Text(), "Bob", eq, 0x42, 0x6f, 0x62),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.encode()
			if err != nil {
				t.Fatalf("Encode: got error %v, want nil", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Encode: got % x, want % x", got, tt.want)
			}
			v, ok, err := tt.decode(tt.want)
			if err != nil || !ok {
				t.Errorf("Decode(% x): got %v, %v, want the value, nil", tt.want, v, err)
			}
		})
	}
}

// TestWrapperEncodingMatchesProtobuf checks the wrapper codecs against the
// protobuf runtime's encoding of StateFun's wrapper messages for values
// around the edges of each type.
func TestWrapperEncodingMatchesProtobuf(t *testing.T) {
	type sample struct {
		got     func() ([]byte, error)
		wrapper string
		value   protoreflect.Value
	}
	var samples []sample
	for _, v := range []bool{false, true} {
		samples = append(samples, sample{func() ([]byte, error) { return codec.Bool().Encode(v) }, "BooleanWrapper", protoreflect.ValueOfBool(v)})
	}
	for _, v := range []int32{0, 1, -1, 300, math.MaxInt32, math.MinInt32} {
		samples = append(samples, sample{func() ([]byte, error) { return codec.Int32().Encode(v) }, "IntWrapper", protoreflect.ValueOfInt32(v)})
	}
	for _, v := range []int64{0, 1, -1, 300, math.MaxInt64, math.MinInt64} {
		samples = append(samples, sample{func() ([]byte, error) { return codec.Int64().Encode(v) }, "LongWrapper", protoreflect.ValueOfInt64(v)})
	}
	for _, v := range []float32{0, float32(math.Copysign(0, -1)), 1.5, float32(math.Inf(-1)), float32(math.NaN())} {
		samples = append(samples, sample{func() ([]byte, error) { return codec.Float32().Encode(v) }, "FloatWrapper", protoreflect.ValueOfFloat32(v)})
	}
	for _, v := range []float64{0, math.Copysign(0, -1), 1.5, math.Inf(1), math.NaN()} {
		samples = append(samples, sample{func() ([]byte, error) { return codec.Float64().Encode(v) }, "DoubleWrapper", protoreflect.ValueOfFloat64(v)})
	}
	for _, v := range []string{"", "Bob", "héllo", strings.Repeat("x", 200)} {
		samples = append(samples, sample{func() ([]byte, error) { return codec.String().Encode(v) }, "StringWrapper", protoreflect.ValueOfString(v)})
	}
	for _, s := range samples {
		got, err := s.got()
		if err != nil {
			t.Errorf("%s{%v}: Encode: got error %v, want nil", s.wrapper, s.value, err)
			continue
		}
		if want := wrapperMarshal(t, s.wrapper, s.value); !bytes.Equal(got, want) {
			t.Errorf("%s{%v}: Encode: got % x, want % x (protobuf)", s.wrapper, s.value, got, want)
		}
	}
}

// wrapperCodec is a wrapper codec with its value type erased, for tables.
type wrapperCodec struct {
	name   string
	wire   protowire.Type
	decode func([]byte) (any, error)
	// field1 is a valid field 1 holding the value want.
	field1 []byte
	want   any
}

func wrapperCodecs() []wrapperCodec {
	erase := func(c interface{ Decode([]byte) (any, error) }) func([]byte) (any, error) { return c.Decode }
	return []wrapperCodec{
		{"bool", protowire.VarintType, erase(anyCodec[bool]{codec.Bool()}), []byte{0x08, 0x01}, true},
		{"int32", protowire.Fixed32Type, erase(anyCodec[int32]{codec.Int32()}), []byte{0x0d, 0x05, 0, 0, 0}, int32(5)},
		{"int64", protowire.Fixed64Type, erase(anyCodec[int64]{codec.Int64()}), []byte{0x09, 0x05, 0, 0, 0, 0, 0, 0, 0}, int64(5)},
		{"float32", protowire.Fixed32Type, erase(anyCodec[float32]{codec.Float32()}), []byte{0x0d, 0, 0, 0xc0, 0x3f}, float32(1.5)},
		{"float64", protowire.Fixed64Type, erase(anyCodec[float64]{codec.Float64()}), []byte{0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f}, 1.5},
		{"string", protowire.BytesType, erase(anyCodec[string]{codec.String()}), []byte{0x0a, 0x03, 'B', 'o', 'b'}, "Bob"},
	}
}

type anyCodec[T any] struct{ c codec.Codec[T] }

func (a anyCodec[T]) Decode(b []byte) (any, error) { return a.c.Decode(b) }

// TestWrapperDecodeSkipsUnknownFields checks that the wrapper decoders
// ignore fields other than 1 of every wire type, as protobuf does, so that
// a newer writer's extra fields do not break an older reader.
func TestWrapperDecodeSkipsUnknownFields(t *testing.T) {
	var unknown []byte
	unknown = protowire.AppendVarint(protowire.AppendTag(unknown, 2, protowire.VarintType), 300)
	unknown = protowire.AppendFixed32(protowire.AppendTag(unknown, 3, protowire.Fixed32Type), 7)
	unknown = protowire.AppendFixed64(protowire.AppendTag(unknown, 4, protowire.Fixed64Type), 7)
	unknown = protowire.AppendString(protowire.AppendTag(unknown, 15, protowire.BytesType), "x")
	unknown = protowire.AppendTag(protowire.AppendVarint(protowire.AppendTag(protowire.AppendTag(unknown, 16, protowire.StartGroupType), 1, protowire.VarintType), 9), 16, protowire.EndGroupType)
	for _, w := range wrapperCodecs() {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			for _, in := range [][]byte{
				append(bytes.Clone(unknown), w.field1...),
				append(bytes.Clone(w.field1), unknown...),
			} {
				got, err := w.decode(in)
				if err != nil || got != w.want {
					t.Errorf("Decode(% x): got %v, %v, want %v, nil", in, got, err, w.want)
				}
			}
		})
	}
}

// TestWrapperDecodeRejectsWrongWireType checks that a field 1 of another
// wire type than the wrapper's is an ErrCorrupt, not silently a zero value:
// it means the bytes are of another type.
func TestWrapperDecodeRejectsWrongWireType(t *testing.T) {
	fields := map[protowire.Type][]byte{
		protowire.VarintType:     {0x08, 0x05},
		protowire.Fixed32Type:    {0x0d, 0x05, 0, 0, 0},
		protowire.Fixed64Type:    {0x09, 0x05, 0, 0, 0, 0, 0, 0, 0},
		protowire.BytesType:      {0x0a, 0x01, 'x'},
		protowire.StartGroupType: {0x0b, 0x0c},
	}
	for _, w := range wrapperCodecs() {
		for typ, in := range fields {
			if typ == w.wire {
				continue
			}
			got, err := w.decode(in)
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Errorf("%s: Decode(% x) (field 1, wire type %d): got %v, %v, want ErrCorrupt", w.name, in, typ, got, err)
			}
		}
	}
}

// TestWrapperDecodeLastFieldWins checks protobuf's rule for a repeated
// scalar field: the last occurrence wins.
func TestWrapperDecodeLastFieldWins(t *testing.T) {
	if got, err := codec.Int32().Decode([]byte{0x0d, 1, 0, 0, 0, 0x0d, 2, 0, 0, 0}); err != nil || got != 2 {
		t.Errorf("Int32: got %v, %v, want 2, nil", got, err)
	}
	if got, err := codec.String().Decode([]byte{0x0a, 1, 'a', 0x0a, 1, 'b'}); err != nil || got != "b" {
		t.Errorf("String: got %q, %v, want \"b\", nil", got, err)
	}
}

// TestWrapperDecodeCorrupt checks that truncated and malformed wrappers are
// ErrCorrupt, and that a well-formed message of only unknown fields decodes
// as the zero value.
func TestWrapperDecodeCorrupt(t *testing.T) {
	tests := []struct {
		name string
		c    wrapperCodec
		in   []byte
	}{
		{"bool/truncated varint", wrapperCodecs()[0], []byte{0x08}},
		{"bool/overlong varint", wrapperCodecs()[0], []byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"int32/truncated", wrapperCodecs()[1], []byte{0x0d, 0x05, 0x00, 0x00}},
		{"int64/truncated", wrapperCodecs()[2], []byte{0x09, 0x05}},
		{"float32/truncated", wrapperCodecs()[3], []byte{0x0d}},
		{"float64/truncated", wrapperCodecs()[4], []byte{0x09, 0, 0, 0, 0, 0, 0, 0xf8}},
		{"string/length past end", wrapperCodecs()[5], []byte{0x0a, 0x04, 'B', 'o', 'b'}},
		{"string/invalid utf-8", wrapperCodecs()[5], []byte{0x0a, 0x01, 0xff}},
		{"string/invalid utf-8 overwritten", wrapperCodecs()[5], []byte{0x0a, 0x01, 0xff, 0x0a, 0x01, 'a'}},
		{"int32/field number 0", wrapperCodecs()[1], []byte{0x05, 0, 0, 0, 0}},
		{"int32/unknown field truncated", wrapperCodecs()[1], []byte{0x0d, 5, 0, 0, 0, 0x12, 0x05}},
		{"int32/unterminated group", wrapperCodecs()[1], []byte{0x13, 0x08, 0x01}},
		// Found by FuzzBoolDecode: protowire.ConsumeTag accepts field
		// numbers above protobuf's maximum, 1<<29 - 1; protobuf does not.
		{"bool/field number above max", wrapperCodecs()[0], []byte{0xf0, 0xee, 0xd1, 0x80, 0x30, 0x30}},
		{"string/field number 1<<29", wrapperCodecs()[5], protowire.AppendVarint(protowire.AppendTag(nil, 1<<29, protowire.VarintType), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.c.decode(tt.in)
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Errorf("Decode(% x): got %v, %v, want ErrCorrupt", tt.in, got, err)
			}
		})
	}
	maxField := protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.VarintType), 1)
	for _, w := range wrapperCodecs() {
		if got, err := w.decode(maxField); err != nil {
			t.Errorf("%s: Decode of unknown field number 1<<29 - 1: got %v, %v, want the zero value, nil", w.name, got, err)
		}
		got, err := w.decode([]byte{0x10, 0x01})
		if err != nil {
			t.Errorf("%s: Decode of only an unknown field: got error %v, want nil", w.name, err)
		}
		if got == w.want {
			t.Errorf("%s: Decode of only an unknown field: got %v, want the zero value", w.name, got)
		}
	}
}

// TestBoolDecodeNonCanonical checks protobuf's bool rule: any non-zero
// varint is true.
func TestBoolDecodeNonCanonical(t *testing.T) {
	tests := []struct {
		in   []byte
		want bool
	}{
		{[]byte{0x08, 0x00}, false},
		{[]byte{0x08, 0x02}, true},
		{[]byte{0x08, 0x80, 0x01}, true},
	}
	for _, tt := range tests {
		if got, err := codec.Bool().Decode(tt.in); err != nil || got != tt.want {
			t.Errorf("Decode(% x): got %v, %v, want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

// TestInvalidUTF8 checks that Text and String refuse invalid UTF-8 in both
// directions, with ErrCorrupt when decoding.
func TestInvalidUTF8(t *testing.T) {
	const bad = "a\xffb"
	if b, err := codec.Text().Encode(bad); err == nil {
		t.Errorf("Text().Encode(%q): got % x, nil, want an error", bad, b)
	}
	if v, err := codec.Text().Decode([]byte(bad)); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("Text().Decode(%q): got %q, %v, want ErrCorrupt", bad, v, err)
	}
	if b, err := codec.String().Encode(bad); err == nil {
		t.Errorf("String().Encode(%q): got % x, nil, want an error", bad, b)
	}
	in := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), bad)
	if v, err := codec.String().Decode(in); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("String().Decode(% x): got %q, %v, want ErrCorrupt", in, v, err)
	}
}

// TestJSON checks that JSON writes no trailing newline and reads one, as
// StateFun's Go SDK writes it, and that malformed JSON is ErrCorrupt.
func TestJSON(t *testing.T) {
	c := codec.JSON[person]()
	b, err := c.Encode(person{Name: "Bob", N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"Bob","n":1}`; string(b) != want {
		t.Errorf("Encode: got %q, want %q", b, want)
	}
	got, err := c.Decode([]byte(`{"name":"Bob","n":1}` + "\n"))
	if err != nil {
		t.Fatalf("Decode with a trailing newline: got error %v, want nil", err)
	}
	if diff := cmp.Diff(person{Name: "Bob", N: 1}, got); diff != "" {
		t.Errorf("Decode with a trailing newline (-want +got):\n%s", diff)
	}
	for _, in := range []string{"", "{", `{"name":1}`, `{} {}`, "\xff"} {
		if v, err := c.Decode([]byte(in)); !errors.Is(err, codec.ErrCorrupt) {
			t.Errorf("Decode(%q): got %+v, %v, want ErrCorrupt", in, v, err)
		}
	}
}

// TestJSONEncodeError checks that a value encoding/json cannot marshal is
// an Encode error, not a panic.
func TestJSONEncodeError(t *testing.T) {
	if b, err := codec.JSON[func()]().Encode(func() {}); err == nil {
		t.Errorf("Encode(func): got %q, nil, want an error", b)
	}
	if b, err := codec.JSON[float64]().Encode(math.NaN()); err == nil {
		t.Errorf("Encode(NaN): got %q, nil, want an error", b)
	}
}

// TestProto checks the Proto codec on a well-known type: it writes what
// proto.Marshal writes, returns a new message from every Decode, writes a
// nil message as zero bytes and reports malformed bytes as ErrCorrupt.
func TestProto(t *testing.T) {
	c := codec.Proto[wrapperspb.StringValue]()
	msg := wrapperspb.String("Bob")
	b, err := c.Encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x0a, 0x03, 'B', 'o', 'b'}; !bytes.Equal(b, want) {
		t.Errorf("Encode: got % x, want % x", b, want)
	}
	d1, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(msg, d1, protocmp.Transform()); diff != "" {
		t.Errorf("Decode(Encode(m)) (-want +got):\n%s", diff)
	}
	d2, _ := c.Decode(b)
	if d1 == d2 {
		t.Errorf("Decode twice: got the same *StringValue, want a new message each time")
	}
	if b, err := c.Encode(nil); err != nil || len(b) != 0 {
		t.Errorf("Encode(nil): got % x, %v, want no bytes, nil", b, err)
	}
	if m, err := c.Decode(nil); err != nil || m == nil || m.GetValue() != "" {
		t.Errorf("Decode(nil): got %v, %v, want an empty message, nil", m, err)
	}
	for _, in := range [][]byte{{0x0a, 0x05, 'B'}, {0x0a, 0x01, 0xff}, {0xff}} {
		if m, err := c.Decode(in); !errors.Is(err, codec.ErrCorrupt) {
			t.Errorf("Decode(% x): got %v, %v, want ErrCorrupt", in, m, err)
		}
	}
}

// TestBytesIsIdentity checks the documented identity: Bytes neither copies
// nor changes its input.
func TestBytesIsIdentity(t *testing.T) {
	in := []byte{1, 2, 3}
	b, err := codec.Bytes().Encode(in)
	if err != nil || &b[0] != &in[0] {
		t.Errorf("Encode: got % x, %v, want the input slice itself, nil", b, err)
	}
	d, err := codec.Bytes().Decode(in)
	if err != nil || &d[0] != &in[0] {
		t.Errorf("Decode: got % x, %v, want the input slice itself, nil", d, err)
	}
}

// TestErrCorruptMessage checks that a decode error says what was corrupt.
func TestErrCorruptMessage(t *testing.T) {
	_, err := codec.Int32().Decode([]byte{0x08, 0x01})
	if err == nil || !strings.Contains(err.Error(), "wire type") {
		t.Errorf("Decode of a varint field 1: got error %v, want one that mentions the wire type", err)
	}
}

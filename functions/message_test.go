package functions_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
)

var errEncode = errors.New("test: encode failed")

// failingCodec cannot encode anything.
type failingCodec struct{}

func (failingCodec) Encode(string) ([]byte, error)   { return nil, errEncode }
func (failingCodec) Decode(b []byte) (string, error) { return string(b), nil }

var failingType = functions.NewType[string]("test/failing", failingCodec{})

func TestNewMessage(t *testing.T) {
	b := []byte{1, 2, 3}
	m := functions.NewMessage("test/raw", b)
	if m.TypeName() != "test/raw" || !bytes.Equal(m.Bytes(), b) || m.Err() != nil {
		t.Errorf("NewMessage: got %q, % x, %v, want %q, % x, nil", m.TypeName(), m.Bytes(), m.Err(), "test/raw", b)
	}
}

func TestTypeOf(t *testing.T) {
	m := functions.StringType.Of("Bob")
	if got, want := m.TypeName(), functions.TypeName("io.statefun.types/string"); got != want {
		t.Errorf("TypeName: got %q, want %q", got, want)
	}
	if got, want := m.Bytes(), []byte{0x0a, 0x03, 'B', 'o', 'b'}; !bytes.Equal(got, want) {
		t.Errorf("Bytes: got % x, want % x", got, want)
	}
	if m.Err() != nil {
		t.Errorf("Err: got %v, want nil", m.Err())
	}
	if !functions.StringType.Is(m) || functions.LongType.Is(m) {
		t.Errorf("Is: got StringType %v, LongType %v, want true, false", functions.StringType.Is(m), functions.LongType.Is(m))
	}
}

// TestTypeOfKeepsEncodeError checks that an encode error travels in the
// message instead of being lost.
func TestTypeOfKeepsEncodeError(t *testing.T) {
	m := failingType.Of("x")
	if !errors.Is(m.Err(), errEncode) {
		t.Errorf("Err: got %v, want it to wrap %v", m.Err(), errEncode)
	}
	if m.TypeName() != failingType.Name() {
		t.Errorf("TypeName: got %q, want %q", m.TypeName(), failingType.Name())
	}
}

func TestTypeAs(t *testing.T) {
	v, err := functions.LongType.As(functions.LongType.Of(42))
	if err != nil || v != 42 {
		t.Errorf("As(Of(42)): got %v, %v, want 42, nil", v, err)
	}

	var de *functions.DecodeError
	_, err = functions.LongType.As(functions.StringType.Of("Bob"))
	if !errors.As(err, &de) || de.TypeName != functions.StringType.Name() || de.State != "" {
		t.Errorf("As of another type: got %v, want a *DecodeError for %s with no state", err, functions.StringType.Name())
	}

	_, err = functions.LongType.As(functions.NewMessage(functions.LongType.Name(), []byte{0x09, 0x01}))
	if !errors.As(err, &de) || !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("As of corrupt bytes: got %v, want a *DecodeError wrapping codec.ErrCorrupt", err)
	}
}

func TestNewTypePanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"nil codec", func() { functions.NewType[string]("test/x", nil) }},
		{"invalid name", func() { functions.NewType("x", codec.Text()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("got no panic, want one")
				}
			}()
			tt.f()
		})
	}
}

// TestBuiltInTypes pins the StateFun names of the built-in types and their
// codecs' encoding of a sample value.
func TestBuiltInTypes(t *testing.T) {
	tests := []struct {
		name     string
		msg      functions.Message
		wantName functions.TypeName
		wantWire []byte
	}{
		{"bool", functions.BoolType.Of(true), "io.statefun.types/bool", []byte{0x08, 0x01}},
		{"int", functions.IntType.Of(5), "io.statefun.types/int", []byte{0x0d, 5, 0, 0, 0}},
		{"long", functions.LongType.Of(5), "io.statefun.types/long", []byte{0x09, 5, 0, 0, 0, 0, 0, 0, 0}},
		{"float", functions.FloatType.Of(1.5), "io.statefun.types/float", []byte{0x0d, 0, 0, 0xc0, 0x3f}},
		{"double", functions.DoubleType.Of(1.5), "io.statefun.types/double", []byte{0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f}},
		{"string", functions.StringType.Of("Bob"), "io.statefun.types/string", []byte{0x0a, 3, 'B', 'o', 'b'}},
	}
	for _, tt := range tests {
		if tt.msg.TypeName() != tt.wantName || !bytes.Equal(tt.msg.Bytes(), tt.wantWire) {
			t.Errorf("%s: got %s % x, want %s % x", tt.name, tt.msg.TypeName(), tt.msg.Bytes(), tt.wantName, tt.wantWire)
		}
	}
}

package codec_test

import (
	"bytes"
	"testing"

	"github.com/stateloop/stateloop/codec"
)

func TestParseTextIsTheReverseOfDisplayForBuiltinTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typeName, text string
		want           any
	}{
		{"io.statefun.types/long", " 42\n", int64(42)},
		{"io.statefun.types/int", "-7", int32(-7)},
		{"io.statefun.types/bool", "true", true},
		{"io.statefun.types/double", "1.5", 1.5},
		{"io.statefun.types/float", "2.25", float32(2.25)},
		{"io.statefun.types/string", " spaced ", " spaced "},
	}
	for _, tc := range tests {
		b, err := codec.ParseText(tc.typeName, []byte(tc.text))
		if err != nil {
			t.Errorf("%s %q: %v", tc.typeName, tc.text, err)
			continue
		}
		if got := codec.Display(tc.typeName, b); got != tc.want {
			t.Errorf("%s %q: displays as %v (%T), want %v (%T)", tc.typeName, tc.text, got, got, tc.want, tc.want)
		}
	}
	if b, err := codec.ParseText("shop/order", []byte(`{"a":1}`)); err != nil || !bytes.Equal(b, []byte(`{"a":1}`)) {
		t.Errorf("another type: %q, %v; want the bytes as they are", b, err)
	}
	for _, bad := range []struct{ typeName, text string }{
		{"io.statefun.types/long", "forty"}, {"io.statefun.types/int", "3000000000"}, {"io.statefun.types/bool", "maybe"},
		{"io.statefun.types/string", "\xff"},
	} {
		if _, err := codec.ParseText(bad.typeName, []byte(bad.text)); err == nil {
			t.Errorf("%s %q: no error", bad.typeName, bad.text)
		}
	}
}

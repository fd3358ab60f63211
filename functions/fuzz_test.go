package functions_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/codec/codectest"
	"github.com/stateloop/stateloop/functions"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzKafkaRecordDecode checks the KafkaProducerRecord decoder against the
// codec contract and against the protobuf runtime: what the decoder
// accepts, protobuf reads the same way; what protobuf rejects, the decoder
// rejects. The decoder may be stricter in one way only: it rejects fields
// 1-3 with another wire type, which protobuf skips as unknown.
func FuzzKafkaRecordDecode(f *testing.F) {
	for _, r := range []functions.KafkaRecord{{}, {Topic: "t"}, {Topic: "greetings", Key: "bob", Value: []byte("Hello")}} {
		b, _ := functions.KafkaRecordType.Codec().Encode(r)
		f.Add(b)
		f.Add(append([]byte{0x20, 0x01}, b...))
	}
	f.Add([]byte{0x08, 0x01})
	f.Add([]byte{0x0a, 0x01, 0xff})
	c := functions.KafkaRecordType.Codec()
	f.Fuzz(func(t *testing.T, b []byte) {
		codectest.CheckDecode(t, c, b, nil)
		got, err := c.Decode(b)
		pm := dynamicpb.NewMessage(kafkaProducerRecord(true))
		perr := proto.Unmarshal(b, pm)
		switch {
		case err != nil && !errors.Is(err, codec.ErrCorrupt):
			t.Fatalf("Decode(% x): got error %v, want ErrCorrupt", b, err)
		case err == nil && perr != nil:
			t.Fatalf("Decode(% x): got %+v, nil; protobuf rejects it (%v), want an error", b, got, perr)
		case err == nil:
			if diff := cmp.Diff(recordFromProto(pm), got); diff != "" {
				t.Fatalf("Decode(% x) (-protobuf +got):\n%s", b, diff)
			}
		case perr == nil && !hasRecordFieldOfOtherType(b):
			t.Fatalf("Decode(% x): got error %v; protobuf reads it and fields 1-3 are all length-delimited, want no error", b, err)
		}
	})
}

func hasRecordFieldOfOtherType(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		if num >= 1 && num <= 3 && typ != protowire.BytesType {
			return true
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return false
		}
		b = b[n:]
	}
	return false
}

// FuzzParseTypeName checks ParseTypeName and ValidateFunctionType against
// their definitions.
func FuzzParseTypeName(f *testing.F) {
	for _, s := range []string{"example/greet", "type.googleapis.com/a.B", "a/b/c", "/", "a/", "/b", "a b/c", "ns/grüße", "x\x00/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tn, err := functions.ParseTypeName(s)
		i := strings.LastIndexByte(s, '/')
		wantOK := i > 0 && i < len(s)-1 && !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
		if (err == nil) != wantOK {
			t.Fatalf("ParseTypeName(%q): got %v, want ok=%v", s, err, wantOK)
		}
		if err != nil {
			if !errors.Is(err, functions.ErrInvalidTypeName) || tn != "" {
				t.Fatalf("ParseTypeName(%q): got %q, %v, want \"\", ErrInvalidTypeName", s, tn, err)
			}
			return
		}
		if tn.Namespace()+"/"+tn.Name() != s || tn.Namespace() == "" || tn.Name() == "" || strings.Contains(tn.Name(), "/") {
			t.Fatalf("ParseTypeName(%q): Namespace %q, Name %q do not split it at the last '/'", s, tn.Namespace(), tn.Name())
		}
		ferr := functions.ValidateFunctionType(tn)
		topic := !strings.ContainsFunc(tn.Namespace()+tn.Name(), func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
		})
		if (ferr == nil) != topic {
			t.Fatalf("ValidateFunctionType(%q): got %v, want ok=%v", s, ferr, topic)
		}
		if ferr == nil {
			if err := (functions.Address{Type: tn, ID: "x"}).Validate(); err != nil {
				t.Fatalf("Address{%q, x}.Validate(): got %v, want nil", s, err)
			}
		}
	})
}

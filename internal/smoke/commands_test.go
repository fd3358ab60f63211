package smoke

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/stateloop/stateloop/codec"
)

// commandsProto is upstream's commands.proto (statefun-smoke-e2e-common)
// as a descriptor, written down from its field list, so that the tests
// can check the hand-written encoding against protobuf itself.
const commandsProto = `
name: "commands.proto"
package: "org.apache.flink.statefun.e2e.smoke"
syntax: "proto3"
message_type {
  name: "SourceCommand"
  field { name: "target" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "commands" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Commands" }
}
message_type {
  name: "Commands"
  field { name: "command" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command" }
}
message_type {
  name: "Command"
  nested_type { name: "IncrementState" }
  nested_type {
    name: "Send"
    field { name: "target" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "commands" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Commands" }
  }
  nested_type {
    name: "SendAfter"
    field { name: "target" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "commands" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Commands" }
    field { name: "cancellation_token" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
  nested_type {
    name: "CancelSendAfter"
    field { name: "target" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "cancellation_token" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
  nested_type { name: "SendEgress" }
  nested_type {
    name: "AsyncOperation"
    field { name: "failure" number: 1 label: LABEL_OPTIONAL type: TYPE_BOOL }
    field { name: "resolved_commands" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Commands" }
  }
  nested_type {
    name: "Verify"
    field { name: "expected" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 }
  }
  field { name: "increment" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command.IncrementState" oneof_index: 0 }
  field { name: "send" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command.Send" oneof_index: 0 }
  field { name: "send_after" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command.SendAfter" oneof_index: 0 }
  field { name: "send_egress" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command.SendEgress" oneof_index: 0 }
  field { name: "async_operation" number: 5 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command.AsyncOperation" oneof_index: 0 }
  field { name: "verify" number: 6 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command.Verify" oneof_index: 0 }
  field { name: "cancel_send_after" number: 7 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".org.apache.flink.statefun.e2e.smoke.Command.CancelSendAfter" oneof_index: 0 }
  oneof_decl { name: "command" }
}
message_type {
  name: "VerificationResult"
  field { name: "id" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "expected" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field { name: "actual" number: 3 label: LABEL_OPTIONAL type: TYPE_INT64 }
}
`

// descriptor returns the message descriptor of commands.proto named name.
func descriptor(t testing.TB, name string) protoreflect.MessageDescriptor {
	t.Helper()
	var fdp descriptorpb.FileDescriptorProto
	if err := prototext.Unmarshal([]byte(commandsProto), &fdp); err != nil {
		t.Fatal(err)
	}
	fd, err := protodesc.NewFile(&fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().ByName(protoreflect.Name(name))
	if md == nil {
		t.Fatalf("no message %s", name)
	}
	return md
}

// sameAsProtobuf checks that protobuf parses b as message md and writes
// it back byte for byte: the hand-written encoding uses upstream's field
// numbers and types and protobuf's field order.
func sameAsProtobuf(t testing.TB, md protoreflect.MessageDescriptor, b []byte) {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("protobuf cannot parse %x as %s: %v", b, md.FullName(), err)
	}
	if len(m.GetUnknown()) > 0 {
		t.Fatalf("protobuf sees unknown fields in %x: %x", b, m.GetUnknown())
	}
	back, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, b) {
		t.Fatalf("protobuf writes %s back as\n%x, we wrote\n%x", md.FullName(), back, b)
	}
}

var equateEmpty = cmpopts.EquateEmpty()

// everyCommand has each command with non-zero and extreme fields.
var everyCommand = Commands{
	Increment{},
	Send{Target: 7, Commands: Commands{Increment{}, SendEgress{}}},
	Send{Target: -1},
	SendAfter{Target: math.MaxInt32, Commands: Commands{Verify{Expected: 3}}, CancellationToken: "tök€n"},
	SendAfter{},
	SendEgress{},
	AsyncOperation{Failure: true, ResolvedCommands: Commands{Increment{}}},
	AsyncOperation{},
	Verify{Expected: math.MinInt64},
	Verify{Expected: math.MaxInt64},
	Verify{},
	CancelSendAfter{Target: math.MinInt32, CancellationToken: "t"},
	nil,
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	sources := []SourceCommand{
		{},
		{Target: 3, Commands: Commands{Increment{}}},
		{Target: 127, Commands: everyCommand},
		{Target: -5, Commands: Commands{Send{Target: 1, Commands: Commands{Send{Target: 2, Commands: everyCommand}}}}},
	}
	gen, err := NewGenerator(GeneratorConfig{IDs: 1000, Depth: 10, MaxCommandsPerDepth: 4, Weights: DefaultWeights(),
		SendAfter: true, SendAfterWithCancellation: true, AsyncOperations: true}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		sources = append(sources, gen.Next())
	}
	sourceMD, commandsMD := descriptor(t, "SourceCommand"), descriptor(t, "Commands")
	for _, sc := range sources {
		b := sc.Marshal()
		got, err := UnmarshalSourceCommand(b)
		if err != nil {
			t.Fatalf("%+v: %v", sc, err)
		}
		if d := cmp.Diff(sc, got, equateEmpty); d != "" {
			t.Fatalf("source command round trip (-want +got):\n%s", d)
		}
		sameAsProtobuf(t, sourceMD, b)

		cb := sc.Commands.Marshal()
		cs, err := UnmarshalCommands(cb)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(sc.Commands, cs, equateEmpty); d != "" {
			t.Fatalf("commands round trip (-want +got):\n%s", d)
		}
		sameAsProtobuf(t, commandsMD, cb)
	}

	resultMD := descriptor(t, "VerificationResult")
	for _, r := range []VerificationResult{{}, {ID: 1, Expected: 2, Actual: 3}, {ID: -1, Expected: math.MinInt64, Actual: math.MaxInt64}} {
		b := r.Marshal()
		got, err := UnmarshalVerificationResult(b)
		if err != nil || got != r {
			t.Fatalf("verification result %+v: got %+v, %v", r, got, err)
		}
		sameAsProtobuf(t, resultMD, b)
	}
}

// TestDecodesWhatProtobufWrites builds messages with protobuf (by field
// name, from the descriptor) and decodes them.
func TestDecodesWhatProtobufWrites(t *testing.T) {
	t.Parallel()
	md := descriptor(t, "SourceCommand")
	cmdMD := descriptor(t, "Command")
	commandsMD := descriptor(t, "Commands")
	field := func(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
		f := md.Fields().ByName(protoreflect.Name(name))
		if f == nil {
			t.Fatalf("%s has no field %s", md.FullName(), name)
		}
		return f
	}
	// SourceCommand{target: 9, commands: [send{target: 4, commands: [increment]}, verify{expected: 12}, cancel_send_after{target: 2, token: "x"}]}
	inner := dynamicpb.NewMessage(commandsMD)
	inc := dynamicpb.NewMessage(cmdMD)
	incField := field(cmdMD, "increment")
	inc.Set(incField, protoreflect.ValueOfMessage(dynamicpb.NewMessage(incField.Message())))
	inner.Mutable(field(commandsMD, "command")).List().Append(protoreflect.ValueOfMessage(inc))

	send := dynamicpb.NewMessage(cmdMD)
	sendField := field(cmdMD, "send")
	sendMsg := dynamicpb.NewMessage(sendField.Message())
	sendMsg.Set(field(sendField.Message(), "target"), protoreflect.ValueOfInt32(4))
	sendMsg.Set(field(sendField.Message(), "commands"), protoreflect.ValueOfMessage(inner))
	send.Set(sendField, protoreflect.ValueOfMessage(sendMsg))

	verify := dynamicpb.NewMessage(cmdMD)
	verifyField := field(cmdMD, "verify")
	verifyMsg := dynamicpb.NewMessage(verifyField.Message())
	verifyMsg.Set(field(verifyField.Message(), "expected"), protoreflect.ValueOfInt64(12))
	verify.Set(verifyField, protoreflect.ValueOfMessage(verifyMsg))

	cancel := dynamicpb.NewMessage(cmdMD)
	cancelField := field(cmdMD, "cancel_send_after")
	cancelMsg := dynamicpb.NewMessage(cancelField.Message())
	cancelMsg.Set(field(cancelField.Message(), "target"), protoreflect.ValueOfInt32(2))
	cancelMsg.Set(field(cancelField.Message(), "cancellation_token"), protoreflect.ValueOfString("x"))
	cancel.Set(cancelField, protoreflect.ValueOfMessage(cancelMsg))

	outer := dynamicpb.NewMessage(commandsMD)
	list := outer.Mutable(field(commandsMD, "command")).List()
	for _, c := range []*dynamicpb.Message{send, verify, cancel} {
		list.Append(protoreflect.ValueOfMessage(c))
	}
	src := dynamicpb.NewMessage(md)
	src.Set(field(md, "target"), protoreflect.ValueOfInt32(9))
	src.Set(field(md, "commands"), protoreflect.ValueOfMessage(outer))
	b, err := proto.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSourceCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	want := SourceCommand{Target: 9, Commands: Commands{
		Send{Target: 4, Commands: Commands{Increment{}}},
		Verify{Expected: 12},
		CancelSendAfter{Target: 2, CancellationToken: "x"},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("decoded (-want +got):\n%s", d)
	}
}

func TestDecodeRejectsMalformedBytes(t *testing.T) {
	t.Parallel()
	nested := Commands{Increment{}}
	for range maxNesting + 1 {
		nested = Commands{Send{Target: 1, Commands: nested}}
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"truncated tag", []byte{0x80}},
		{"truncated length", []byte{0x12, 0x05, 0x0a}},
		{"target as bytes", []byte{0x0a, 0x00}},
		{"commands as varint", []byte{0x10, 0x01}},
		{"command case as varint", []byte{0x12, 0x04, 0x0a, 0x02, 0x08, 0x01}},
		{"field number 0", []byte{0x02, 0x00}},
		{"invalid utf-8 token", SourceCommand{Commands: Commands{CancelSendAfter{CancellationToken: "\xff"}}}.Marshal()},
		{"nested too deep", SourceCommand{Commands: nested}.Marshal()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := UnmarshalSourceCommand(tc.b)
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Errorf("got %v, want an error wrapping codec.ErrCorrupt", err)
			}
		})
	}
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	t.Parallel()
	// field 15 (varint), field 16 (fixed64) and field 17 (fixed32) around
	// a verify command whose message also has an unknown field
	b := []byte{0x78, 0x05, 0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}
	b = append(b, 0x08, 0x02) // target 2
	cmd := append([]byte{0x32, 0x04, 0x08, 0x07, 0x10, 0x01}, 0x8d, 0x01, 1, 2, 3, 4)
	b = append(b, 0x12, byte(len(cmd)+2), 0x0a, byte(len(cmd)))
	b = append(b, cmd...)
	got, err := UnmarshalSourceCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	want := SourceCommand{Target: 2, Commands: Commands{Verify{Expected: 7}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("decoded (-want +got):\n%s", d)
	}
}

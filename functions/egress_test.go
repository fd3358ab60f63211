package functions_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/codec/codectest"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// kafkaProducerRecord returns StateFun's kafka-egress.proto message
//
//	message KafkaProducerRecord { string key = 1; bytes value_bytes = 2; string topic = 3; }
//
// built at run time, to check the codec against the protobuf runtime. With
// stringsAsBytes, key and topic are declared bytes: the same wire format
// without protobuf's UTF-8 check, which the codec does not make (Kafka keys
// are bytes).
func kafkaProducerRecord(stringsAsBytes bool) protoreflect.MessageDescriptor {
	if stringsAsBytes {
		return kafkaRecordDescs()[1]
	}
	return kafkaRecordDescs()[0]
}

var kafkaRecordDescs = sync.OnceValue(func() [2]protoreflect.MessageDescriptor {
	var out [2]protoreflect.MessageDescriptor
	for i, str := range []descriptorpb.FieldDescriptorProto_Type{descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_BYTES} {
		field := func(name string, num int32, t descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
			return &descriptorpb.FieldDescriptorProto{
				Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(num),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: t.Enum(),
			}
		}
		fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
			Name:    proto.String("io/kafka-egress.proto"),
			Package: proto.String("io.statefun.sdk.egress"),
			Syntax:  proto.String("proto3"),
			MessageType: []*descriptorpb.DescriptorProto{{
				Name: proto.String("KafkaProducerRecord"),
				Field: []*descriptorpb.FieldDescriptorProto{
					field("key", 1, str),
					field("value_bytes", 2, descriptorpb.FieldDescriptorProto_TYPE_BYTES),
					field("topic", 3, str),
				},
			}},
		}, nil)
		if err != nil {
			panic(err)
		}
		out[i] = fd.Messages().Get(0)
	}
	return out
})

func recordFromProto(m protoreflect.Message) functions.KafkaRecord {
	fields := m.Descriptor().Fields()
	str := func(n protoreflect.FieldNumber) string {
		v := m.Get(fields.ByNumber(n))
		if b, ok := v.Interface().([]byte); ok {
			return string(b)
		}
		return v.String()
	}
	r := functions.KafkaRecord{Key: str(1), Topic: str(3)}
	if b := m.Get(fields.ByNumber(2)).Bytes(); len(b) > 0 {
		r.Value = b
	}
	return r
}

func TestKafkaRecordTypeName(t *testing.T) {
	if got, want := functions.KafkaRecordType.Name(), functions.TypeName("type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"); got != want {
		t.Errorf("Name: got %q, want %q", got, want)
	}
}

// TestKafkaRecordEncoding pins the bytes of KafkaProducerRecord, built by
// hand from the protobuf wire format: fields in number order, empty ones
// left out as proto3 does.
func TestKafkaRecordEncoding(t *testing.T) {
	tests := []struct {
		name string
		rec  functions.KafkaRecord
		want []byte
	}{
		{
			"all fields",
			functions.KafkaRecord{Topic: "greetings", Key: "bob", Value: []byte("Hi")},
			[]byte{
				0x0a, 0x03, 'b', 'o', 'b', // 1: key
				0x12, 0x02, 'H', 'i', // 2: value_bytes
				0x1a, 0x09, 'g', 'r', 'e', 'e', 't', 'i', 'n', 'g', 's', // 3: topic
			},
		},
		{"no key", functions.KafkaRecord{Topic: "t", Value: []byte{0}}, []byte{0x12, 0x01, 0x00, 0x1a, 0x01, 't'}},
		{"no value", functions.KafkaRecord{Topic: "t", Key: "k"}, []byte{0x0a, 0x01, 'k', 0x1a, 0x01, 't'}},
		{"zero", functions.KafkaRecord{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := functions.KafkaMessage(tt.rec.Topic, tt.rec.Key, tt.rec.Value)
			if m.Err() != nil || m.TypeName() != functions.KafkaRecordType.Name() {
				t.Fatalf("KafkaMessage: got type %s, error %v, want %s, nil", m.TypeName(), m.Err(), functions.KafkaRecordType.Name())
			}
			if !bytes.Equal(m.Bytes(), tt.want) {
				t.Errorf("KafkaMessage(%+v): got % x, want % x", tt.rec, m.Bytes(), tt.want)
			}
			// The same bytes as the protobuf runtime.
			pm := dynamicpb.NewMessage(kafkaProducerRecord(false))
			fields := pm.Descriptor().Fields()
			pm.Set(fields.ByNumber(1), protoreflect.ValueOfString(tt.rec.Key))
			pm.Set(fields.ByNumber(2), protoreflect.ValueOfBytes(tt.rec.Value))
			pm.Set(fields.ByNumber(3), protoreflect.ValueOfString(tt.rec.Topic))
			if pb, err := (proto.MarshalOptions{Deterministic: true}).Marshal(pm); err != nil || !bytes.Equal(pb, tt.want) {
				t.Errorf("proto.Marshal: got % x, %v, want % x", pb, err, tt.want)
			}
			got, err := functions.KafkaRecordType.As(m)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.rec, got); diff != "" {
				t.Errorf("As(KafkaMessage(r)) (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKafkaRecordDecode checks that the decoder reads what other protobuf
// writers may write: fields in any order, unknown fields, and that it
// copies the value out of its input.
func TestKafkaRecordDecode(t *testing.T) {
	in := []byte{
		0x1a, 0x01, 't', // topic first
		0x20, 0x07, // unknown varint field 4
		0x12, 0x02, 'v', '1',
		0x0a, 0x01, 'k',
		0x2a, 0x00, // unknown bytes field 5
		0x12, 0x02, 'v', '2', // last value wins
	}
	got, err := functions.KafkaRecordType.Codec().Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	want := functions.KafkaRecord{Topic: "t", Key: "k", Value: []byte("v2")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	in[len(in)-1] = 'X'
	if string(got.Value) != "v2" {
		t.Errorf("Value after changing the input: got %q, want %q (a copy)", got.Value, "v2")
	}
}

// TestKafkaRecordDecodeCorrupt checks that malformed records are
// codec.ErrCorrupt, like every other decoder.
func TestKafkaRecordDecodeCorrupt(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"truncated tag", []byte{0x80}},
		{"length past end", []byte{0x0a, 0x05, 'k'}},
		{"key as varint", []byte{0x08, 0x01}},
		{"value as fixed32", []byte{0x15, 0, 0, 0, 0}},
		{"topic as fixed64", []byte{0x19, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"unknown field truncated", []byte{0x1a, 0x01, 't', 0x22, 0x09}},
		{"field number 0", []byte{0x02, 0x00}},
		{"field number above max", protowire.AppendVarint(protowire.AppendTag(nil, 1<<29, protowire.VarintType), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := functions.KafkaRecordType.Codec().Decode(tt.in)
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Errorf("Decode(% x): got %+v, %v, want codec.ErrCorrupt", tt.in, got, err)
			}
		})
	}
}

func TestKafkaRecordCodecContract(t *testing.T) {
	codectest.Run(t, functions.KafkaRecordType.Codec(), []functions.KafkaRecord{
		{},
		{Topic: "t"},
		{Topic: "greetings", Key: "bob", Value: []byte("Hello bob!")},
		{Topic: "t", Value: bytes.Repeat([]byte{0xff}, 300)},
	}, nil)
}

type receipt struct {
	Order string `json:"order"`
	Items int    `json:"items"`
}

// TestKafkaEgress: a typed egress encodes the value with its codec into a
// record for its topic, and sends it only if the Spec declares it.
func TestKafkaEgress(t *testing.T) {
	t.Parallel()
	receipts := functions.NewKafkaEgress("shop/receipts", "receipts", codec.JSON[receipt]())
	if receipts.ID() != "shop/receipts" || receipts.Topic() != "receipts" {
		t.Errorf("got ID %s, topic %s", receipts.ID(), receipts.Topic())
	}
	m := receipts.Message("alice", receipt{Order: "o-1", Items: 2})
	rec, err := functions.KafkaRecordType.As(m)
	if err != nil || m.Err() != nil {
		t.Fatalf("decode the record: %v (message error %v)", err, m.Err())
	}
	if want := (functions.KafkaRecord{Topic: "receipts", Key: "alice", Value: []byte(`{"order":"o-1","items":2}`)}); !cmp.Equal(want, rec) {
		t.Errorf("got record %+v, want %+v", rec, want)
	}
	if v, err := receipts.Codec().Decode(rec.Value); err != nil || v != (receipt{Order: "o-1", Items: 2}) {
		t.Errorf("Codec().Decode(value) = %+v, %v", v, err)
	}

	for _, tc := range []struct {
		name     string
		declared []functions.TypeName
		send     func(ctx functions.Context)
		wantErr  error
	}{
		{"declared", []functions.TypeName{receipts.ID()}, func(ctx functions.Context) { receipts.Send(ctx, "alice", receipt{Order: "o-2"}) }, nil},
		{"undeclared", nil, func(ctx functions.Context) { receipts.Send(ctx, "alice", receipt{Order: "o-2"}) }, functions.ErrUndeclaredEgress},
		{"value does not encode", []functions.TypeName{"shop/bad"}, func(ctx functions.Context) {
			functions.NewKafkaEgress("shop/bad", "bad", failingCodec{}).Send(ctx, "k", "v")
		}, errEncode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := functions.NewRegistry()
			reg.MustRegister(functions.Spec{Type: "shop/checkout", Egresses: tc.declared, Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
				tc.send(ctx)
				return nil
			})})
			eff, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: functions.Address{Type: "shop/checkout", ID: "alice"}, Message: functions.StringType.Of("go")})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !functions.IsPermanent(err) {
					t.Errorf("got %v, want a permanent error wrapping %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(eff.Egress) != 1 || eff.Egress[0].Egress != receipts.ID() {
				t.Fatalf("got egress %+v, want one record to %s", eff.Egress, receipts.ID())
			}
			if rec, _ := functions.KafkaRecordType.As(eff.Egress[0].Message); string(rec.Value) != `{"order":"o-2","items":0}` {
				t.Errorf("got value %s", rec.Value)
			}
		})
	}
}

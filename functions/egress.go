package functions

import (
	"errors"
	"fmt"

	"github.com/stateloop/stateloop/codec"
	"google.golang.org/protobuf/encoding/protowire"
)

// KafkaRecord is a record for a Kafka egress. It is StateFun's
// io.statefun.sdk.egress.KafkaProducerRecord, so remote SDK functions
// produce the same bytes.
type KafkaRecord struct {
	// Topic must be one of the egress's topics.
	Topic string
	// Key is the record key; "" writes a record with a null key.
	Key string
	// Value is written as it is.
	Value []byte
}

// KafkaRecordType is the type of messages sent to a Kafka egress.
var KafkaRecordType = NewType[KafkaRecord]("type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord", kafkaRecordCodec{})

// KafkaMessage is shorthand for KafkaRecordType.Of(KafkaRecord{...}), the
// message a function passes to [Context.SendEgress] for a Kafka egress.
func KafkaMessage(topic, key string, value []byte) Message {
	return KafkaRecordType.Of(KafkaRecord{Topic: topic, Key: key, Value: value})
}

// KafkaRecordName2 is the full protobuf name of StateFun 2.x's Kafka
// egress record, org.apache.flink.statefun.flink.io.KafkaProducerRecord,
// which the StateFun 2.x SDKs pack into an Any (kafka_egress_record with
// pack_and_send_egress): as a message it has the type name
// "type.googleapis.com/" + KafkaRecordName2. Its fields are those of
// StateFun 3.x's io.statefun.sdk.egress.KafkaProducerRecord
// ([KafkaRecordType]).
const KafkaRecordName2 = "org.apache.flink.statefun.flink.io.KafkaProducerRecord"

// AsKafkaRecord decodes a message to a Kafka egress: StateFun 3.x's record
// (type name [KafkaRecordType], exactly, as StateFun 3.x requires) or
// StateFun 2.x's (any type name whose name part is KafkaRecordName2, as
// StateFun 2.x's Any.is compares). ok is false for a message of another
// type; err is set for bytes that do not decode.
func AsKafkaRecord(m Message) (rec KafkaRecord, ok bool, err error) {
	switch {
	case m.TypeName() == KafkaRecordType.Name():
	case m.TypeName().Name() == KafkaRecordName2:
		m = NewMessage(KafkaRecordType.Name(), m.Bytes())
	default:
		return rec, false, nil
	}
	rec, err = KafkaRecordType.As(m)
	return rec, true, err
}

// KafkaEgress declares a Kafka egress whose record values are values of
// type T, encoded by a codec: the typed way to write egress records,
// declared once at package level as [Type] and [State] are.
//
//	var Receipts = functions.NewKafkaEgress("shop/receipts", "receipts", codec.JSON[Receipt]())
//
//	func checkout(ctx functions.Context, o Order) error {
//		Receipts.Send(ctx, o.UserID, Receipt{...})
//		return nil
//	}
//
// List its ID in the Egresses of the function's [Spec], and in the
// application's topology as an egress with its topic. A KafkaEgress is a
// value; it is safe for concurrent use.
type KafkaEgress[T any] struct {
	id    TypeName
	topic string
	codec codec.Codec[T]
}

// NewKafkaEgress declares the Kafka egress id whose records go to topic,
// with values encoded by c. An empty topic writes records that name no
// topic: they go to the first topic the application's egress lists. It
// panics if id is not a valid [TypeName] or c is nil, because it is meant
// for package-level declarations.
func NewKafkaEgress[T any](id, topic string, c codec.Codec[T]) KafkaEgress[T] {
	if c == nil {
		panic("functions: NewKafkaEgress " + id + ": nil codec")
	}
	return KafkaEgress[T]{id: MustTypeName(id), topic: topic, codec: c}
}

// ID returns the egress's name, for [Spec].Egresses and the topology.
func (e KafkaEgress[T]) ID() TypeName { return e.id }

// Topic returns the topic the egress's records name.
func (e KafkaEgress[T]) Topic() string { return e.topic }

// Codec returns the codec of the record values, for reading them back (in
// tests, say).
func (e KafkaEgress[T]) Codec() codec.Codec[T] { return e.codec }

// Message returns the [KafkaRecordType] message of a record to e's topic
// with key ("" for none) and v encoded as its value. An encode error is
// kept in the message (see [Message.Err]) and fails the invocation that
// sends it.
func (e KafkaEgress[T]) Message(key string, v T) Message {
	b, err := e.codec.Encode(v)
	if err != nil {
		return Message{typeName: KafkaRecordType.name, err: fmt.Errorf("functions: encode the value of a record for egress %s: %w", e.id, err)}
	}
	return KafkaMessage(e.topic, key, b)
}

// Send sends a record with key and the value v to the egress, as
// ctx.SendEgress(e.ID(), e.Message(key, v)) does: the function's Spec
// must declare the egress, and a value that does not encode fails the
// invocation.
func (e KafkaEgress[T]) Send(ctx Context, key string, v T) {
	ctx.SendEgress(e.id, e.Message(key, v))
}

type kafkaRecordCodec struct{}

func (kafkaRecordCodec) Encode(r KafkaRecord) ([]byte, error) {
	var b []byte
	if r.Key != "" {
		b = protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), r.Key)
	}
	if len(r.Value) > 0 {
		b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), r.Value)
	}
	if r.Topic != "" {
		b = protowire.AppendString(protowire.AppendTag(b, 3, protowire.BytesType), r.Topic)
	}
	return b, nil
}

func (kafkaRecordCodec) Decode(b []byte) (KafkaRecord, error) {
	var r KafkaRecord
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, corruptRecord(protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber { // ConsumeTag checks only the lower bound
			return r, corruptRecord(errors.New("field number out of range"))
		}
		b = b[n:]
		if num >= 1 && num <= 3 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return r, corruptRecord(protowire.ParseError(n))
			}
			switch num {
			case 1:
				r.Key = string(v)
			case 2:
				r.Value = append([]byte(nil), v...)
			case 3:
				r.Topic = string(v)
			}
			b = b[n:]
			continue
		}
		if num >= 1 && num <= 3 {
			return r, corruptRecord(errors.New("wrong wire type"))
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return r, corruptRecord(protowire.ParseError(n))
		}
		b = b[n:]
	}
	return r, nil
}

// corruptRecord wraps codec.ErrCorrupt, as the codec contract asks of every
// Decode error caused by malformed bytes.
func corruptRecord(err error) error {
	return fmt.Errorf("%w: kafka producer record: %w", codec.ErrCorrupt, err)
}

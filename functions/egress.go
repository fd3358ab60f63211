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

package remote

import (
	"github.com/stateloop/stateloop/functions"
)

// KafkaRecordName2 is the full protobuf name of StateFun 2.x's Kafka
// egress record, org.apache.flink.statefun.flink.io.KafkaProducerRecord,
// which the StateFun 2.x SDKs pack into an Any (kafka_egress_record with
// pack_and_send_egress): as a message it has the type name
// "type.googleapis.com/" + KafkaRecordName2. Its fields are those of
// StateFun 3.x's io.statefun.sdk.egress.KafkaProducerRecord
// ([functions.KafkaRecordType]).
const KafkaRecordName2 = "org.apache.flink.statefun.flink.io.KafkaProducerRecord"

// KafkaRecord decodes a message to a Kafka egress: StateFun 3.x's record
// (type name [functions.KafkaRecordType], exactly, as StateFun 3.x
// requires) or StateFun 2.x's (any type name whose name part is
// KafkaRecordName2, as StateFun 2.x's Any.is compares). ok is false for a
// message of another type; err is set for bytes that do not decode.
func KafkaRecord(m functions.Message) (rec functions.KafkaRecord, ok bool, err error) {
	switch {
	case m.TypeName() == functions.KafkaRecordType.Name():
	case m.TypeName().Name() == KafkaRecordName2:
		m = functions.NewMessage(functions.KafkaRecordType.Name(), m.Bytes())
	default:
		return rec, false, nil
	}
	rec, err = functions.KafkaRecordType.As(m)
	return rec, true, err
}

package remote

import (
	"github.com/stateloop/stateloop/functions"
)

// KafkaRecordName2 is [functions.KafkaRecordName2], StateFun 2.x's Kafka
// egress record.
const KafkaRecordName2 = functions.KafkaRecordName2

// KafkaRecord is [functions.AsKafkaRecord]: it decodes StateFun 3.x's
// Kafka egress record or 2.x's.
func KafkaRecord(m functions.Message) (rec functions.KafkaRecord, ok bool, err error) {
	return functions.AsKafkaRecord(m)
}

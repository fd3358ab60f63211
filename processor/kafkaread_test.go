package processor

import (
	"context"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
)

// The raw read_committed reader lives in package kafkaread (see its doc for
// why sarama's partition consumer cannot be used to read a table up to its
// end); the tests read topics with it through these names.

type committedRecord = kafkaread.Record

func partitionEnds(client sarama.Client, topic string, partition int32) (start, hwm, lso int64, err error) {
	return kafkaread.Ends(client, topic, partition)
}

func readCommitted(ctx context.Context, client sarama.Client, topic string, partition int32, from, end int64, fn func(committedRecord) error) (int64, error) {
	return kafkaread.ReadCommitted(ctx, client, topic, partition, from, end, fn)
}

func consumeBatches(block *sarama.FetchResponseBlock, from, end int64, fn func(committedRecord) error) (next int64, complete bool, err error) {
	return kafkaread.ConsumeBatches(block, from, end, fn)
}

func isAbortMarker(b *sarama.RecordBatch) bool { return kafkaread.IsAbortMarker(b) }

package processor

import (
	"context"
	"errors"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
)

// The seams between the transaction cycle and Kafka. The cycle consumes
// records, produces outputs with a transactional producer and asks the
// cluster about partitions and topics; kafka_sarama.go implements these
// with sarama, fake_test.go in memory for unit tests.

// record is a consumed record.
type record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: the record has no key
	Value     []byte // nil: a tombstone

	// trace is the trace context of the record's message (its headers'
	// traceparent and tracestate, read only with tracing on), which its
	// dead letters carry
	trace wire.Trace

	// poison, when set, names the record in the session's poison map
	// instead of its topic, partition and offset: a message delivered in
	// the transaction of its origin (never a record of the loop topic), or
	// one delivered from an inbox
	poison *RecordRef
}

// ref names the record in the session's poison map.
func (r *record) ref() RecordRef {
	if r.poison != nil {
		return *r.poison
	}
	return RecordRef{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
}

// header is a record header.
type header struct{ Key, Value []byte }

// output is a record to write in the open transaction.
type output struct {
	Topic     string
	Partition int32
	Key       []byte // nil: no key
	Value     []byte // nil: a tombstone
	Headers   []header

	// src is the consumed record the output was made for: if the output
	// can never be written, src goes to the dead-letter topic when the
	// transaction is processed again. nil for outputs of no record
	// (delayed messages that fired, the expiry sweep, positions).
	src *record
	// store names the local store entry whose changelog offset the
	// output advances (a table, the timers, the idempotency keys); "" for
	// none. Its partition is Partition.
	store functions.TypeName
	// routed marks a loop record written for a partition whose direct
	// deliveries must wait until it is processed (see gate).
	routed bool
}

// acked is an output the broker acknowledged, with its offset.
type acked struct {
	out    *output
	offset int64
}

// failedOutput is an output the broker refused, with the reason.
type failedOutput struct {
	out *output
	err error
}

// groupMeta is what a transaction's offset commit carries for KIP-447
// fencing: the consumer group session's identity.
type groupMeta struct {
	Group      string
	MemberID   string
	Generation int32
	InstanceID string // "" without static membership
}

// producer is one transactional producer.
type producer interface {
	begin() error
	// send hands an output to the producer; its fate is known at commit.
	send(o *output)
	// commit adds the consumed offsets (topic, partition, next offset)
	// and commits; it returns the acknowledged outputs.
	commit(offsets map[string]map[int32]int64, g groupMeta) ([]acked, error)
	// abort aborts the open transaction, if any.
	abort() error
	// failed returns the outputs of the open or last transaction that the
	// broker refused.
	failed() []failedOutput
	// fatal reports whether the producer can no longer be used (fenced)
	// and must be replaced.
	fatal() bool
	close() error
}

// errFenced is wrapped by producer errors of a fenced producer.
var errFenced = errors.New("producer fenced")

// topicInfo is what the cluster says about a topic.
type topicInfo struct {
	Partitions int32
	Configs    map[string]string
}

// cluster is what the cycle asks the brokers, other than consuming and
// producing.
type cluster interface {
	// ends returns the log start offset, the high water mark and the last
	// stable offset of a partition.
	ends(topic string, part int32) (start, hwm, lso int64, err error)
	// readCommitted calls fn for each committed data record of a partition
	// in [from, to) and returns the offset after the last one read.
	readCommitted(ctx context.Context, topic string, part int32, from, to int64, fn func(kafkaread.Record) error) (int64, error)
	// lastCommittedOffset is kafkaread.LastCommittedOffset.
	lastCommittedOffset(ctx context.Context, topic string, part int32, from int64) (int64, error)
	// topicID returns the topic's id (KIP-516) as text, "" if none.
	topicID(topic string) (string, error)
	// partitions returns the partition count of a topic.
	partitions(topic string) (int32, error)
	// topics lists the topics with their partition counts and configs.
	topics() (map[string]topicInfo, error)
	// createTopic creates a topic; an existing one is errTopicExists.
	createTopic(name string, partitions int32, replication int16, configs map[string]string) error
	// waitReady waits until every partition of the topics has a leader.
	waitReady(ctx context.Context, topics ...string) error
	// groupOffsets returns the group's committed offsets of the
	// partitions (-1: none).
	groupOffsets(group string, parts map[string][]int32) (map[topicPart]int64, error)
}

// errTopicExists is returned by createTopic for a topic that exists.
var errTopicExists = errors.New("topic already exists")

type topicPart struct {
	topic string
	part  int32
}

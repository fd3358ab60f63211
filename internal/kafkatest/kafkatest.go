// Package kafkatest holds helpers shared by the module's tests: an
// in-process Kafka broker (kfake), a sarama client for it, and a buffer
// that a command writes to while a test reads it.
package kafkatest

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/twmb/franz-go/pkg/kfake"
)

// StartKfake starts an in-process single broker for one test, with topic
// auto-creation, 4 partitions per new topic and short group sessions
// allowed; it is closed when the test ends. It returns its address.
func StartKfake(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	opts = append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(4),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.Ports(0),
	}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// KafkaBrokers returns the Apache Kafka brokers of the integration tests,
// from KAFKA_BROKERS (scripts/kafka.sh start prints it), and fails the test
// without them.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("KAFKA_BROKERS")
	if v == "" {
		t.Fatal("KAFKA_BROKERS is not set: start Kafka with scripts/kafka.sh start and export the address it prints")
	}
	return strings.Split(v, ",")
}

// Client returns a sarama client for brokers, closed when the test ends.
func Client(t testing.TB, brokers []string) sarama.Client {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	c, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// SyncBuffer is a bytes.Buffer safe for one writer and one reader at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Record is a committed record of a topic.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte // nil for a record without a key
	Value     []byte // nil for a tombstone
	Headers   map[string]string
}

// Records returns every committed record of a topic up to its last stable
// offsets, partition by partition, in offset order.
func Records(t testing.TB, client sarama.Client, topic string) []Record {
	t.Helper()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions %s: %v", topic, err)
	}
	var out []Record
	for _, p := range parts {
		start, _, lso, err := kafkaread.Ends(client, topic, p)
		if err != nil {
			t.Fatalf("ends %s/%d: %v", topic, p, err)
		}
		_, err = kafkaread.ReadCommitted(context.Background(), client, topic, p, start, lso, func(r kafkaread.Record) error {
			rec := Record{Partition: p, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: map[string]string{}}
			for _, h := range r.Headers {
				rec.Headers[string(h.Key)] = string(h.Value)
			}
			out = append(out, rec)
			return nil
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
	}
	return out
}

// ReadCommitted returns the values of every committed record of a topic up
// to its last stable offsets, partition by partition.
func ReadCommitted(t testing.TB, client sarama.Client, topic string) []string {
	t.Helper()
	var out []string
	for _, r := range Records(t, client, topic) {
		out = append(out, string(r.Value))
	}
	return out
}

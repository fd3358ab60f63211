package smoke

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
)

func saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-smoke"
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	return sc
}

// clientConfig is the configuration of the driver's client: it creates
// the topics and reads the verification egress with read_committed.
func clientConfig() *sarama.Config {
	sc := saramaConfig()
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Return.Errors = true
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	return sc
}

// producerConfig is the configuration of the idempotent producer of the
// commands: a command is acknowledged once, however often it is retried,
// and written once.
func producerConfig() *sarama.Config {
	sc := saramaConfig()
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Retry.Max = 20
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	sc.Net.MaxOpenRequests = 1
	return sc
}

// createTopics creates the topics with the given partition count unless
// they exist, and waits until they answer.
func createTopics(ctx context.Context, client sarama.Client, partitions int32, topics ...string) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("smoke: admin client: %w", err)
	}
	// closing admin would close the shared client
	for _, t := range topics {
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("smoke: create topic %s: %w", t, err)
		}
	}
	// Kafka makes new topics known a while after it confirmed them
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := kafkaread.WaitReady(ctx, client, topics...); err != nil {
		return fmt.Errorf("smoke: %w", err)
	}
	return nil
}

// countRecords returns the number of committed records of a topic.
func countRecords(client sarama.Client, topic string) (int64, error) {
	if err := client.RefreshMetadata(topic); err != nil {
		return 0, err
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	for _, p := range parts {
		start, _, lso, err := kafkaread.Ends(client, topic, p)
		if err != nil {
			return 0, err
		}
		if _, err := kafkaread.ReadCommitted(ctx, client, topic, p, start, lso, func(kafkaread.Record) error {
			n++
			return nil
		}); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// reader reads the verification egress from its beginning with
// read_committed and decodes every record.
type reader struct {
	warn     func(string) // prints a warning
	consumer sarama.Consumer
	results  chan VerificationResult
	errs     chan error
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startReader(client sarama.Client, topic string, warn func(string)) (*reader, error) {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("smoke: consumer: %w", err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("smoke: partitions of %s: %w", topic, err)
	}
	rd := &reader{warn: warn, consumer: consumer, results: make(chan VerificationResult, 1024), errs: make(chan error, 1), stop: make(chan struct{})}
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			rd.close()
			return nil, fmt.Errorf("smoke: read %s/%d: %w", topic, p, err)
		}
		rd.wg.Go(func() { rd.read(pc, topic, p) })
	}
	return rd, nil
}

func (rd *reader) read(pc sarama.PartitionConsumer, topic string, p int32) {
	defer pc.AsyncClose()
	fail := func(err error) {
		select {
		case rd.errs <- err:
		default:
		}
	}
	msgs, errs := pc.Messages(), pc.Errors()
	for {
		select {
		case <-rd.stop:
			return
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// the partition consumer reports what it retries too; it
			// gives up by closing its messages channel
			rd.warn(fmt.Sprintf("smoke: reading %s/%d: %v", topic, p, err))
		case m, ok := <-msgs:
			if !ok {
				fail(fmt.Errorf("smoke: reading %s/%d: the consumer stopped", topic, p))
				return
			}
			res, err := UnmarshalVerificationResult(m.Value)
			if err != nil {
				fail(fmt.Errorf("smoke: record %s/%d@%d: %w", topic, p, m.Offset, err))
				return
			}
			select {
			case rd.results <- res:
			case <-rd.stop:
				return
			}
		}
	}
}

func (rd *reader) close() {
	close(rd.stop)
	rd.wg.Wait()
	_ = rd.consumer.Close()
}

// PartitionState describes one partition of an application's input
// topics when a run fails with a loss: where its log ends, where its last
// stable offset is (the end of what read_committed consumers see), and
// the offset the application's consumer group has committed.
type PartitionState struct {
	Topic     string
	Partition int32
	// End is the high water mark, Stable the last stable offset, Committed
	// the group's committed offset (-1 if none).
	End, Stable, Committed int64
	// Pending is the number of committed data records from Committed to
	// Stable: records the group has not consumed yet (-1 if unknown).
	// Transaction markers are not counted.
	Pending int64
}

func (s PartitionState) String() string {
	var notes []string
	if s.Stable < s.End {
		notes = append(notes, fmt.Sprintf("a transaction is open from before offset %d", s.Stable))
	}
	if s.Pending > 0 {
		notes = append(notes, fmt.Sprintf("%d records not consumed", s.Pending))
	}
	line := fmt.Sprintf("%s/%d: end %d, last stable %d, committed %d", s.Topic, s.Partition, s.End, s.Stable, s.Committed)
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, "; ") + ")"
	}
	return line
}

// partitionStates returns the state of every partition of the topics for
// the consumer group, best effort: partitions it cannot read are left out.
func partitionStates(client sarama.Client, group string, topics ...string) []PartitionState {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil
	}
	// closing admin would close the shared client
	parts := map[string][]int32{}
	for _, t := range topics {
		if ps, err := client.Partitions(t); err == nil {
			parts[t] = ps
		}
	}
	committed, _ := admin.ListConsumerGroupOffsets(group, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []PartitionState
	for _, t := range topics {
		for _, p := range parts[t] {
			_, hwm, lso, err := kafkaread.Ends(client, t, p)
			if err != nil {
				continue
			}
			s := PartitionState{Topic: t, Partition: p, End: hwm, Stable: lso, Committed: -1, Pending: -1}
			if committed != nil {
				if b := committed.GetBlock(t, p); b != nil && b.Err == sarama.ErrNoError {
					s.Committed = b.Offset
				}
			}
			var n int64
			if _, err := kafkaread.ReadCommitted(ctx, client, t, p, max(s.Committed, 0), lso, func(kafkaread.Record) error {
				n++
				return nil
			}); err == nil {
				s.Pending = n
			}
			out = append(out, s)
		}
	}
	return out
}

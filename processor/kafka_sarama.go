package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
)

// errCommittedWithFailures reports a transaction that the broker committed
// although some of its records failed; sarama should never let that happen.
var errCommittedWithFailures = errors.New("transaction committed with failed records")

// saramaProducer is a producer on one transactional sarama producer. It
// counts the records of the open transaction and collects their
// acknowledgements, so that after a commit the offsets of the changelog
// records are known.
type saramaProducer struct {
	ap sarama.AsyncProducer

	wg sync.WaitGroup // one per record sent in the open transaction
	// queue decouples the cycle from sarama's unbuffered Input channel:
	// a feeder goroutine hands records over in order, so the cycle goes
	// on invoking while sarama's pipeline takes the previous records
	queue  chan feed
	mu     sync.Mutex
	errs   []*sarama.ProducerError
	acked  []acked
	done   chan struct{}
	closed bool
}

// feed is a record for the feeder, or a flush marker.
type feed struct {
	msg     *sarama.ProducerMessage
	flushed chan struct{}
}

func newSaramaProducer(brokers []string, cfg *sarama.Config) (*saramaProducer, error) {
	ap, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("transactional producer: %w", err)
	}
	t := &saramaProducer{ap: ap, done: make(chan struct{}), queue: make(chan feed, 4096)}
	go func() {
		for f := range t.queue {
			if f.flushed != nil {
				close(f.flushed)
				continue
			}
			ap.Input() <- f.msg
		}
	}()
	var drain sync.WaitGroup
	drain.Add(2)
	go func() {
		defer drain.Done()
		for m := range ap.Successes() {
			t.mu.Lock()
			t.acked = append(t.acked, acked{out: m.Metadata.(*output), offset: m.Offset})
			t.mu.Unlock()
			t.wg.Done()
		}
	}()
	go func() {
		defer drain.Done()
		for e := range ap.Errors() {
			t.mu.Lock()
			t.errs = append(t.errs, e)
			t.mu.Unlock()
			t.wg.Done()
		}
	}()
	go func() { drain.Wait(); close(t.done) }()
	return t, nil
}

func (t *saramaProducer) begin() error {
	t.mu.Lock()
	t.errs, t.acked = nil, nil
	t.mu.Unlock()
	if err := t.ap.BeginTxn(); err != nil {
		return t.wrap(err)
	}
	return nil
}

func (t *saramaProducer) send(o *output) {
	m := &sarama.ProducerMessage{Topic: o.Topic, Partition: o.Partition, Metadata: o}
	if o.Key != nil {
		m.Key = sarama.ByteEncoder(o.Key)
	}
	if o.Value != nil {
		m.Value = sarama.ByteEncoder(o.Value)
	}
	for _, h := range o.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	t.wg.Add(1)
	t.queue <- feed{msg: m}
}

// handedOver waits until the feeder has given every queued record to
// sarama, so that a commit or abort covers them.
func (t *saramaProducer) handedOver() {
	ch := make(chan struct{})
	t.queue <- feed{flushed: ch}
	<-ch
}

func (t *saramaProducer) commit(offsets map[string]map[int32]int64, g groupMeta) ([]acked, error) {
	t.handedOver()
	if len(offsets) > 0 {
		pom := make(map[string][]*sarama.PartitionOffsetMetadata, len(offsets))
		for topic, parts := range offsets {
			for part, off := range parts {
				pom[topic] = append(pom[topic], &sarama.PartitionOffsetMetadata{Partition: part, Offset: off})
			}
		}
		meta := &sarama.ConsumerGroupMetadata{GroupID: g.Group, MemberID: g.MemberID, GenerationID: g.Generation}
		if g.InstanceID != "" {
			id := g.InstanceID
			meta.GroupInstanceID = &id
		}
		if err := t.ap.AddOffsetsToTxnWithGroupMetadata(pom, meta); err != nil {
			t.wg.Wait()
			if rerr := t.recordErr(); rerr != nil {
				return nil, fmt.Errorf("a record failed: %w (then: add offsets to transaction: %v)", rerr, err)
			}
			return nil, fmt.Errorf("add offsets to transaction: %w", t.wrap(err))
		}
	}
	err := t.ap.CommitTxn()
	t.wg.Wait()
	if err != nil {
		if rerr := t.recordErr(); rerr != nil {
			return nil, fmt.Errorf("a record failed: %w (then: commit transaction: %v)", rerr, err)
		}
		return nil, fmt.Errorf("commit transaction: %w", t.wrap(err))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errs) > 0 {
		return nil, fmt.Errorf("%w: %d records failed, first: %w", errCommittedWithFailures, len(t.errs), t.errs[0])
	}
	return t.acked, nil
}

// wrap marks sarama's fencing error with errFenced.
func (t *saramaProducer) wrap(err error) error {
	if errors.Is(err, sarama.ErrProducerFenced) {
		return fmt.Errorf("%w: %w", errFenced, err)
	}
	return err
}

func (t *saramaProducer) abort() error {
	t.handedOver()
	if t.ap.TxnStatus()&sarama.ProducerTxnFlagInTransaction == 0 &&
		t.ap.TxnStatus()&sarama.ProducerTxnFlagAbortableError == 0 {
		t.wg.Wait()
		return nil
	}
	err := t.ap.AbortTxn()
	t.wg.Wait()
	if err != nil {
		return fmt.Errorf("abort transaction: %w", t.wrap(err))
	}
	return nil
}

func (t *saramaProducer) fatal() bool {
	return t.ap.TxnStatus()&sarama.ProducerTxnFlagFatalError != 0
}

func (t *saramaProducer) failed() []failedOutput {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]failedOutput, 0, len(t.errs))
	for _, e := range t.errs {
		if o, ok := e.Msg.Metadata.(*output); ok {
			out = append(out, failedOutput{out: o, err: e.Err})
		}
	}
	return out
}

// recordErr returns the first failed record's error, or nil.
func (t *saramaProducer) recordErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errs) == 0 {
		return nil
	}
	return t.errs[0]
}

func (t *saramaProducer) close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	t.handedOver()
	close(t.queue)
	err := t.ap.Close()
	<-t.done
	if err != nil && !errors.Is(err, sarama.ErrProducerFenced) {
		return err
	}
	return nil
}

// unproducible reports produce errors that fail every retry.
func unproducible(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) || errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrInvalidPartition) ||
		errors.Is(err, sarama.ErrInvalidMessage) || errors.Is(err, sarama.ErrMessageTooLarge) || errors.Is(err, sarama.ErrInvalidRecord)
}

// saramaCluster is the cluster through a sarama client.
type saramaCluster struct {
	client sarama.Client
}

func (c saramaCluster) ends(topic string, part int32) (int64, int64, int64, error) {
	return kafkaread.Ends(c.client, topic, part)
}

func (c saramaCluster) readCommitted(ctx context.Context, topic string, part int32, from, to int64, fn func(kafkaread.Record) error) (int64, error) {
	return kafkaread.ReadCommitted(ctx, c.client, topic, part, from, to, fn)
}

func (c saramaCluster) lastCommittedOffset(ctx context.Context, topic string, part int32, from int64) (int64, error) {
	return kafkaread.LastCommittedOffset(ctx, c.client, topic, part, from)
}

func (c saramaCluster) topicID(topic string) (string, error) {
	broker := c.client.LeastLoadedBroker()
	if broker == nil {
		return "", fmt.Errorf("topic id of %s: no broker available", topic)
	}
	resp, err := broker.GetMetadata(&sarama.MetadataRequest{Version: 10, Topics: []string{topic}})
	if err != nil {
		return "", fmt.Errorf("topic id of %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Name == topic && t.Uuid != (sarama.Uuid{}) {
			return t.Uuid.String(), nil
		}
	}
	return "", nil
}

func (c saramaCluster) partitions(topic string) (int32, error) {
	ps, err := c.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	return int32(len(ps)), nil
}

func (c saramaCluster) admin() (sarama.ClusterAdmin, error) {
	// closing the admin would close the shared client; it holds nothing
	// else
	admin, err := sarama.NewClusterAdminFromClient(c.client)
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	return admin, nil
}

func (c saramaCluster) topics() (map[string]topicInfo, error) {
	admin, err := c.admin()
	if err != nil {
		return nil, err
	}
	ts, err := admin.ListTopics()
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	out := make(map[string]topicInfo, len(ts))
	for name, d := range ts {
		ti := topicInfo{Partitions: d.NumPartitions, Configs: map[string]string{}}
		for k, v := range d.ConfigEntries {
			if v != nil {
				ti.Configs[k] = *v
			}
		}
		out[name] = ti
	}
	return out, nil
}

func (c saramaCluster) createTopic(name string, partitions int32, replication int16, configs map[string]string) error {
	admin, err := c.admin()
	if err != nil {
		return err
	}
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: replication, ConfigEntries: map[string]*string{}}
	for k, v := range configs {
		detail.ConfigEntries[k] = &v
	}
	err = admin.CreateTopic(name, detail, false)
	if errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("%w: %w", errTopicExists, err)
	}
	return err
}

// waitReady waits until the cluster knows every topic with a leader on
// every partition (Kafka makes a new topic known a while after it
// confirms its creation).
func (c saramaCluster) waitReady(ctx context.Context, topics ...string) error {
	return kafkaread.WaitReady(ctx, c.client, topics...)
}

func (c saramaCluster) groupOffsets(group string, parts map[string][]int32) (map[topicPart]int64, error) {
	admin, err := c.admin()
	if err != nil {
		return nil, err
	}
	resp, err := admin.ListConsumerGroupOffsets(group, parts)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	out := make(map[topicPart]int64)
	for topic, ps := range parts {
		for _, part := range ps {
			off := int64(-1)
			if b := resp.GetBlock(topic, part); b != nil {
				off = b.Offset
			}
			out[topicPart{topic, part}] = off
		}
	}
	return out, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

// The phases, written in the first byte of every record.
const (
	phaseWarmup = iota
	phaseLoad
	phasePaced
	numPhases
)

var phaseNames = [numPhases]string{"warm-up", "throughput", "latency"}

// An input record's value is phase (1 byte), sequence number (8 bytes) and
// send time (8 bytes, Unix nanoseconds); an output record's value is the
// input value and a count (8 bytes).
const (
	inputLen  = 17
	outputLen = inputLen + 8
)

func inputValue(phase byte, seq uint64, sent int64) []byte {
	v := make([]byte, inputLen)
	v[0] = phase
	binary.BigEndian.PutUint64(v[1:], seq)
	binary.BigEndian.PutUint64(v[9:], uint64(sent))
	return v
}

// outputValue appends the count to an input value.
func outputValue(in []byte, count int64) []byte {
	v := make([]byte, len(in)+8)
	copy(v, in)
	binary.BigEndian.PutUint64(v[len(in):], uint64(count))
	return v
}

// idKey returns the key of the seq-th record: ids are used round robin.
func idKey(seq, ids int) string { return "id-" + strconv.Itoa(seq%ids) }

func saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-bench"
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	return sc
}

// clientConfig is the configuration of the bench's own client and of the
// reader: read_committed, short fetch waits.
func clientConfig() *sarama.Config {
	sc := saramaConfig()
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Return.Errors = true
	// kfake and Kafka answer a waiting fetch as soon as records become
	// visible, so this bounds only idle polling
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	return sc
}

func createTopics(client sarama.Client, partitions int32, topics ...string) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("bench: admin client: %w", err)
	}
	// closing admin would close the shared client
	for _, t := range topics {
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("bench: create topic %s: %w", t, err)
		}
	}
	// Kafka makes new topics known a while after it confirmed them
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkaread.WaitReady(ctx, client, topics...); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// offsets returns the sum of the log end offsets of each topic in ts.
func (b *bench) offsets(ts []TopicOffsets) []TopicOffsets {
	out := make([]TopicOffsets, len(ts))
	for i, t := range ts {
		out[i] = t
		out[i].Delta = -1
		parts, err := b.client.Partitions(t.Topic)
		if err != nil {
			if err := b.client.RefreshMetadata(t.Topic); err != nil {
				continue
			}
			if parts, err = b.client.Partitions(t.Topic); err != nil {
				continue
			}
		}
		var sum int64
		for _, p := range parts {
			off, err := b.client.GetOffset(t.Topic, p, sarama.OffsetNewest)
			if err != nil {
				sum = -1
				break
			}
			sum += off
		}
		out[i].Delta = sum
	}
	return out
}

// load writes n records of a phase to topic in one transaction and returns
// when the transaction has committed.
func (b *bench) load(ctx context.Context, topic string, phase byte, n int, txnName string) (time.Time, error) {
	return b.loadWith(ctx, topic, phase, n, txnName, nil)
}

// loadWith is load that calls beforeCommit right before the commit.
func (b *bench) loadWith(ctx context.Context, topic string, phase byte, n int, txnName string, beforeCommit func()) (time.Time, error) {
	sc := saramaConfig()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Transaction.ID = "bench-" + b.runID + "-" + txnName
	sc.Producer.Transaction.Timeout = 5 * time.Minute
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Net.MaxOpenRequests = 1
	sp, err := sarama.NewSyncProducer(b.brokers, sc)
	if err != nil {
		return time.Time{}, fmt.Errorf("bench: loader: %w", err)
	}
	defer sp.Close()
	// build every record before the transaction, so only sending counts
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(idKey(i, b.cfg.IDs)),
			Value: sarama.ByteEncoder(inputValue(phase, uint64(i), 0)),
		}
	}
	if err := sp.BeginTxn(); err != nil {
		return time.Time{}, fmt.Errorf("bench: loader: begin transaction: %w", err)
	}
	const chunk = 10_000
	for i := 0; i < n; i += chunk {
		if err := ctx.Err(); err != nil {
			_ = sp.AbortTxn()
			return time.Time{}, err
		}
		if err := sp.SendMessages(msgs[i:min(i+chunk, n)]); err != nil {
			_ = sp.AbortTxn()
			return time.Time{}, fmt.Errorf("bench: loader: write %s: %w", topic, err)
		}
	}
	if beforeCommit != nil {
		beforeCommit()
	}
	if err := sp.CommitTxn(); err != nil {
		return time.Time{}, fmt.Errorf("bench: loader: commit: %w", err)
	}
	return time.Now(), nil
}

// pacer writes the records of the latency phase at the configured rate.
type pacer struct {
	sent atomic.Int64
	done chan struct{}
	err  error
}

func (p *pacer) wait() error { <-p.done; return p.err }

// startPaced starts writing n records to topic at cfg.Rate records/s, each
// with its send time, with an idempotent (non-transactional) producer, so
// that each is visible as soon as the broker has it.
func (b *bench) startPaced(ctx context.Context, topic string, n int) (*pacer, error) {
	ids := b.cfg.IDs
	return b.startPacedWith(ctx, topic, n, b.cfg.Rate, func(i int) (string, []byte) {
		return idKey(i, ids), inputValue(phasePaced, uint64(i), time.Now().UnixNano())
	})
}

// startPacedWith starts writing n records to topic at rate records/s with
// an idempotent (non-transactional) producer; record(i) makes the i-th
// record right before it is sent.
func (b *bench) startPacedWith(ctx context.Context, topic string, n, rate int, record func(i int) (key string, value []byte)) (*pacer, error) {
	sc := saramaConfig()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Net.MaxOpenRequests = 1
	ap, err := sarama.NewAsyncProducer(b.brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("bench: paced producer: %w", err)
	}
	p := &pacer{done: make(chan struct{})}
	var (
		mu      sync.Mutex
		firstEr error
		drained = make(chan struct{})
	)
	go func() {
		defer close(drained)
		for e := range ap.Errors() {
			mu.Lock()
			if firstEr == nil {
				firstEr = e
			}
			mu.Unlock()
		}
	}()
	go func() {
		defer close(p.done)
		rate := float64(rate)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start := time.Now()
	send:
		for i := 0; i < n; {
			due := min(int(time.Since(start).Seconds()*rate)+1, n)
			for ; i < due; i++ {
				k, v := record(i)
				ap.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)}
				p.sent.Add(1)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				break send
			}
		}
		err := ap.Close()
		<-drained
		mu.Lock()
		defer mu.Unlock()
		switch {
		case firstEr != nil:
			p.err = fmt.Errorf("bench: paced producer: %w", firstEr)
		case err != nil:
			p.err = fmt.Errorf("bench: paced producer: %w", err)
		case ctx.Err() != nil:
			p.err = ctx.Err()
		}
	}()
	return p, nil
}

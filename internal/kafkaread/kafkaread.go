// Package kafkaread reads a partition with read_committed semantics up to
// its last stable offset (LSO), with raw fetch requests. sarama's partition
// consumer cannot be used for this: it hides control records, so a reader
// whose partition ends with a commit marker or an aborted transaction never
// sees an offset that reaches the end, which is why goka's table recovery
// hangs under transactions. Here every batch, control batches included,
// moves the position, so the reader knows exactly when it has reached the
// LSO.
//
// The processor recovers its local stores with it, and package gokaview
// uses [LastCommittedOffset] to tell a goka view where recovery ends.
package kafkaread

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"
)

// Record is one data record read from a partition.
type Record struct {
	Offset  int64
	Key     []byte
	Value   []byte
	Headers []*sarama.RecordHeader
	// Time is the record's timestamp: its producer's, or the broker's
	// for a topic with log append time.
	Time time.Time
}

// Ends returns the log start offset, the high water mark and the last
// stable offset of a partition.
func Ends(client sarama.Client, topic string, partition int32) (start, hwm, lso int64, err error) {
	// A partition that was just created, or whose leader moved, answers
	// "not the leader" for a moment: refresh the metadata and ask again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		start, hwm, lso, err = ends(client, topic, partition)
		if err == nil || !leadershipError(err) || time.Now().After(deadline) {
			return start, hwm, lso, err
		}
		_ = client.RefreshMetadata(topic)
		time.Sleep(100 * time.Millisecond)
	}
}

// leadershipError reports errors that go away once the partition has a
// leader and the client knows it, or once the client has connected to it
// again (sarama answers ErrNotConnected after a failed dial, and dials
// again on the next use of the broker).
func leadershipError(err error) bool {
	return errors.Is(err, sarama.ErrNotLeaderForPartition) || errors.Is(err, sarama.ErrLeaderNotAvailable) ||
		errors.Is(err, sarama.ErrNotConnected) ||
		errors.Is(err, sarama.ErrUnknownTopicOrPartition) || errors.Is(err, sarama.ErrNotCoordinatorForConsumer) ||
		errors.Is(err, sarama.ErrOffsetNotAvailable)
}

// WaitReady waits until the client knows every partition of the topics
// with its leader, and every partition answers an offset request, or until
// ctx ends. Call it before anything uses topics that were just created, or
// that another program is about to create: Kafka confirms the creation of a
// topic before its brokers know it, and makes it known some time later, a
// time that grows with the partitions created just before (seconds for a
// few hundred on a busy broker). Until then a metadata request answers
// "unknown topic", and sarama's own retries (Metadata.Retry, about two
// seconds) give up. Errors other than those of a topic or leader not known
// yet are returned at once.
func WaitReady(ctx context.Context, client sarama.Client, topics ...string) error {
	if err := waitMetadata(ctx, client, topics); err != nil {
		return err
	}
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, _, _, err := Ends(client, topic, p); err != nil {
				return fmt.Errorf("topic %s partition %d not ready: %w", topic, p, err)
			}
		}
	}
	return nil
}

// waitMetadata refreshes the client's metadata of the topics until it has
// them, with a leader for every partition.
func waitMetadata(ctx context.Context, client sarama.Client, topics []string) error {
	pause := 50 * time.Millisecond
	for {
		err := client.RefreshMetadata(topics...)
		if err == nil {
			err = leadersKnown(client, topics)
		}
		if err == nil {
			return nil
		}
		if !leadershipError(err) {
			return fmt.Errorf("metadata: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not make the topics known in time (%w): %w", ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// leadersKnown checks the client's metadata: every topic has partitions,
// and every partition a leader.
func leadersKnown(client sarama.Client, topics []string) error {
	var errs []error
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err == nil && len(parts) == 0 {
			err = sarama.ErrUnknownTopicOrPartition
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", topic, err))
			continue
		}
		for _, p := range parts {
			if _, err := client.Leader(topic, p); err != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

func ends(client sarama.Client, topic string, partition int32) (start, hwm, lso int64, err error) {
	broker, err := client.Leader(topic, partition)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("leader of %s/%d: %w", topic, partition, err)
	}
	query := func(ts int64, level sarama.IsolationLevel) (int64, error) {
		req := &sarama.OffsetRequest{Version: 2, IsolationLevel: level}
		req.AddBlock(topic, partition, ts, 1)
		resp, err := broker.GetAvailableOffsets(req)
		if err != nil {
			return 0, err
		}
		b := resp.GetBlock(topic, partition)
		if b == nil {
			return 0, fmt.Errorf("list offsets %s/%d: no answer for the partition", topic, partition)
		}
		if b.Err != sarama.ErrNoError {
			return 0, b.Err
		}
		return b.Offset, nil
	}
	if start, err = query(sarama.OffsetOldest, sarama.ReadUncommitted); err != nil {
		return 0, 0, 0, err
	}
	if hwm, err = query(sarama.OffsetNewest, sarama.ReadUncommitted); err != nil {
		return 0, 0, 0, err
	}
	if lso, err = query(sarama.OffsetNewest, sarama.ReadCommitted); err != nil {
		return 0, 0, 0, err
	}
	return start, hwm, lso, nil
}

// ReadCommitted calls fn for every committed data record of the partition
// from offset from up to end (exclusive), which should be an LSO. It returns
// the position reached, which is end (or from, if larger) on success: never
// past end, though the fetches may return records beyond it once the LSO
// has moved on, so that a reader that goes on from there misses nothing.
func ReadCommitted(ctx context.Context, client sarama.Client, topic string, partition int32, from, end int64, fn func(Record) error) (int64, error) {
	maxBytes := int32(4 << 20)
	emptyFetches := 0
	for from < end {
		if err := ctx.Err(); err != nil {
			return from, err
		}
		broker, err := client.Leader(topic, partition)
		if err != nil {
			return from, fmt.Errorf("leader of %s/%d: %w", topic, partition, err)
		}
		req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 200, MinBytes: 1, MaxBytes: maxBytes, Isolation: sarama.ReadCommitted}
		req.AddBlock(topic, partition, from, maxBytes, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return from, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, from, err)
		}
		block := resp.GetBlock(topic, partition)
		if block == nil {
			return from, fmt.Errorf("fetch %s/%d: no answer for the partition", topic, partition)
		}
		switch block.Err {
		case sarama.ErrNoError:
		case sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable, sarama.ErrUnknownTopicOrPartition:
			if err := client.RefreshMetadata(topic); err != nil {
				return from, err
			}
			time.Sleep(50 * time.Millisecond)
			continue
		case sarama.ErrOffsetOutOfRange:
			if block.LogStartOffset > from {
				from = block.LogStartOffset
				continue
			}
			return from, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, from, block.Err)
		default:
			return from, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, from, block.Err)
		}
		next, complete, err := ConsumeBatches(block, from, end, fn)
		if err != nil {
			return next, err
		}
		switch {
		case next > from:
			from, emptyFetches = next, 0
		case !complete:
			// only a partial batch came back: ask for more bytes
			maxBytes *= 2
		default:
			emptyFetches++
			if emptyFetches > 50 {
				return from, fmt.Errorf("fetch %s/%d: no progress at offset %d below %d", topic, partition, from, end)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return from, nil
}

// ConsumeBatches walks the record batches of a read_committed fetch,
// dropping records of aborted transactions, and returns the next position,
// at most end: records at end or beyond are left for the next read.
// complete is false if the response held only a partial batch.
func ConsumeBatches(block *sarama.FetchResponseBlock, from, end int64, fn func(Record) error) (next int64, complete bool, err error) {
	aborted := append([]*sarama.AbortedTransaction(nil), block.AbortedTransactions...)
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	abortedPIDs := make(map[int64]bool)
	next, complete = from, true
	for _, recs := range block.RecordsSet {
		b := recs.RecordBatch
		if b == nil {
			if recs.MsgSet != nil {
				return next, complete, errors.New("legacy message format is not supported (Kafka >= 0.11 record batches are required)")
			}
			continue
		}
		if b.PartialTrailingRecord {
			if next == from {
				complete = false
			}
			break
		}
		if b.FirstOffset >= end {
			next = max(next, end)
			break
		}
		last := b.FirstOffset + int64(b.LastOffsetDelta)
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			abortedPIDs[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		switch {
		case b.Control:
			if abortedPIDs[b.ProducerID] && IsAbortMarker(b) {
				delete(abortedPIDs, b.ProducerID)
			}
		case b.IsTransactional && abortedPIDs[b.ProducerID]:
		default:
			for _, r := range b.Records {
				off := b.FirstOffset + r.OffsetDelta
				if off < from || off >= end {
					continue
				}
				ts := b.FirstTimestamp.Add(r.TimestampDelta)
				if b.LogAppendTime {
					ts = b.MaxTimestamp
				}
				if err := fn(Record{Offset: off, Key: r.Key, Value: r.Value, Headers: r.Headers, Time: ts}); err != nil {
					return next, complete, err
				}
			}
		}
		if last+1 > next {
			// a batch that straddles end is read again from end
			next = min(last+1, max(end, next))
		}
	}
	return next, complete, nil
}

// IsAbortMarker reports whether a control batch is an abort marker: its
// record key is version (int16) then type (int16), 0 = abort, 1 = commit.
func IsAbortMarker(b *sarama.RecordBatch) bool {
	if len(b.Records) == 0 || len(b.Records[0].Key) < 4 {
		return false
	}
	k := b.Records[0].Key
	return int16(k[2])<<8|int16(k[3]) == 0
}

// LastCommittedOffset returns the offset of the last committed data record
// of a partition at or after from, or -1 if there is none. It looks at the
// tail first, where the answer almost always is.
func LastCommittedOffset(ctx context.Context, client sarama.Client, topic string, partition int32, from int64) (int64, error) {
	start, _, lso, err := Ends(client, topic, partition)
	if err != nil {
		return 0, err
	}
	if from < start {
		from = start
	}
	last := int64(-1)
	note := func(r Record) error {
		last = r.Offset
		return nil
	}
	const tail = 1000
	if lso-tail > from {
		if _, err := ReadCommitted(ctx, client, topic, partition, lso-tail, lso, note); err != nil {
			return 0, err
		}
		if last >= 0 {
			return last, nil
		}
		lso -= tail
	}
	if _, err := ReadCommitted(ctx, client, topic, partition, from, lso, note); err != nil {
		return 0, err
	}
	return last, nil
}

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkaread"
)

// consoleClient returns the console's Kafka client, made on first use and
// closed by Close. It also answers whether a table exists (views.go). The
// server's own client will not do: its one connection per broker (with
// MaxOpenRequests 1, for the idempotent producer) also carries the reply
// reader's long-polling fetches, and every console request would wait
// behind one.
func (s *Server) consoleClient() (sarama.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.console != nil {
		return s.console, nil
	}
	if s.ctx.Err() != nil {
		return nil, errors.New("the server has stopped")
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-console"
	// asking about a topic must not create it
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Net.DialTimeout = 5 * time.Second
	sc.Net.ReadTimeout = 10 * time.Second
	c, err := sarama.NewClient(s.cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka at %s: %w", strings.Join(s.cfg.Brokers, ","), err)
	}
	s.console = c
	context.AfterFunc(s.ctx, func() {
		s.mu.Lock()
		s.console = nil
		s.mu.Unlock()
		_ = c.Close()
	})
	return c, nil
}

// consoleAdmin returns the console's client and an admin client on it.
// Closing the admin would close the client; it holds nothing else, so it
// is never closed.
func (s *Server) consoleAdmin() (sarama.Client, sarama.ClusterAdmin, error) {
	c, err := s.consoleClient()
	if err != nil {
		return nil, nil, err
	}
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to Kafka: %w", err)
	}
	return c, admin, nil
}

// The console's reads from Kafka: partition counts, partition ends for
// many partitions at once, and committed records with their timestamps.

// partitionCounts returns the partition count of each of the topics that
// exists, or of every topic if topics is nil, from one metadata request
// that never creates a topic. Unlike ClusterAdmin.ListTopics it does not
// also describe every topic's configuration.
func partitionCounts(client sarama.Client, topics []string) (map[string]int32, error) {
	out, err := kafkaread.PartitionCounts(client, topics)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	return out, nil
}

// topicPartition names one partition of a topic.
type topicPartition struct {
	topic     string
	partition int32
}

// partitionEnds are the offsets that bound a partition: its log start
// offset, last stable offset (below the first open transaction) and high
// water mark.
type partitionEnds struct {
	start, lso, hwm int64
	err             error
}

// listEnds asks the partitions' leaders for their ends: three ListOffsets
// requests per leader, however many partitions it leads. A partition whose
// leader is unknown or that answers an error gets that error.
func listEnds(client sarama.Client, parts []topicPartition) map[topicPartition]partitionEnds {
	out := make(map[topicPartition]partitionEnds, len(parts))
	byLeader := make(map[*sarama.Broker][]topicPartition)
	for _, tp := range parts {
		b, err := client.Leader(tp.topic, tp.partition)
		if err != nil {
			out[tp] = partitionEnds{err: fmt.Errorf("leader of %s/%d: %w", tp.topic, tp.partition, err)}
			continue
		}
		byLeader[b] = append(byLeader[b], tp)
	}
	for broker, tps := range byLeader {
		query := func(ts int64, level sarama.IsolationLevel, set func(*partitionEnds, int64)) {
			req := &sarama.OffsetRequest{Version: 2, IsolationLevel: level}
			for _, tp := range tps {
				req.AddBlock(tp.topic, tp.partition, ts, 1)
			}
			resp, err := broker.GetAvailableOffsets(req)
			for _, tp := range tps {
				e := out[tp]
				switch {
				case e.err != nil:
				case err != nil:
					e.err = fmt.Errorf("list offsets of %s/%d: %w", tp.topic, tp.partition, err)
				default:
					b := resp.GetBlock(tp.topic, tp.partition)
					switch {
					case b == nil:
						e.err = fmt.Errorf("list offsets of %s/%d: no answer for the partition", tp.topic, tp.partition)
					case !errors.Is(b.Err, sarama.ErrNoError):
						e.err = fmt.Errorf("list offsets of %s/%d: %w", tp.topic, tp.partition, b.Err)
					default:
						set(&e, b.Offset)
					}
				}
				out[tp] = e
			}
		}
		query(sarama.OffsetOldest, sarama.ReadUncommitted, func(e *partitionEnds, o int64) { e.start = o })
		query(sarama.OffsetNewest, sarama.ReadUncommitted, func(e *partitionEnds, o int64) { e.hwm = o })
		query(sarama.OffsetNewest, sarama.ReadCommitted, func(e *partitionEnds, o int64) { e.lso = o })
	}
	var stale []string
	for tp, e := range out {
		if e.err != nil && !slices.Contains(stale, tp.topic) {
			stale = append(stale, tp.topic)
		}
	}
	if len(stale) > 0 {
		// a leader moved, say: the next request asks the new one
		_ = client.RefreshMetadata(stale...)
	}
	return out
}

// readTimed calls fn for every committed data record of a partition from
// offset from up to end (exclusive, at most the LSO), with its timestamp,
// as kafkaread.ReadCommitted does (which has no timestamps).
func readTimed(ctx context.Context, client sarama.Client, topic string, partition int32, from, end int64, fn func(kafkaread.Record, time.Time)) error {
	maxBytes := int32(1 << 20)
	for stalls := 0; from < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		broker, err := client.Leader(topic, partition)
		if err != nil {
			return fmt.Errorf("leader of %s/%d: %w", topic, partition, err)
		}
		req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 100, MinBytes: 1, MaxBytes: maxBytes, Isolation: sarama.ReadCommitted}
		req.AddBlock(topic, partition, from, maxBytes, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, from, err)
		}
		block := resp.GetBlock(topic, partition)
		if block == nil {
			return fmt.Errorf("fetch %s/%d: no answer for the partition", topic, partition)
		}
		if !errors.Is(block.Err, sarama.ErrNoError) {
			return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, from, block.Err)
		}
		times := make(map[int64]time.Time)
		for _, rs := range block.RecordsSet {
			b := rs.RecordBatch
			if b == nil || b.Control {
				continue
			}
			for _, r := range b.Records {
				ts := b.FirstTimestamp.Add(r.TimestampDelta)
				if b.LogAppendTime {
					ts = b.MaxTimestamp
				}
				times[b.FirstOffset+r.OffsetDelta] = ts
			}
		}
		next, complete, err := kafkaread.ConsumeBatches(block, from, end, func(r kafkaread.Record) error {
			fn(r, times[r.Offset])
			return nil
		})
		switch {
		case err != nil:
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		case next > from:
			from, stalls = next, 0
		case !complete && maxBytes < 64<<20:
			maxBytes *= 2 // only part of a batch came back
		default:
			if stalls++; stalls > 20 {
				return fmt.Errorf("read %s/%d: no progress at offset %d below %d", topic, partition, from, end)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

package kafkaread

import (
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// PartitionEnds are the offsets that bound a partition: its log start
// offset, last stable offset (below the first open transaction) and high
// water mark; or the error that kept them from being known.
type PartitionEnds struct {
	Start, LSO, HWM int64
	Err             error
}

// ListEnds asks the partitions' leaders for their ends: three ListOffsets
// requests per leader, however many partitions it leads. A partition whose
// leader is unknown or that answers an error gets that error; the client's
// metadata of its topic is then refreshed, so that the next call asks a new
// leader.
func ListEnds(client sarama.Client, parts []TopicPartition) map[TopicPartition]PartitionEnds {
	out := make(map[TopicPartition]PartitionEnds, len(parts))
	byLeader := make(map[*sarama.Broker][]TopicPartition)
	for _, tp := range parts {
		b, err := client.Leader(tp.Topic, tp.Partition)
		if err != nil {
			out[tp] = PartitionEnds{Err: fmt.Errorf("leader of %s/%d: %w", tp.Topic, tp.Partition, err)}
			continue
		}
		byLeader[b] = append(byLeader[b], tp)
	}
	for broker, tps := range byLeader {
		query := func(ts int64, level sarama.IsolationLevel, set func(*PartitionEnds, int64)) {
			req := &sarama.OffsetRequest{Version: 2, IsolationLevel: level}
			for _, tp := range tps {
				req.AddBlock(tp.Topic, tp.Partition, ts, 1)
			}
			resp, err := broker.GetAvailableOffsets(req)
			for _, tp := range tps {
				e := out[tp]
				switch {
				case e.Err != nil:
				case err != nil:
					e.Err = fmt.Errorf("list offsets of %s/%d: %w", tp.Topic, tp.Partition, err)
				default:
					b := resp.GetBlock(tp.Topic, tp.Partition)
					switch {
					case b == nil:
						e.Err = fmt.Errorf("list offsets of %s/%d: no answer for the partition", tp.Topic, tp.Partition)
					case !errors.Is(b.Err, sarama.ErrNoError):
						e.Err = fmt.Errorf("list offsets of %s/%d: %w", tp.Topic, tp.Partition, b.Err)
					default:
						set(&e, b.Offset)
					}
				}
				out[tp] = e
			}
		}
		query(sarama.OffsetOldest, sarama.ReadUncommitted, func(e *PartitionEnds, o int64) { e.Start = o })
		query(sarama.OffsetNewest, sarama.ReadUncommitted, func(e *PartitionEnds, o int64) { e.HWM = o })
		query(sarama.OffsetNewest, sarama.ReadCommitted, func(e *PartitionEnds, o int64) { e.LSO = o })
	}
	var stale []string
	for tp, e := range out {
		if e.Err != nil && !slices.Contains(stale, tp.Topic) {
			stale = append(stale, tp.Topic)
		}
	}
	if len(stale) > 0 {
		// a leader moved, say: the next request asks the new one
		_ = client.RefreshMetadata(stale...)
	}
	return out
}

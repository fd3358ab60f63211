package processor

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/wire"
)

// Input positions.
//
// Each transaction also writes, for every input partition it consumed
// from, the offset of the next record to process to the compacted
// <app>-positions topic: the application's own record of its progress,
// committed atomically with everything else the transaction did. When a
// session starts, the processor reads the positions of the partitions it
// was given and resumes each at the later of that and the consumer
// group's committed offset. So input is not processed twice even when the
// broker lost or never persisted the group's offsets (kfake persists them
// after a commit's markers; an emptied offsets file, a deleted group).
//
// The position of input partition p is in partition p mod N of the
// positions topic, where N is the application's partition count; loop
// partition p and ingress partition p (same owner, with range balancing)
// share one.

// positionsWindow is how many records at the end of a positions partition
// the first read covers; it grows until every wanted key is found.
const positionsWindow = 512

type topicPart struct {
	topic string
	part  int32
}

func (p *Processor) positionPartition(part int32) int32 { return part % p.topo.PartitionCount() }

// sendPositions adds the position records of the open transaction's
// consumed offsets to it.
func (w *worker) sendPositions() {
	w.current = nil
	topic := string(w.p.topo.PositionsTopic())
	for in, parts := range w.offsets {
		for part, next := range parts {
			w.send(&sarama.ProducerMessage{
				Topic:     topic,
				Partition: w.p.positionPartition(part),
				Key:       sarama.ByteEncoder(wire.AppendPositionKey(nil, in, part)),
				Value:     sarama.ByteEncoder(wire.AppendPosition(nil, next)),
			})
		}
	}
}

// readPositions returns the recorded positions of the claimed input
// partitions that have one.
func (p *Processor) readPositions(ctx context.Context, client sarama.Client, claims map[string][]int32) (map[topicPart]int64, error) {
	wanted := map[int32]map[topicPart]bool{}
	for topic, parts := range claims {
		for _, part := range parts {
			j := p.positionPartition(part)
			if wanted[j] == nil {
				wanted[j] = map[topicPart]bool{}
			}
			wanted[j][topicPart{topic, part}] = true
		}
	}
	var (
		mu   sync.Mutex
		out  = map[topicPart]int64{}
		errs []error
		wg   sync.WaitGroup
	)
	for j, keys := range wanted {
		wg.Go(func() {
			found, err := p.readPositionPartition(ctx, client, j, keys)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("read positions partition %d: %w", j, err))
				return
			}
			for k, v := range found {
				out[k] = v
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// readPositionPartition finds the last committed position of each wanted
// input partition in partition j of the positions topic, reading back from
// its end in growing windows.
func (p *Processor) readPositionPartition(ctx context.Context, client sarama.Client, j int32, wanted map[topicPart]bool) (map[topicPart]int64, error) {
	topic := string(p.topo.PositionsTopic())
	start, _, lso, err := partitionEnds(client, topic, j)
	if err != nil {
		return nil, err
	}
	for window := int64(positionsWindow); ; window *= 8 {
		from := max(start, lso-window)
		found := map[topicPart]int64{}
		_, err := readCommitted(ctx, client, topic, j, from, lso, func(r committedRecord) error {
			t, part, err := wire.DecodePositionKey(r.Key)
			if err != nil || !wanted[topicPart{t, part}] {
				return nil
			}
			next, err := wire.DecodePosition(r.Value)
			if err != nil {
				p.cfg.logger.Warn("position record does not decode; ignored", "topic", topic, "partition", j, "offset", r.Offset, "err", err)
				return nil
			}
			found[topicPart{t, part}] = next
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == len(wanted) || from == start {
			return found, nil
		}
	}
}

// resumePositions moves the session's start on every claimed input
// partition whose recorded position is ahead of the consumer group's
// committed offset to that position.
func (h *groupHandler) resumePositions(sess sarama.ConsumerGroupSession) error {
	claims := sess.Claims()
	ours, err := h.p.readPositions(sess.Context(), h.client, claims)
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	if len(ours) == 0 {
		return nil
	}
	admin, err := sarama.NewClusterAdminFromClient(h.client)
	if err != nil {
		return fmt.Errorf("processor: admin client: %w", err)
	}
	// closing admin would close the shared client; it holds nothing else
	group, err := admin.ListConsumerGroupOffsets(h.p.topo.App, claims)
	if err != nil {
		return fmt.Errorf("processor: committed offsets of group %s: %w", h.p.topo.App, err)
	}
	for tp, next := range ours {
		committed := int64(-1)
		if b := group.GetBlock(tp.topic, tp.part); b != nil {
			committed = b.Offset
		}
		if next <= committed {
			continue
		}
		hwm, err := h.client.GetOffset(tp.topic, tp.part, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("processor: end of %s/%d: %w", tp.topic, tp.part, err)
		}
		if next > hwm {
			h.p.cfg.logger.Warn("recorded position is beyond the end of its partition (was the topic recreated?); using the consumer group's offset",
				"topic", tp.topic, "partition", tp.part, "position", next, "high_water_mark", hwm, "group_offset", committed)
			continue
		}
		h.p.cfg.logger.Warn("the consumer group's committed offset is behind the application's own record of its progress; resuming at the record",
			"topic", tp.topic, "partition", tp.part, "group_offset", committed, "position", next)
		sess.MarkOffset(tp.topic, tp.part, next, "")
		h.p.count(func(s *Stats) { s.Resumed++ })
	}
	return nil
}

package processor

import (
	"context"
	"fmt"
	"sync"

	"github.com/stateloop/stateloop/internal/kafkaread"
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

func (p *Processor) positionPartition(part int32) int32 { return part % p.topo.PartitionCount() }

// positionsPart is the part of the input positions: written with every
// transaction, read when a session starts (not kept in the stores).
type positionsPart struct{}

func (positionsPart) flush(s *session, t *txn) {
	topic := string(s.p.topo.PositionsTopic())
	for in, parts := range t.offsets {
		for part, next := range parts {
			s.produce(&output{Topic: topic, Partition: s.p.positionPartition(part),
				Key: wire.AppendPositionKey(nil, in, part), Value: wire.AppendPosition(nil, next)})
		}
	}
}

func (positionsPart) write(*session, *txn, batches) error { return nil }

func (positionsPart) committed(*session, *txn) {}

func (positionsPart) changelogs(*Processor, *store, int32, *[]aside) []changelog { return nil }

// readPositions returns the recorded positions of the claimed input
// partitions that have one.
func (p *Processor) readPositions(ctx context.Context, cl cluster, claims map[string][]int32) (map[topicPart]int64, error) {
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
			found, err := p.readPositionPartition(ctx, cl, j, keys)
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
func (p *Processor) readPositionPartition(ctx context.Context, cl cluster, j int32, wanted map[topicPart]bool) (map[topicPart]int64, error) {
	topic := string(p.topo.PositionsTopic())
	start, _, lso, err := cl.ends(topic, j)
	if err != nil {
		return nil, err
	}
	for window := int64(positionsWindow); ; window *= 8 {
		from := max(start, lso-window)
		found := map[topicPart]int64{}
		_, err := cl.readCommitted(ctx, topic, j, from, lso, func(r kafkaread.Record) error {
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

// resumePositions calls mark for every claimed input partition whose
// recorded position is ahead of the consumer group's committed offset,
// with that position: the session starts there.
func (p *Processor) resumePositions(ctx context.Context, cl cluster, claims map[string][]int32, mark func(topic string, part int32, next int64)) error {
	ours, err := p.readPositions(ctx, cl, claims)
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	if len(ours) == 0 {
		return nil
	}
	group, err := cl.groupOffsets(p.topo.App, claims)
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	for tp, next := range ours {
		committed, ok := group[tp]
		if !ok {
			committed = -1
		}
		if next <= committed {
			continue
		}
		_, hwm, _, err := cl.ends(tp.topic, tp.part)
		if err != nil {
			return fmt.Errorf("processor: end of %s/%d: %w", tp.topic, tp.part, err)
		}
		if next > hwm {
			p.cfg.logger.Warn("recorded position is beyond the end of its partition (was the topic recreated?); using the consumer group's offset",
				"topic", tp.topic, "partition", tp.part, "position", next, "high_water_mark", hwm, "group_offset", committed)
			continue
		}
		p.cfg.logger.Warn("the consumer group's committed offset is behind the application's own record of its progress; resuming at the record",
			"topic", tp.topic, "partition", tp.part, "group_offset", committed, "position", next)
		mark(tp.topic, tp.part, next)
		p.count(func(s *Stats) { s.Resumed++ })
	}
	return nil
}

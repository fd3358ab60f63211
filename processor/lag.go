package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// The consumer lag gauge (stateloop_consumer_lag_records) is what
// kafka-consumer-groups shows for the application's group: per partition
// this instance claims, the high water mark (log end offset) minus the
// group's committed offset, or minus the log start offset while the group
// has committed none (the group starts at the earliest offset). It counts
// every record not yet committed: records waiting to be fetched, records
// fetched and waiting for the session, records being processed in the open
// transaction, and transaction markers (so a partition written by
// transactions shows 1 when everything is processed, as Kafka's tool
// does). It is refreshed every lagInterval from the brokers, with or
// without new records, while a session runs; a partition the instance no
// longer claims has no value.

// watchLag refreshes the lag gauge of the partitions claimed by a session
// until ctx ends or stop is called; stop waits for the refresher and
// removes the gauge's values of these partitions. Without a metrics
// registry it does nothing.
func (p *Processor) watchLag(ctx context.Context, client sarama.Client, claims map[string][]int32) (stop func()) {
	if p.cfg.metrics == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.cfg.lagInterval)
		defer t.Stop()
		for {
			if err := p.refreshLag(client, claims); err != nil && ctx.Err() == nil {
				p.cfg.logger.Debug("consumer lag not refreshed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		for topic, parts := range claims {
			for _, part := range parts {
				p.m.LagGone(topic, part)
			}
		}
	}
}

// refreshLag sets the lag gauge of the claimed partitions: one offset
// fetch from the group coordinator, one list-offsets request per
// partition leader (two when a partition has no committed offset).
func (p *Processor) refreshLag(client sarama.Client, claims map[string][]int32) error {
	committed, err := committedOffsets(client, p.topo.App, claims)
	if err != nil {
		return err
	}
	ends, err := listOffsets(client, claims, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	var unstarted map[string][]int32
	for topic, parts := range claims {
		for _, part := range parts {
			if committed[topic][part] < 0 {
				if unstarted == nil {
					unstarted = make(map[string][]int32)
				}
				unstarted[topic] = append(unstarted[topic], part)
			}
		}
	}
	var starts map[string]map[int32]int64
	if unstarted != nil {
		if starts, err = listOffsets(client, unstarted, sarama.OffsetOldest); err != nil {
			return err
		}
	}
	for topic, parts := range claims {
		for _, part := range parts {
			from := committed[topic][part]
			if from < 0 {
				from = starts[topic][part]
			}
			p.m.Lag(topic, part, max(ends[topic][part]-from, 0))
		}
	}
	return nil
}

// committedOffsets returns the group's committed offset of each partition,
// -1 for a partition without one.
func committedOffsets(client sarama.Client, group string, parts map[string][]int32) (map[string]map[int32]int64, error) {
	coord, err := client.Coordinator(group)
	if err != nil {
		return nil, fmt.Errorf("coordinator of group %s: %w", group, err)
	}
	resp, err := coord.FetchOffset(sarama.NewOffsetFetchRequest(sarama.V2_1_0_0, group, parts))
	if err == nil && !errors.Is(resp.Err, sarama.ErrNoError) {
		err = resp.Err
	}
	if err != nil {
		if errors.Is(err, sarama.ErrNotCoordinatorForConsumer) {
			_ = client.RefreshCoordinator(group)
		}
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	out := make(map[string]map[int32]int64, len(parts))
	for topic, ps := range parts {
		out[topic] = make(map[int32]int64, len(ps))
		for _, part := range ps {
			b := resp.GetBlock(topic, part)
			switch {
			case b == nil:
				return nil, fmt.Errorf("committed offset of %s/%d: no answer for the partition", topic, part)
			case !errors.Is(b.Err, sarama.ErrNoError):
				return nil, fmt.Errorf("committed offset of %s/%d: %w", topic, part, b.Err)
			}
			out[topic][part] = b.Offset
		}
	}
	return out, nil
}

// listOffsets returns the offset at time ts (sarama.OffsetNewest: the high
// water mark; sarama.OffsetOldest: the log start) of each partition, with
// one request per partition leader.
func listOffsets(client sarama.Client, parts map[string][]int32, ts int64) (map[string]map[int32]int64, error) {
	reqs := make(map[*sarama.Broker]*sarama.OffsetRequest)
	for topic, ps := range parts {
		for _, part := range ps {
			leader, err := client.Leader(topic, part)
			if err != nil {
				return nil, fmt.Errorf("leader of %s/%d: %w", topic, part, err)
			}
			req := reqs[leader]
			if req == nil {
				req = &sarama.OffsetRequest{Version: 1} // read_uncommitted, as kafka-consumer-groups
				reqs[leader] = req
			}
			req.AddBlock(topic, part, ts, 1)
		}
	}
	out := make(map[string]map[int32]int64, len(parts))
	for leader, req := range reqs {
		resp, err := leader.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("list offsets at broker %s: %w", leader.Addr(), err)
		}
		for topic, ps := range parts {
			for _, part := range ps {
				b := resp.GetBlock(topic, part)
				if b == nil {
					continue // another leader's
				}
				if !errors.Is(b.Err, sarama.ErrNoError) {
					if errors.Is(b.Err, sarama.ErrNotLeaderForPartition) {
						_ = client.RefreshMetadata(topic)
					}
					return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, part, b.Err)
				}
				if out[topic] == nil {
					out[topic] = make(map[int32]int64)
				}
				out[topic][part] = b.Offset
			}
		}
	}
	for topic, ps := range parts {
		for _, part := range ps {
			if _, ok := out[topic][part]; !ok {
				return nil, fmt.Errorf("list offsets of %s/%d: no answer for the partition", topic, part)
			}
		}
	}
	return out, nil
}

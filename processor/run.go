package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/internal/wire"
)

func (p *Processor) saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-" + p.topo.App
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	return sc
}

// consumerConfig is the configuration of the consumer group client of the
// instance with the given id.
func (p *Processor) consumerConfig(instanceID string) *sarama.Config {
	sc := p.saramaConfig()
	// Static membership (KIP-345): the group knows the instance by its id,
	// so an instance that comes back (a restart, a kill -9) within the
	// session timeout takes its partitions back at once instead of waiting
	// for its old member to expire, and the others keep theirs. It also
	// replaces a member that the killed instance left behind on the
	// embedded broker (see processor/embedded). Two running instances must
	// never share an id: the second fences the first (see run).
	sc.Consumer.Group.InstanceId = instanceID
	// range balances each topic on its own, so the loop partitions (where
	// functions run) are spread evenly over the instances; a strategy over
	// all topics together could leave an instance with ingress partitions
	// only
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = false
	// offsets of a partition whose transaction is still open are reported
	// as unstable until it ends; wait for it rather than fail the session
	sc.Consumer.Offsets.Retry.Max = 60
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Group.Session.Timeout = p.cfg.sessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = p.cfg.sessionTimeout / 5
	sc.Consumer.Group.Rebalance.Timeout = p.cfg.sessionTimeout + 20*time.Second
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	sc.Consumer.Return.Errors = true
	return sc
}

func (p *Processor) producerConfig(transactionalID string) *sarama.Config {
	sc := p.saramaConfig()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Transaction.ID = transactionalID
	sc.Producer.Transaction.Timeout = p.cfg.txnTimeout
	sc.Producer.Transaction.Retry.Max = 50
	sc.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	// Kafka answers the next transaction's first AddPartitionsToTxn with
	// CONCURRENT_TRANSACTIONS while it still writes the last transaction's
	// commit markers, a few ms on a healthy broker; sarama then waits 20 ms
	// (docs/kafka.md). Retry soon, then back off exponentially to 100 ms.
	sc.Producer.Transaction.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(2*time.Millisecond<<min(retries, 6), 100*time.Millisecond)
	}
	sc.Producer.Retry.Max = 10
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	// linger a little so records go out in larger batches: fewer produce
	// requests per message for the broker, for a few ms per hop
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	sc.Producer.Flush.Messages = 1000
	sc.Net.MaxOpenRequests = 1
	return sc
}

// instanceID returns the configured instance id, else the one kept in the
// data directory (created on first use), else a random one.
func (p *Processor) instanceID() (string, error) {
	if p.cfg.instanceID != "" {
		return p.cfg.instanceID, nil
	}
	random := func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	if p.cfg.dataDir == "" {
		return random(), nil
	}
	path := filepath.Join(p.cfg.dataDir, "instance-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(p.cfg.dataDir, 0o755); err != nil {
		return "", fmt.Errorf("processor: data dir: %w", err)
	}
	id := random()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("processor: data dir: %w", err)
	}
	return id, nil
}

func (p *Processor) run(ctx context.Context) error {
	log := p.cfg.logger
	id, err := p.instanceID()
	if err != nil {
		return err
	}
	txnID := p.topo.App + "-" + id
	storeDir := ""
	if p.cfg.dataDir != "" {
		storeDir = filepath.Join(p.cfg.dataDir, "state", p.topo.App)
	}

	client, err := sarama.NewClient(p.brokers, p.consumerConfig(id))
	if err != nil {
		return fmt.Errorf("processor: connect to Kafka at %s: %w (is the broker running and reachable?)", strings.Join(p.brokers, ","), err)
	}
	defer client.Close()
	if err := p.ensureTopics(client); err != nil {
		return err
	}
	prod, err := newTxnProducer(p.brokers, p.producerConfig(txnID))
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	group, err := sarama.NewConsumerGroupFromClient(p.topo.App, client)
	if err != nil {
		prod.close()
		return fmt.Errorf("processor: consumer group %s: %w", p.topo.App, err)
	}
	go func() {
		for err := range group.Errors() {
			log.Warn("consumer group error", "err", err)
		}
	}()

	h := &groupHandler{p: p, client: client, producer: prod, txnID: txnID, storeDir: storeDir, stores: make(map[int32]*store)}
	defer h.closeStores()
	topics := []string{string(p.topo.LoopTopic())}
	for _, in := range p.topo.Ingresses {
		topics = append(topics, string(in.Topic))
	}
	log.Info("processor started", "app", p.topo.App, "instance", id, "partitions", p.topo.PartitionCount(), "brokers", strings.Join(p.brokers, ","))
	var runErr error
	for ctx.Err() == nil {
		err := group.Consume(ctx, topics, h)
		if h.fatal != nil {
			runErr = h.fatal
			break
		}
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			runErr = fmt.Errorf("processor: another instance with the instance id %q joined the consumer group %s and took this one's place: "+
				"give every running instance its own --instance-id (or its own --data-dir, which keeps one): %w", id, p.topo.App, err)
			break
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("consumer group session ended", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	if err := group.Close(); err != nil && runErr == nil {
		log.Warn("leave consumer group", "err", err)
	}
	if !errors.Is(runErr, sarama.ErrFencedInstancedId) {
		if err := leaveGroup(client, p.topo.App, id, h.memberID); err != nil {
			log.Warn("leave consumer group", "err", err)
		}
	}
	if err := h.producer.close(); err != nil {
		log.Warn("close producer", "err", err)
	}
	log.Info("processor stopped", "app", p.topo.App)
	return runErr
}

// leaveGroup takes the static member of this instance out of the group,
// so that the other instances take its partitions at once rather than a
// session timeout later: sarama's Close leaves the group only without an
// instance id. memberID, the member id of the last session, makes Kafka
// refuse to remove a member that another instance with the same id put
// in our place.
func leaveGroup(client sarama.Client, group, instanceID, memberID string) error {
	if memberID == "" {
		return nil // never joined
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return err
	}
	resp, err := coord.LeaveGroup(&sarama.LeaveGroupRequest{Version: 3, GroupId: group,
		Members: []sarama.MemberIdentity{{MemberId: memberID, GroupInstanceId: &instanceID}}})
	if err != nil {
		return err
	}
	errs := []error{}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		errs = append(errs, resp.Err)
	}
	for _, m := range resp.Members {
		// unknown: the member is gone already (its session expired)
		if !errors.Is(m.Err, sarama.ErrNoError) && !errors.Is(m.Err, sarama.ErrUnknownMemberId) {
			errs = append(errs, m.Err)
		}
	}
	return errors.Join(errs...)
}

// groupHandler runs the sessions of the consumer group. Its fields outlive
// a session: the producer, the local stores.
type groupHandler struct {
	p        *Processor
	client   sarama.Client
	producer *txnProducer
	txnID    string
	storeDir string
	memberID string // of the last session, for leaveGroup

	mu     sync.Mutex
	stores map[int32]*store
	fatal  error

	w *worker
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.memberID = sess.MemberID()
	claims := sess.Claims()
	loop := claims[string(h.p.topo.LoopTopic())]
	owned := make(map[int32]bool, len(loop))
	for _, part := range loop {
		owned[part] = true
	}
	h.mu.Lock()
	for part, st := range h.stores {
		if !owned[part] {
			st.close()
			delete(h.stores, part)
		}
	}
	h.mu.Unlock()
	if err := h.p.discoverTables(h.client); err != nil {
		return err
	}
	h.p.count(func(s *Stats) { s.Partitions = append([]int32(nil), loop...); s.Ready = len(loop) == 0 })
	h.p.m.recoveredPartitions.Set(0)
	h.p.cfg.logger.Info("partitions assigned", "generation", sess.GenerationID(), "loop_partitions", fmt.Sprint(loop))
	h.w = newWorker(h, sess, len(loop))
	go h.w.run()
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.w.stop()
	if err := h.w.fatalErr(); err != nil {
		h.fatal = err
	}
	return nil
}

func (h *groupHandler) storeFor(part int32) (*store, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st, ok := h.stores[part]; ok {
		return st, nil
	}
	st, err := openStore(h.storeDir, part)
	if err != nil {
		return nil, err
	}
	h.stores[part] = st
	return st, nil
}

func (h *groupHandler) closeStores() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for part, st := range h.stores {
		st.close()
		delete(h.stores, part)
	}
}

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	w := h.w
	if claim.Topic() == string(h.p.topo.LoopTopic()) {
		st, err := h.storeFor(claim.Partition())
		if err == nil {
			err = h.recover(sess.Context(), st, claim.Partition())
		}
		if err != nil {
			if sess.Context().Err() != nil {
				return nil
			}
			w.setFatal(fmt.Errorf("processor: recover partition %d: %w", claim.Partition(), err))
			return err
		}
		backlogEnd, err := lastCommittedOffset(sess.Context(), h.client, claim.Topic(), claim.Partition(), claim.InitialOffset())
		if err != nil {
			if sess.Context().Err() != nil {
				return nil
			}
			w.setFatal(fmt.Errorf("processor: read backlog of loop partition %d: %w", claim.Partition(), err))
			return err
		}
		if !w.deliver(item{ready: &readyPartition{id: claim.Partition(), store: st, backlogEnd: backlogEnd}}) {
			return nil
		}
	}
	// Returning ends the session: also when the worker ends it (a failed
	// transaction), not only when the claim's channel closes.
	lag := h.p.m.lag.WithLabelValues(claim.Topic(), strconv.Itoa(int(claim.Partition())))
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok || !w.deliver(item{msg: m}) {
				return nil
			}
			lag.Set(float64(max(claim.HighWaterMarkOffset()-m.Offset-1, 0)))
		case <-w.ctx.Done():
			return nil
		}
	}
}

// recover catches the local store of a loop partition up with the table
// partitions of every function type and with its timers partition.
func (h *groupHandler) recover(ctx context.Context, st *store, part int32) error {
	start := time.Now()
	var total int64
	for _, fn := range h.p.tableTypes() {
		n, err := h.recoverTopic(ctx, st, part, fn, string(h.p.topo.TableTopic(fn)),
			func(b *storeBatch, r committedRecord) error {
				b.put(fn, string(r.Key), r.Value)
				if r.Value != nil {
					if rec, err := wire.DecodeStateRecord(r.Value); err == nil {
						b.indexExpiry(fn, string(r.Key), rec)
					}
				}
				return nil
			},
			func() error { return st.wipe(fn) })
		if err != nil {
			return err
		}
		total += n
	}
	n, err := h.recoverTopic(ctx, st, part, timersFn, string(h.p.topo.TimersTopic()),
		func(b *storeBatch, r committedRecord) error {
			var due int64
			if r.Value != nil {
				t, err := wire.DecodeTimer(r.Value)
				if err != nil {
					h.p.cfg.logger.Warn("skipping an undecodable timer record", "partition", part, "offset", r.Offset, "err", err)
					return nil
				}
				due = t.DueUnixMilli
			}
			return b.putTimer(st, r.Key, due, r.Value, false, 0)
		},
		st.wipeTimers)
	if err != nil {
		return err
	}
	total += n
	n, err = h.recoverTopic(ctx, st, part, idempotencyFn, string(h.p.topo.IdempotencyTopic()),
		func(b *storeBatch, r committedRecord) error { b.putSeen(r.Key, r.Value); return nil },
		func() error { return st.wipePrefixes(idempotencyFn, 'k') })
	if err != nil {
		return err
	}
	total += n
	h.p.m.recoveredRecords.Add(float64(total))
	h.p.cfg.logger.Info("partition recovered", "partition", part, "records", total, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// recoverTopic applies the committed records of one partition of a
// changelog topic (a table, or the timers) to the store from its stored
// offset, rebuilding the store's part (wipe) if it does not belong to the
// topic as it is now.
func (h *groupHandler) recoverTopic(ctx context.Context, st *store, part int32, fn functions.TypeName, topic string,
	put func(*storeBatch, committedRecord) error, wipe func() error) (int64, error) {
	from, err := st.offset(fn)
	if err != nil {
		return 0, err
	}
	logStart, hwm, lso, err := partitionEnds(h.client, topic, part)
	if err != nil {
		return 0, err
	}
	id, err := topicID(h.client, topic)
	if err != nil {
		return 0, err
	}
	storedID, err := st.topicID(fn)
	if err != nil {
		return 0, err
	}
	recreated := storedID != "" && id != "" && storedID != id
	if from > hwm || recreated {
		// the store is ahead of the changelog or belongs to another
		// incarnation of the topic (deleted and created again, or
		// another cluster): rebuild it
		h.p.cfg.logger.Warn("local store does not belong to this changelog, rebuilding", "topic", topic, "partition", part,
			"stored_offset", from, "high_water_mark", hwm, "stored_topic_id", storedID, "topic_id", id)
		if err := wipe(); err != nil {
			return 0, err
		}
		from = 0
	}
	if from < logStart {
		from = logStart
	}
	var b storeBatch
	var n int64
	next, err := readCommitted(ctx, h.client, topic, part, from, lso, func(r committedRecord) error {
		if err := put(&b, r); err != nil {
			return err
		}
		n++
		if b.b.Len() >= 10000 {
			if err := st.write(&b); err != nil {
				return err
			}
			b.reset()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read %s/%d: %w", topic, part, err)
	}
	b.setOffset(fn, next)
	b.setTopicID(fn, id)
	if err := st.write(&b); err != nil {
		return 0, err
	}
	return n, nil
}

// topicID returns the Kafka topic id (KIP-516) of a topic as text, or ""
// when the broker does not report one.
func topicID(client sarama.Client, topic string) (string, error) {
	broker := client.LeastLoadedBroker()
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

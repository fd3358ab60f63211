package processor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

func (p *Processor) saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.ClientID = "stateloop-" + p.topo.App
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 200 * time.Millisecond
	return sc
}

// consumerConfig is the configuration of a consumer group client; a
// member of the group passes its group instance id, "" for none.
func (p *Processor) consumerConfig(groupInstanceID string) *sarama.Config {
	sc := p.saramaConfig()
	// Static membership (KIP-345): the group knows each stream thread by
	// its group instance id, so an instance that comes back (a restart, a
	// kill -9) within the session timeout takes its partitions back at
	// once instead of waiting for its old members to expire, and the others
	// keep theirs. It also replaces a member that the killed instance left
	// behind on the embedded broker (see package embedded). Two running
	// instances must never share an id: the second fences the first (see
	// runThread).
	sc.Consumer.Group.InstanceId = groupInstanceID
	// a member sets the stateloop assignor (assign.go) in runThread
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
	// Each of the transaction's retries asks for metadata; with the
	// client's ten metadata retries a commit or abort with the brokers
	// down took about 100 s before it failed. A failed transaction's
	// producer is replaced, which tries until the brokers are back.
	sc.Metadata.Retry.Max = 2
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
func (p *Processor) instanceID(dir *DataDir) (string, error) {
	if p.cfg.instanceID != "" {
		return p.cfg.instanceID, nil
	}
	if dir == nil {
		return newInstanceID(), nil
	}
	return dir.InstanceID()
}

func (p *Processor) run(ctx context.Context) error {
	log := p.cfg.logger
	dir, unlock, err := p.lockDataDir()
	if err != nil {
		return err
	}
	defer unlock()
	id, err := p.instanceID(dir)
	if err != nil {
		return err
	}
	storeDir := ""
	if p.cfg.dataDir != "" {
		storeDir = filepath.Join(p.cfg.dataDir, "state", p.topo.App)
	}

	client, err := sarama.NewClient(p.brokers, p.consumerConfig(""))
	if err != nil {
		return fmt.Errorf("processor: connect to Kafka at %s: %w (is the broker running and reachable?)", strings.Join(p.brokers, ","), err)
	}
	defer client.Close()
	if err := p.ensureTopics(saramaCluster{client: client}); err != nil {
		return err
	}
	stores := newStoreSet(storeDir)
	defer stores.closeAll()
	log.Info("processor started", "app", p.topo.App, "instance", id, "threads", p.cfg.threads, "data_dir", p.cfg.dataDir,
		"partitions", p.topo.PartitionCount(), "brokers", strings.Join(p.brokers, ","))

	// The first thread to fail stops the others.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var runErr error
	for k := range p.cfg.threads {
		wg.Go(func() {
			if err := p.runThread(ctx, k, id, stores, saramaCluster{client: client}); err != nil {
				errMu.Lock()
				if runErr == nil {
					runErr = err
				}
				errMu.Unlock()
				cancel(err)
			}
		})
	}
	wg.Wait()
	log.Info("processor stopped", "app", p.topo.App)
	return runErr
}

// transactionalID returns the transactional id of a stream thread. The
// first thread's is <app>-<instance>, as before threads existed, so that
// an instance restarted after an upgrade still fences its predecessor.
func (p *Processor) transactionalID(instance string, thread int) string {
	if thread == 0 {
		return p.topo.App + "-" + instance
	}
	return p.topo.App + "-" + instance + "-t" + strconv.Itoa(thread)
}

// groupInstanceID returns the group instance id (static membership) of a
// stream thread, named like its transactional id: the first thread's is
// the instance id.
func groupInstanceID(instance string, thread int) string {
	if thread == 0 {
		return instance
	}
	return instance + "-t" + strconv.Itoa(thread)
}

// runThread runs one stream thread: a member of the consumer group with
// its own client, transactional producer and sessions, until ctx ends or
// it cannot go on. Its standbys read through standbyCl, the process's
// client, not the thread's, whose connections carry the thread's
// consuming.
func (p *Processor) runThread(ctx context.Context, thread int, instance string, stores *storeSet, standbyCl cluster) error {
	log := p.cfg.logger.With("thread", thread)
	member := groupInstanceID(instance, thread)
	cc := p.consumerConfig(member)
	info := p.appInfo(instance, thread)
	cc.Consumer.Group.Member.UserData = info
	// the stateloop assignor, or range while members of an older version
	// that know only range are in the group
	asg := newAssignor(string(p.topo.LoopTopic()), p.cfg.standbys, member, info)
	cc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{asg, stableRange{sarama.NewBalanceStrategyRange(), info}}
	client, err := sarama.NewClient(p.brokers, cc)
	if err != nil {
		return fmt.Errorf("processor: connect to Kafka at %s: %w (is the broker running and reachable?)", strings.Join(p.brokers, ","), err)
	}
	defer client.Close()
	txnID := p.transactionalID(instance, thread)
	makeProducer := func() (producer, error) { return newSaramaProducer(p.brokers, p.producerConfig(txnID)) }
	prod, err := makeProducer()
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	prods := &producerSlot{p: prod, make: makeProducer, ctx: ctx}
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

	cl := saramaCluster{client: client}
	h := &groupHandler{p: p, thread: thread, client: client, cl: cl, prods: prods, stores: stores, groupInstance: member,
		assignor: asg, standbys: newStandbys(p, standbyCl, stores, thread), ctx: ctx}
	topics := []string{string(p.topo.LoopTopic())}
	for _, in := range p.topo.Ingresses {
		topics = append(topics, string(in.Topic))
	}
	var runErr error
	for ctx.Err() == nil {
		err := group.Consume(ctx, topics, h)
		if h.fatal != nil {
			runErr = h.fatal
			break
		}
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			runErr = fmt.Errorf("processor: another instance with the instance id %q joined the consumer group %s and took this one's place: "+
				"give every running instance its own --instance-id (or its own --data-dir, which keeps one): %w", instance, p.topo.App, err)
			break
		}
		if errors.Is(err, sarama.ErrInvalidSessionTimeout) {
			// a setting no retry mends
			runErr = fmt.Errorf("processor: the broker refuses the session timeout %v: it must lie within the broker's "+
				"group.min.session.timeout.ms and group.max.session.timeout.ms (Kafka's defaults: 6s and 30m); "+
				"set one within them (processor.WithSessionTimeout; 10s by default), or change the broker's settings: %w", p.cfg.sessionTimeout, err)
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
		if err := leaveGroup(client, p.topo.App, member, h.memberID); err != nil {
			log.Warn("leave consumer group", "err", err)
		}
	}
	if err := prods.p.close(); err != nil {
		log.Warn("close producer", "err", err)
	}
	h.standbys.stopAll()
	p.standbysAssigned(thread, nil)
	stores.releaseExcept(thread, nil)
	p.assigned(thread, nil)
	return runErr
}

// leaveGroup takes the static member of a stream thread out of the group,
// so that the other members take its partitions at once rather than a
// session timeout later: sarama's Close leaves the group only without an
// instance id. memberID, the member id of the last session, makes Kafka
// refuse to remove a member that another instance with the same id put
// in our place.
func leaveGroup(client sarama.Client, group, groupInstanceID, memberID string) error {
	if memberID == "" {
		return nil // never joined
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		return err
	}
	resp, err := coord.LeaveGroup(&sarama.LeaveGroupRequest{Version: 3, GroupId: group,
		Members: []sarama.MemberIdentity{{MemberId: memberID, GroupInstanceId: &groupInstanceID}}})
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

// groupHandler runs the sessions of one stream thread's consumer group
// member on sarama. Its fields outlive a session: the producer, the local
// stores.
type groupHandler struct {
	p      *Processor
	thread int
	client sarama.Client
	cl     cluster
	prods  *producerSlot
	stores *storeSet
	fatal  error
	// memberID is the member id of the last session, for leaveGroup;
	// groupInstance the thread's group instance id (static membership)
	memberID      string
	groupInstance string

	s       *session
	stopLag func() // of the session's lag refresher (lag.go)

	// assignor is the member's (assign.go); standbys keeps the standby
	// partitions it names warm (standby.go) under ctx, the thread's
	assignor *assignor
	standbys *standbys
	ctx      context.Context
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.memberID = sess.MemberID()
	h.s, h.stopLag = nil, nil
	claims := sess.Claims()
	loop := claims[string(h.p.topo.LoopTopic())]
	owned := make(map[int32]bool, len(loop))
	for _, part := range loop {
		owned[part] = true
	}
	// first the standbys: a partition whose standby this thread kept goes
	// to its session, one it no longer keeps to the thread that needs it
	h.standbys.set(h.ctx, h.assignor.standbysOf(sess.GenerationID()), owned)
	h.p.standbysAssigned(h.thread, h.standbys.parts())
	h.stores.releaseExcept(h.thread, owned)
	h.standbys.start()
	h.stores.closeUnowned()
	if err := h.p.discoverTables(h.cl); err != nil {
		return err
	}
	err := h.p.resumePositions(sess.Context(), h.cl, claims, func(topic string, part int32, next int64) {
		sess.MarkOffset(topic, part, next, "")
	})
	if err != nil {
		return err
	}
	h.p.assigned(h.thread, loop)
	h.p.cfg.logger.Info("partitions assigned", "thread", h.thread, "generation", sess.GenerationID(), "loop_partitions", fmt.Sprint(loop),
		"standby_partitions", fmt.Sprint(h.standbys.parts()))
	meta := groupMeta{Group: h.p.topo.App, MemberID: sess.MemberID(), Generation: sess.GenerationID(), InstanceID: h.groupInstance}
	h.s = newSession(sess.Context(), h.p, h.thread, h.cl, h.prods, meta, len(loop))
	go h.s.run()
	h.stopLag = h.p.watchLag(sess.Context(), h.client, claims)
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	if h.s == nil {
		return nil // Setup failed; sarama retries
	}
	h.stopLag()
	h.s.stop()
	if err := h.s.fatalErr(); err != nil {
		h.fatal = err
	}
	return nil
}

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	s := h.s
	if claim.Topic() == string(h.p.topo.LoopTopic()) {
		storeFor := func(part int32) (*store, error) { return h.stores.acquire(sess.Context(), part, h.thread) }
		r, err := h.p.recoverPartition(sess.Context(), h.cl, storeFor, h.stores.takeAsides, claim.Partition(), claim.InitialOffset())
		if err != nil {
			if sess.Context().Err() != nil {
				return nil
			}
			s.setFatal(err)
			return err
		}
		if !s.deliver(item{ready: r}) {
			return nil
		}
	}
	// Returning ends the session: also when the session's cycle ends it (a
	// failed transaction), not only when the claim's channel closes.
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if !s.deliver(item{msg: h.p.consumed(m)}) {
				return nil
			}
		case <-s.ctx.Done():
			return nil
		}
	}
}

// recoverPartition opens the store of a loop partition, catches it up with
// the changelogs of every part, and finds the end of the partition's
// backlog (consumption starts at from).
// takeAsides, if not nil, returns the asides a standby of the partition
// found before.
func (p *Processor) recoverPartition(ctx context.Context, cl cluster, storeFor func(int32) (*store, error), takeAsides func(int32) []aside,
	part int32, from int64) (*readyPartition, error) {
	st, err := storeFor(part)
	var asides []aside
	if err == nil {
		err = p.recover(ctx, cl, st, part, &asides)
	}
	if err == nil && takeAsides != nil {
		// the table records a standby of this process left out
		asides = append(takeAsides(part), asides...)
	}
	if err != nil {
		return nil, fmt.Errorf("processor: recover partition %d: %w", part, err)
	}
	backlogEnd, err := cl.lastCommittedOffset(ctx, string(p.topo.LoopTopic()), part, from)
	if err != nil {
		return nil, fmt.Errorf("processor: read backlog of loop partition %d: %w", part, err)
	}
	return &readyPartition{id: part, store: st, backlogEnd: backlogEnd, asides: asides}, nil
}

// recover catches the local store of a loop partition up with every
// changelog of every part. Records that do not decode are left out and
// added to asides.
func (p *Processor) recover(ctx context.Context, cl cluster, st *store, part int32, asides *[]aside) error {
	start := time.Now()
	total, err := p.catchUp(ctx, cl, st, part, asides, false)
	if err != nil {
		return err
	}
	p.m.RecoveryRecords(total)
	p.count(func(s *Stats) { s.RecoveryRecords += total })
	p.cfg.logger.Info("partition recovered", "partition", part, "records", total, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// catchUp applies the committed records of every changelog of a loop
// partition to its store from the offsets the store records, and returns
// how many it read. It asks for the ends and topic ids of all the
// changelogs at once (prefetchEnds). quick (a standby's catch-up) skips a
// changelog whose last stable offset the store has reached without
// looking at its topic id: the takeover's recovery checks that.
func (p *Processor) catchUp(ctx context.Context, cl cluster, st *store, part int32, asides *[]aside, quick bool) (int64, error) {
	var logs []changelog
	for _, pt := range theParts {
		logs = append(logs, pt.changelogs(p, st, part, asides)...)
	}
	known := prefetchEnds(cl, logs, part)
	var total int64
	for _, c := range logs {
		n, err := p.recoverTopic(ctx, cl, st, part, c, known, quick)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// recoverTopic applies the committed records of one partition of a
// changelog to the store from its stored offset up to its last stable
// offset, rebuilding the store's part of it (wipe) if it does not belong
// to the topic as it is now. The ends and the topic id come from known
// when catchUp asked for them with the other changelogs' (the zero
// changelogEnds asks for them here). quick: see catchUp.
func (p *Processor) recoverTopic(ctx context.Context, cl cluster, st *store, part int32, c changelog, known changelogEnds, quick bool) (int64, error) {
	from, err := st.offset(c.name)
	if err != nil {
		return 0, err
	}
	logStart, hwm, lso, err := known.endsOf(cl, c.topic, part)
	if err != nil {
		return 0, err
	}
	if quick && from == lso && from >= logStart {
		return 0, nil
	}
	id, err := known.idOf(cl, c.topic)
	if err != nil {
		return 0, err
	}
	storedID, err := st.topicID(c.name)
	if err != nil {
		return 0, err
	}
	recreated := storedID != "" && id != "" && storedID != id
	if from > hwm || recreated {
		// the store is ahead of the changelog or belongs to another
		// incarnation of the topic (deleted and created again, or
		// another cluster): rebuild it
		p.cfg.logger.Warn("local store does not belong to this changelog, rebuilding", "topic", c.topic, "partition", part,
			"stored_offset", from, "high_water_mark", hwm, "stored_topic_id", storedID, "topic_id", id)
		if err := c.wipe(); err != nil {
			return 0, err
		}
		from = 0
	}
	if from < logStart {
		from = logStart
	}
	var b storeBatch
	var n int64
	next, err := cl.readCommitted(ctx, c.topic, part, from, lso, func(r kafkaread.Record) error {
		if err := c.put(&b, r); err != nil {
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
		return 0, fmt.Errorf("read %s/%d: %w", c.topic, part, err)
	}
	b.setOffset(c.name, next)
	b.setTopicID(c.name, id)
	if err := st.write(&b); err != nil {
		return 0, err
	}
	return n, nil
}

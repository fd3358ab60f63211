package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// rawSide is a hand-written exactly-once consume-transform-produce loop:
// a read_committed consumer group and one transactional producer. For each
// input record it writes one output record (the input value and a count
// per key, kept in memory only), and commits the consumed offsets in the
// transaction with AddOffsetsToTxnWithGroupMetadata and CommitTxn when the
// transaction is CommitInterval old or has CommitCount records — the
// commit policy of the processor. Its sarama settings are the processor's,
// except that it does not ask for the acknowledgement of every record
// (Return.Successes), which it does not need.
type rawSide struct {
	b        *bench
	group    string
	in, out  string
	txnID    string
	client   sarama.Client
	cg       sarama.ConsumerGroup
	prod     sarama.AsyncProducer
	ncommits atomic.Int64
	clock    commitClock

	ready     chan struct{}
	readyOnce sync.Once
	fail      chan error
	failOnce  sync.Once

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	prodErrs []error
}

func newRawSide(b *bench) *rawSide {
	base := "bench-" + b.runID + "-raw"
	return &rawSide{
		b: b, group: base, in: base + "-in", out: base + "-out", txnID: base + "-txn",
		ready: make(chan struct{}), fail: make(chan error, 1),
	}
}

func (s *rawSide) topics() (string, string) { return s.in, s.out }

// consumerConfig and producerConfig are the processor's settings.
func (s *rawSide) consumerConfig() *sarama.Config {
	sc := saramaConfig()
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = false
	sc.Consumer.Offsets.Retry.Max = 60
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Group.Session.Timeout = 10 * time.Second
	sc.Consumer.Group.Heartbeat.Interval = 2 * time.Second
	sc.Consumer.Group.Rebalance.Timeout = 30 * time.Second
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	sc.Consumer.Return.Errors = true
	return sc
}

func (s *rawSide) producerConfig() *sarama.Config {
	sc := saramaConfig()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Transaction.ID = s.txnID
	sc.Producer.Transaction.Timeout = 15 * time.Second
	sc.Producer.Transaction.Retry.Max = 50
	sc.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	// as the processor does: retry a CONCURRENT_TRANSACTIONS answer soon
	// (docs/kafka.md), so the baseline is no slower than it needs to be
	sc.Producer.Transaction.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(2*time.Millisecond<<min(retries, 6), 100*time.Millisecond)
	}
	sc.Producer.Retry.Max = 10
	sc.Producer.Return.Successes = false
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Producer.Flush.MaxMessages = 0
	sc.Net.MaxOpenRequests = 1
	return sc
}

func (s *rawSide) start(ctx context.Context) error {
	client, err := sarama.NewClient(s.b.brokers, s.consumerConfig())
	if err != nil {
		return fmt.Errorf("bench: raw: %w", err)
	}
	prod, err := sarama.NewAsyncProducer(s.b.brokers, s.producerConfig())
	if err != nil {
		client.Close()
		return fmt.Errorf("bench: raw: transactional producer: %w", err)
	}
	cg, err := sarama.NewConsumerGroupFromClient(s.group, client)
	if err != nil {
		prod.Close()
		client.Close()
		return fmt.Errorf("bench: raw: consumer group: %w", err)
	}
	s.client, s.prod, s.cg = client, prod, cg
	go func() {
		for e := range prod.Errors() {
			s.mu.Lock()
			s.prodErrs = append(s.prodErrs, e)
			s.mu.Unlock()
		}
	}()
	go func() {
		for err := range cg.Errors() {
			s.b.cfg.Logger.Warn("raw consumer group error", "err", err)
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	h := &rawHandler{s: s}
	go func() {
		defer close(s.done)
		for runCtx.Err() == nil {
			err := cg.Consume(runCtx, []string{s.in}, h)
			if h.fatal != nil {
				s.setFailed(h.fatal)
				return
			}
			if err != nil && runCtx.Err() == nil {
				s.setFailed(fmt.Errorf("consumer group session ended: %w", err))
				return
			}
		}
	}()
	select {
	case <-s.ready:
		return nil
	case err := <-s.fail:
		return fmt.Errorf("bench: raw: %w", err)
	case <-time.After(time.Minute):
		return errors.New("bench: raw: the consumer group did not start within a minute")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *rawSide) setFailed(err error) {
	s.failOnce.Do(func() { s.fail <- err })
}

func (s *rawSide) stop() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	<-s.done
	s.cancel = nil
	var errs []error
	if err := s.cg.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.prod.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.client.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *rawSide) commits() int64 { return s.ncommits.Load() }

// commitTimes returns the time its commits took so far, from
// AddOffsetsToTxn to the end of CommitTxn (see commitTimer).
func (s *rawSide) commitTimes() commitTimes { return s.clock.read() }

func (s *rawSide) written() []TopicOffsets {
	return []TopicOffsets{{Role: "output", Topic: s.out}}
}

func (s *rawSide) failed() <-chan error { return s.fail }

// rawHandler runs the sessions of the group; like the processor, one
// goroutine (the loop) does all the work of a session, fed by the claims.
type rawHandler struct {
	s     *rawSide
	loop  *rawLoop
	fatal error
}

func (h *rawHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.loop = &rawLoop{s: h.s, sess: sess, items: make(chan *sarama.ConsumerMessage, 1024), stopped: make(chan struct{}), counts: map[string]int64{}}
	go h.loop.run()
	h.s.readyOnce.Do(func() { close(h.s.ready) })
	return nil
}

func (h *rawHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	<-h.loop.stopped
	if h.loop.err != nil {
		h.fatal = h.loop.err
	}
	return nil
}

func (h *rawHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	l := h.loop
	for m := range claim.Messages() {
		select {
		case l.items <- m:
		case <-l.ctx().Done():
			return nil
		}
	}
	return nil
}

type rawLoop struct {
	s       *rawSide
	sess    sarama.ConsumerGroupSession
	items   chan *sarama.ConsumerMessage
	stopped chan struct{}
	err     error

	counts   map[string]int64
	inTxn    bool
	txnStart time.Time
	pending  int
	offsets  map[int32]int64
}

func (l *rawLoop) ctx() context.Context { return l.sess.Context() }

func (l *rawLoop) run() {
	defer close(l.stopped)
	cfg := l.s.b.cfg
	ticker := time.NewTicker(max(cfg.CommitInterval/4, time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-l.ctx().Done():
			if l.inTxn && l.err == nil {
				l.commit()
			}
			return
		case m := <-l.items:
			if l.err != nil || l.ctx().Err() != nil {
				continue
			}
			l.process(m)
			if l.pending >= cfg.CommitCount {
				l.commit()
			}
		case <-ticker.C:
			if l.inTxn && time.Since(l.txnStart) >= cfg.CommitInterval {
				l.commit()
			}
		}
	}
}

func (l *rawLoop) process(m *sarama.ConsumerMessage) {
	prod := l.s.prod
	if !l.inTxn {
		if err := prod.BeginTxn(); err != nil {
			l.setErr(fmt.Errorf("begin transaction: %w", err))
			return
		}
		l.inTxn, l.txnStart, l.pending = true, time.Now(), 0
		l.offsets = make(map[int32]int64)
	}
	burn(l.s.b.work)
	n := l.counts[string(m.Key)] + 1
	l.counts[string(m.Key)] = n
	prod.Input() <- &sarama.ProducerMessage{
		Topic: l.s.out,
		Key:   sarama.ByteEncoder(m.Key),
		Value: sarama.ByteEncoder(outputValue(m.Value, n)),
	}
	l.offsets[m.Partition] = m.Offset + 1
	l.pending++
}

func (l *rawLoop) commit() {
	prod := l.s.prod
	offsets := make([]*sarama.PartitionOffsetMetadata, 0, len(l.offsets))
	for p, off := range l.offsets {
		offsets = append(offsets, &sarama.PartitionOffsetMetadata{Partition: p, Offset: off})
	}
	meta := sarama.NewConsumerGroupMetadataFromSession(l.sess, l.s.group, nil)
	start := time.Now()
	if err := prod.AddOffsetsToTxnWithGroupMetadata(map[string][]*sarama.PartitionOffsetMetadata{l.s.in: offsets}, meta); err != nil {
		l.setErr(fmt.Errorf("add offsets to transaction: %w", err))
		return
	}
	if err := prod.CommitTxn(); err != nil {
		l.setErr(fmt.Errorf("commit transaction: %w", err))
		return
	}
	l.s.mu.Lock()
	perr := errors.Join(l.s.prodErrs...)
	l.s.mu.Unlock()
	if perr != nil {
		l.setErr(fmt.Errorf("transaction committed with failed records: %w", perr))
		return
	}
	l.s.clock.Commit(time.Since(start))
	l.s.ncommits.Add(1)
	l.inTxn = false
}

// setErr fails the raw side: the bench measures, it does not recover.
func (l *rawLoop) setErr(err error) {
	if l.err == nil {
		l.err = err
		l.s.setFailed(err)
	}
	if l.inTxn {
		_ = l.s.prod.AbortTxn()
		l.inTxn = false
	}
}

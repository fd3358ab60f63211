package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor/remote"
)

// item is what claims hand to a session: a consumed record, or the news
// that a loop partition has recovered its state.
type item struct {
	msg   *record
	ready *readyPartition
}

type readyPartition struct {
	id    int32
	store *store
	// backlogEnd is the offset of the last committed record of the loop
	// partition at assignment, or -1 if there was none to process
	backlogEnd int64
	// asides are the table records recovery could not decode
	asides []aside
}

// partition is a loop partition a session owns and has recovered: its
// local store, the gate of direct deliveries, the timers due soon.
type partition struct {
	id     int32
	store  *store
	gate   gate
	timers timerQueue
}

// producerSlot holds a thread's transactional producer, which a fenced
// or failed one is replaced with.
type producerSlot struct {
	p    producer
	make func() (producer, error)
	// ctx is the thread's: replace tries until it ends (a broker that is
	// down, restarting, comes back)
	ctx context.Context
}

// replaceBackoff bounds the wait between two tries of replace.
const replaceBackoff = 5 * time.Second

// replace closes the producer and makes a new one, trying again with a
// backoff while the brokers cannot be reached, until the thread stops.
func (ps *producerSlot) replace() error {
	_ = ps.p.close()
	ctx := ps.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	wait := 100 * time.Millisecond
	for {
		p, err := ps.make()
		if err == nil {
			ps.p = p
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processor: recreate producer: %w", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, replaceBackoff)
	}
}

// session runs the transaction cycle of one consumer group session. It
// is the only goroutine that invokes functions of its partitions, so
// there is never more than one invocation per address at a time.
type session struct {
	p      *Processor
	thread int
	cl     cluster
	prods  *producerSlot
	meta   groupMeta

	items   chan item
	ctx     context.Context // ends when the session ends or fails
	cancel  context.CancelCauseFunc
	stopped chan struct{}

	loopParts  int
	parts      map[int32]*partition
	cache      map[stateRef]wire.StateRecord // committed state, decoded
	partCounts map[string]int32

	// txn is the open transaction, nil when none is open
	txn *txn
	// poison holds consumed records whose output could never be written,
	// which go to the dead-letter topic when their transaction is
	// processed again
	poison map[RecordRef]poisoned
	// asides wait for a transaction that commits their dead letters
	asides    []aside
	lastSweep time.Time
	// keyless counts egress records without a key, to spread them
	keyless int
	// routedEarly holds, per loop partition not ready yet, the offset of
	// the last record this session routed to it
	routedEarly map[int32]int64

	// inboxes are the messages waiting for their address (inbox.go), as
	// the open transaction left them; parked are the addresses whose
	// inbox the retry pass delivers (not remote calls)
	inboxes map[functions.Address]*inbox
	parked  map[functions.Address]bool

	// Remote functions (WithRemoteFunctions): the batcher runs their
	// requests, at most one per address; remoteOut holds, per address,
	// the inbox entries of the calls handed to it, in order. Both are
	// replaced when a transaction fails.
	batcher    *remote.Batcher
	stopRemote context.CancelFunc
	remoteCtx  context.Context
	remoteOut  map[functions.Address][]*inboxEntry

	mu    sync.Mutex
	fatal error
}

func newSession(ctx context.Context, p *Processor, thread int, cl cluster, prods *producerSlot, meta groupMeta, loopParts int) *session {
	ctx, cancel := context.WithCancelCause(ctx)
	return &session{
		p: p, thread: thread, cl: cl, prods: prods, meta: meta,
		items:       make(chan item, 1024),
		ctx:         ctx,
		cancel:      cancel,
		stopped:     make(chan struct{}),
		loopParts:   loopParts,
		parts:       make(map[int32]*partition),
		cache:       make(map[stateRef]wire.StateRecord),
		partCounts:  make(map[string]int32),
		inboxes:     make(map[functions.Address]*inbox),
		parked:      make(map[functions.Address]bool),
		remoteOut:   make(map[functions.Address][]*inboxEntry),
		routedEarly: make(map[int32]int64),
	}
}

func (s *session) prod() producer { return s.prods.p }

// startRemote gives the session a new batcher for remote functions; the
// requests of an earlier one are cancelled and their results dropped.
func (s *session) startRemote() error {
	if s.p.cfg.remote == nil {
		return nil
	}
	s.dropRemote()
	clear(s.remoteOut)
	s.remoteCtx, s.stopRemote = context.WithCancel(context.Background())
	b, err := remote.NewBatcher(s.remoteCtx, remote.BatcherConfig{Route: s.p.cfg.remote, State: s.remoteState, OnCounts: remoteCounts(s.p.m)})
	if err != nil {
		return err
	}
	s.batcher = b
	return nil
}

// dropRemote cancels the requests of the batcher, if any, and drops its
// counts from the gauges; the spans of their calls end as aborted.
func (s *session) dropRemote() {
	if s.stopRemote != nil {
		s.stopRemote()
	}
	for _, entries := range s.remoteOut {
		for _, e := range entries {
			e.span.end(outcomeAborted, "")
			e.span = delivery{}
		}
	}
	if s.batcher != nil {
		s.batcher.Close()
	}
}

// isRemote reports whether a function type is served by a remote
// function.
func (s *session) isRemote(fn functions.TypeName) bool {
	return s.p.cfg.remote != nil && s.p.cfg.remote(fn) != nil
}

// submit hands the call of an inbox entry to the batcher.
func (s *session) submit(e *inboxEntry) {
	e.submitted = true
	addr := e.env.Target
	s.remoteOut[addr] = append(s.remoteOut[addr], e)
	e.span = s.p.tr.invocation(s.ctx, e.env, "remote", e.attempts+1)
	tc := e.span.trace()
	s.batcher.Submit(addr, remote.Call{Caller: e.env.Caller, Argument: e.env.Argument, TraceParent: tc.Parent, TraceState: tc.State})
}

// remoteState is the state of an address as a remote request carries it.
func (s *session) remoteState(a functions.Address) (map[string]driver.StoredValue, error) {
	rec, err := s.state(stateRef{part: partitionFor(a.ID, s.p.topo.PartitionCount()), fn: a.Type, id: a.ID})
	return driver.Unexpired(rec, s.p.cfg.now()), err
}

// deliver hands an item to the session; false means the session is over.
func (s *session) deliver(it item) bool {
	select {
	case s.items <- it:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *session) setFatal(err error) {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
	s.cancel(err)
}

func (s *session) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// stop waits for the session, which finishes once it has ended.
func (s *session) stop() { <-s.stopped }

func (s *session) run() {
	defer close(s.stopped)
	if err := s.startRemote(); err != nil {
		s.setFatal(err)
		return
	}
	defer s.dropRemote()
	// The timer fires when the open transaction reaches the commit
	// interval; armedFor is the start of the transaction it is set for.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var armedFor time.Time
	timerTicker := time.NewTicker(timerTick)
	defer timerTicker.Stop()
	for {
		if s.txn != nil && !s.txn.start.Equal(armedFor) {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(time.Until(s.txn.start.Add(s.p.cfg.commitInterval)))
			armedFor = s.txn.start
		}
		// With remote requests outstanding, completions are handled as
		// they come; new input waits while the batcher pushes back.
		items := s.items
		var completions <-chan remote.Completion
		if s.batcher != nil {
			completions = s.batcher.Completions()
			if s.batcher.Backpressure() {
				items = nil
			}
		}
		select {
		case <-s.ctx.Done():
			// The session is ending (rebalance or shutdown): commit what is
			// done while this member still owns its partitions.
			if s.txn != nil && s.fatalErr() == nil {
				s.commit()
			}
			return
		case it := <-items:
			s.take(it)
			// Regression: select picks a ready case at random, so under a
			// backlog the loop took one record per remote completion, and
			// each remote address got its calls one to three at a time
			// (0.32 HTTP requests per message in stateloop-bench --remote).
			// Records already waiting are taken first, up to itemBurst, so
			// that calls queue up behind their address's request and go out
			// in batches, as in StateFun; completions and timers wait for at
			// most itemBurst records.
			for range itemBurst - 1 {
				if s.batcher != nil && s.batcher.Backpressure() {
					break
				}
				select {
				case it := <-s.items:
					s.take(it)
					continue
				default:
				}
				break
			}
		case c := <-completions:
			// a completion of the current batcher (fail replaces it): its
			// effects join the open transaction, or a new one
			if s.ctx.Err() != nil {
				continue
			}
			t, err := s.begin()
			if err != nil {
				s.fail(err)
				continue
			}
			s.complete(t, c)
			s.deliverLocal(t)
			s.commitIfFull()
		case <-timerTicker.C:
			if s.ctx.Err() == nil {
				if err := s.fireDue(); err != nil {
					s.setFatal(fmt.Errorf("processor: delayed messages: %w", err))
				} else {
					s.commitIfFull()
				}
			}
			if s.ctx.Err() == nil {
				if err := s.retryParked(); err != nil {
					s.setFatal(fmt.Errorf("processor: parked addresses: %w", err))
				} else {
					s.commitIfFull()
				}
			}
			if s.ctx.Err() == nil && time.Since(s.lastSweep) >= sweepInterval {
				s.lastSweep = time.Now()
				if err := s.sweep(); err != nil {
					s.setFatal(fmt.Errorf("processor: expired state: %w", err))
				}
			}
		case <-timer.C:
			armedFor = time.Time{}
			if s.txn != nil && time.Since(s.txn.start) >= s.p.cfg.commitInterval {
				s.commit()
			}
		}
	}
}

// itemBurst is the most records the session takes in a row while more
// are waiting, before it looks at remote completions and its timers.
const itemBurst = 256

// take handles a consumed record or a recovered partition and commits if
// the transaction is full.
func (s *session) take(it item) {
	if s.ctx.Err() != nil {
		// Regression: select picks any ready case, so after a failed
		// transaction cancelled the session, later records of the same
		// partitions could still be processed and committed, skipping
		// the records of the failed transaction (a loss seen under
		// -race). Once the session is over, nothing more is processed.
		return
	}
	if err := s.handle(it); err != nil {
		s.fail(err)
		return
	}
	s.commitIfFull()
}

// commitIfFull commits the open transaction once it reached the commit
// count.
func (s *session) commitIfFull() {
	if s.txn != nil && s.txn.size() >= s.p.cfg.commitCount {
		s.commit()
	}
}

func (s *session) handle(it item) error {
	if it.ready != nil {
		return s.ready(it.ready)
	}
	t, err := s.begin()
	if err != nil {
		return err
	}
	m := it.msg
	t.consumed = append(t.consumed, m)
	if p, ok := s.poison[m.ref()]; ok {
		s.deadLetterValue(t, m, p.reason, nil, !p.dropValue)
		t.consume(m)
		return nil
	}
	if m.Topic == string(s.p.topo.LoopTopic()) {
		s.processLoop(t, m)
	} else {
		s.processIngress(t, m)
	}
	t.consume(m)
	s.deliverLocal(t)
	return nil
}

// ready takes a recovered loop partition into the session.
func (s *session) ready(r *readyPartition) error {
	// Regression: records this session routed to the partition while it
	// was being recovered came after the backlog found at assignment; the
	// gate did not wait for them, and direct deliveries overtook them.
	until := r.backlogEnd
	if early, ok := s.routedEarly[r.id]; ok {
		until = max(until, early)
	}
	pp := &partition{id: r.id, store: r.store, gate: gate{until: until, processed: -1}}
	s.parts[r.id] = pp
	if err := s.loadTimers(pp); err != nil {
		s.setFatal(fmt.Errorf("processor: load timers of partition %d: %w", r.id, err))
		return nil
	}
	if err := s.loadInboxes(pp); err != nil {
		s.setFatal(fmt.Errorf("processor: load inboxes of partition %d: %w", r.id, err))
		return nil
	}
	s.p.recovered(s.thread, len(s.parts), len(s.parts) == s.loopParts)
	if len(r.asides) > 0 {
		if s.txn != nil {
			s.deadLetterAsides(s.txn, r.asides)
		}
		s.asides = append(s.asides, r.asides...)
		_, err := s.begin()
		return err
	}
	return nil
}

// begin returns the open transaction, opening one if none is.
func (s *session) begin() (*txn, error) {
	if s.txn != nil {
		return s.txn, nil
	}
	if err := s.prod().begin(); err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	s.txn = newTxn(time.Now())
	s.deadLetterAsides(s.txn, s.asides)
	return s.txn, nil
}

// produce hands an output of the open transaction to the producer.
func (s *session) produce(o *output) { s.prod().send(o) }

// commit ends the open transaction: it writes the staged changes of the
// parts, adds the consumed offsets, commits, and then writes the stores.
// Any failure aborts the transaction and processes its input again.
func (s *session) commit() {
	t := s.txn
	// Remote calls still running are in their addresses' inboxes: the
	// commit does not wait for them. Messages not yet delivered locally
	// take the loop topic.
	s.flushLocal(t)
	for _, pt := range theParts {
		pt.flush(s, t)
	}
	var err error
	if f := s.p.cfg.faults; f != nil && f.BeforeCommit != nil {
		err = f.BeforeCommit()
	}
	var acks []acked
	if err == nil {
		start := time.Now()
		acks, err = s.prod().commit(t.offsets, s.meta)
		if err == nil {
			s.p.m.Commit(time.Since(start))
		}
	}
	if err != nil {
		s.fail(fmt.Errorf("processor: commit: %w", err))
		return
	}
	if err := s.writeStores(t, acks); err != nil {
		s.setFatal(fmt.Errorf("processor: write local store: %w", err))
		return
	}
	s.asides = nil
	s.txn = nil
	s.p.count(func(s *Stats) { s.Commits++ })
	if f := s.p.cfg.faults; f != nil && f.Committed != nil {
		f.Committed(t.refs())
	}
}

// writeStores writes a committed transaction to the local stores, one
// batch per partition with the changelog offsets its outputs reached,
// and then to what the session keeps in memory.
func (s *session) writeStores(t *txn, acks []acked) error {
	b := make(batches)
	for _, pt := range theParts {
		if err := pt.write(s, t, b); err != nil {
			return err
		}
	}
	type storeRef struct {
		part int32
		name functions.TypeName
	}
	next := make(map[storeRef]int64)
	for _, a := range acks {
		if a.out.store != "" {
			k := storeRef{a.out.Partition, a.out.store}
			next[k] = max(next[k], a.offset+1)
		}
		if a.out.routed {
			if pp := s.parts[a.out.Partition]; pp != nil {
				pp.gate.until = max(pp.gate.until, a.offset)
			} else {
				// the partition is still being recovered: its gate,
				// made when it is ready, must wait for this record too
				s.routedEarly[a.out.Partition] = max(s.routedEarly[a.out.Partition], a.offset)
			}
		}
	}
	for k, off := range next {
		b.of(k.part).setOffset(k.name, off)
	}
	for part, sb := range b {
		pp := s.parts[part]
		if pp == nil {
			return fmt.Errorf("partition %d has no local store", part)
		}
		if err := pp.store.write(sb); err != nil {
			return err
		}
	}
	for _, pt := range theParts {
		pt.committed(s, t)
	}
	return nil
}

// fail handles a failed transaction: abort it, drop it and process its
// input again in a new transaction. A fenced or otherwise unusable
// producer is replaced and the session ends, so the group re-assigns
// partitions and consumption restarts at the committed offsets.
func (s *session) fail(cause error) {
	s.p.count(func(s *Stats) { s.Aborts++ })
	s.p.m.Abort()
	log := s.p.cfg.logger
	abortErr := s.prod().abort()
	s.notePoison()
	var replay []*record
	if s.txn != nil {
		replay = s.txn.consumed
	}
	s.txn = nil
	// results of remote requests of the failed transaction are dropped;
	// the replay sends its calls again
	if err := s.startRemote(); err != nil {
		s.setFatal(err)
		return
	}
	// timers fired in the failed transaction left memory but not the
	// store; inboxes are as the last commit left them, and their remote
	// calls go to the new batcher
	for _, pp := range s.parts {
		if err := s.loadTimers(pp); err != nil {
			s.setFatal(fmt.Errorf("processor: load timers of partition %d: %w", pp.id, err))
			return
		}
	}
	if err := s.reloadInboxes(); err != nil {
		s.setFatal(fmt.Errorf("processor: %w", err))
		return
	}
	if abortErr != nil || s.prod().fatal() || errors.Is(cause, errFenced) || s.ctx.Err() != nil {
		log.Warn("transaction failed; restarting the session", "err", cause, "abort_err", abortErr)
		if err := s.prods.replace(); err != nil {
			s.setFatal(err)
			return
		}
		s.cancel(fmt.Errorf("transaction failed: %w", cause))
		return
	}
	log.Warn("transaction aborted; processing its input again", "err", cause, "records", len(replay))
	for _, m := range replay {
		if err := s.handle(item{msg: m}); err != nil {
			s.fail(err)
			return
		}
	}
}

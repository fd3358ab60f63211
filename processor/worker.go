package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// record is a consumed record.
type record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: the record has no key
	Value     []byte // nil: a tombstone
}

// consumed converts a record of sarama's consumer.
func consumed(m *sarama.ConsumerMessage) *record {
	return &record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
}

// item is what claims hand to the worker: a consumed record, or the news
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

// aside is a changelog record that recovery left out of the local store
// because it does not decode; it goes to the dead-letter topic in the
// worker's next transaction.
type aside struct {
	rec    *record
	reason string
	target functions.Address
}

type stateRef struct {
	part int32
	fn   functions.TypeName
	id   string
}

// worker runs the transaction cycle of one consumer group session. It is
// the only goroutine that invokes functions, so there is never more than
// one invocation per address at a time.
type worker struct {
	h    *groupHandler
	p    *Processor
	sess sarama.ConsumerGroupSession

	items   chan item
	ctx     context.Context // ends when the session ends or the worker fails
	cancel  context.CancelCauseFunc
	stopped chan struct{}

	loopParts  int
	parts      map[int32]*store
	gates      map[int32]*gate
	cache      map[stateRef]wire.StateRecord // committed state, decoded
	partCounts map[string]int32

	// the open transaction
	inTxn    bool
	txnStart time.Time
	pending  []*record
	offsets  map[string]map[int32]int64
	overlay  map[stateRef]wire.StateRecord // nil record: cleared address
	dirty    []stateRef
	produced int

	// Output records that can never be produced (too large, say) would
	// fail every retry of their transaction. current is the consumed
	// record being processed; sources maps each record sent in the open
	// transaction to the consumed record it came from (writers does the
	// same for the changelog records written at commit time); poison holds
	// consumed records whose output failed that way, which go to the
	// dead-letter topic when their transaction is replayed.
	current *record
	sources map[*sarama.ProducerMessage]*record
	writers map[stateRef]*record
	poison  map[RecordRef]poisoned

	// Remote functions (WithRemoteFunctions): the batcher runs their
	// requests, at most one per address; remoteSrc holds, per address, the
	// consumed record of each call submitted and not yet completed, in
	// order. Both are replaced when a transaction fails.
	batcher    *remote.Batcher
	stopRemote context.CancelFunc
	remoteCtx  context.Context
	remoteSrc  map[functions.Address][]*record

	// Delayed messages: the in-memory timers of each ready partition, and
	// the open transaction's timer writes by key, in order.
	timers       map[int32]*timerQueue
	timerOverlay map[string]*pendingTimer
	timerOrder   []string
	// timers fired in the open transaction
	firedInTxn int
	// idempotency keys seen in the open transaction, in order
	idemOverlay map[string]idemEntry
	idemOrder   []string
	// expiry index entries swept in the open transaction, per partition
	swept     map[int32][][]byte
	lastSweep time.Time
	// asides wait for a transaction that commits their dead letters
	asides []aside

	mu    sync.Mutex
	fatal error
}

func newWorker(h *groupHandler, sess sarama.ConsumerGroupSession, loopParts int) *worker {
	ctx, cancel := context.WithCancelCause(sess.Context())
	return &worker{
		h: h, p: h.p, sess: sess,
		items:      make(chan item, 1024),
		ctx:        ctx,
		cancel:     cancel,
		stopped:    make(chan struct{}),
		loopParts:  loopParts,
		parts:      make(map[int32]*store),
		gates:      make(map[int32]*gate),
		cache:      make(map[stateRef]wire.StateRecord),
		partCounts: make(map[string]int32),
		timers:     make(map[int32]*timerQueue),
	}
}

// startRemote gives the worker a new batcher for remote functions; the
// requests of an earlier one are cancelled and their results dropped.
func (w *worker) startRemote() error {
	if w.p.cfg.remote == nil {
		return nil
	}
	w.dropRemote()
	w.remoteCtx, w.stopRemote = context.WithCancel(context.Background())
	b, err := remote.NewBatcher(w.remoteCtx, remote.BatcherConfig{Route: w.p.cfg.remote, State: w.remoteState, OnCounts: w.p.m.setRemote})
	if err != nil {
		return err
	}
	w.batcher, w.remoteSrc = b, make(map[functions.Address][]*record)
	return nil
}

// dropRemote cancels the requests of the batcher, if any, and drops its
// counts from the gauges.
func (w *worker) dropRemote() {
	if w.stopRemote != nil {
		w.stopRemote()
	}
	if w.batcher != nil {
		w.batcher.Close()
	}
}

// remoteState is the state of an address as a remote request carries it.
func (w *worker) remoteState(a functions.Address) (map[string]functions.StoredValue, error) {
	part := partitionFor(a.ID, w.p.topo.PartitionCount())
	st := w.parts[part]
	if st == nil {
		return nil, fmt.Errorf("partition %d of %s is not owned by this instance", part, a)
	}
	rec, err := w.state(st, stateRef{part: part, fn: a.Type, id: a.ID})
	return functions.Unexpired(rec, w.p.cfg.now()), err
}

// deliver hands an item to the worker; false means the session is over.
func (w *worker) deliver(it item) bool {
	select {
	case w.items <- it:
		return true
	case <-w.ctx.Done():
		return false
	}
}

func (w *worker) setFatal(err error) {
	w.mu.Lock()
	if w.fatal == nil {
		w.fatal = err
	}
	w.mu.Unlock()
	w.cancel(err)
}

func (w *worker) fatalErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fatal
}

// stop waits for the worker, which finishes once the session has ended.
func (w *worker) stop() { <-w.stopped }

func (w *worker) run() {
	defer close(w.stopped)
	if err := w.startRemote(); err != nil {
		w.setFatal(err)
		return
	}
	defer w.dropRemote()
	// The timer fires when the open transaction reaches the commit
	// interval; armedFor is the start of the transaction it is set for.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var armedFor time.Time
	timerTicker := time.NewTicker(timerTick)
	defer timerTicker.Stop()
	for {
		if w.inTxn && !w.txnStart.Equal(armedFor) {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(time.Until(w.txnStart.Add(w.p.cfg.commitInterval)))
			armedFor = w.txnStart
		}
		// With remote requests outstanding, completions are handled as
		// they come; new input waits while the batcher pushes back.
		items := w.items
		var completions <-chan remote.Completion
		if w.batcher != nil {
			completions = w.batcher.Completions()
			if w.batcher.Backpressure() {
				items = nil
			}
		}
		select {
		case <-w.ctx.Done():
			// The session is ending (rebalance or shutdown): commit what is
			// done while this member still owns its partitions.
			if w.inTxn && w.fatalErr() == nil {
				w.commit()
			}
			return
		case it := <-items:
			if w.ctx.Err() != nil {
				// Regression: select picks any ready case, so after a failed
				// transaction cancelled the session, later records of the same
				// partitions could still be processed and committed, skipping
				// the records of the failed transaction (a loss seen under
				// -race). Once the session is over, nothing more is processed.
				continue
			}
			if err := w.handle(it); err != nil {
				w.recoverFrom(err)
				continue
			}
			if w.inTxn && w.txnSize() >= w.p.cfg.commitCount {
				w.commit()
			}
		case c := <-completions:
			// a completion of the current batcher belongs to the open
			// transaction (recoverFrom replaces the batcher)
			w.complete(c)
		case <-timerTicker.C:
			if w.ctx.Err() == nil {
				if err := w.fireDue(); err != nil {
					w.setFatal(fmt.Errorf("processor: delayed messages: %w", err))
				} else if w.inTxn && w.txnSize() >= w.p.cfg.commitCount {
					w.commit()
				}
			}
			if w.ctx.Err() == nil && time.Since(w.lastSweep) >= sweepInterval {
				w.lastSweep = time.Now()
				if err := w.sweep(); err != nil {
					w.setFatal(fmt.Errorf("processor: expired state: %w", err))
				}
			}
		case <-timer.C:
			armedFor = time.Time{}
			if w.inTxn && time.Since(w.txnStart) >= w.p.cfg.commitInterval {
				w.commit()
			}
		}
	}
}

func (w *worker) handle(it item) error {
	if it.ready != nil {
		w.parts[it.ready.id] = it.ready.store
		w.gates[it.ready.id] = &gate{until: it.ready.backlogEnd, processed: -1}
		if err := w.loadTimers(it.ready.id); err != nil {
			w.setFatal(fmt.Errorf("processor: load timers of partition %d: %w", it.ready.id, err))
			return nil
		}
		w.p.m.recoveredPartitions.Set(float64(len(w.parts)))
		if len(w.parts) == w.loopParts {
			w.p.count(func(s *Stats) { s.Ready = true })
		}
		if len(it.ready.asides) > 0 {
			if w.inTxn {
				w.deadLetterAsides(it.ready.asides)
			}
			w.asides = append(w.asides, it.ready.asides...)
			return w.begin()
		}
		return nil
	}
	if err := w.begin(); err != nil {
		return err
	}
	w.pending = append(w.pending, it.msg)
	m := it.msg
	if p, ok := w.poison[RecordRef{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}]; ok {
		w.current = m
		w.deadLetterValue(m, p.reason, nil, !p.dropValue)
		w.markConsumed(m)
		return nil
	}
	return w.process(m)
}

// txnSize is what counts towards the commit count: the records consumed
// in the open transaction and the timers it fired.
func (w *worker) txnSize() int { return len(w.pending) + w.firedInTxn }

// begin opens a transaction if none is open.
func (w *worker) begin() error {
	if w.inTxn {
		return nil
	}
	if err := w.h.producer.begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	w.inTxn, w.txnStart = true, time.Now()
	w.offsets = make(map[string]map[int32]int64)
	w.overlay = make(map[stateRef]wire.StateRecord)
	w.sources = make(map[*sarama.ProducerMessage]*record)
	w.writers = make(map[stateRef]*record)
	w.timerOverlay = make(map[string]*pendingTimer)
	w.swept = make(map[int32][][]byte)
	w.idemOverlay = make(map[string]idemEntry)
	w.deadLetterAsides(w.asides)
	return nil
}

// deadLetterAsides writes the table records that recovery left out to the
// dead-letter topic in the open transaction; a failed transaction writes
// them again in the next.
func (w *worker) deadLetterAsides(asides []aside) {
	w.current = nil
	for _, a := range asides {
		w.deadLetter(a.rec, a.reason, &a.target)
	}
}

// process handles one consumed record inside the open transaction.
func (w *worker) process(m *record) error {
	w.current = m
	if m.Topic == string(w.p.topo.LoopTopic()) {
		w.processLoop(m)
	} else {
		w.processIngress(m)
	}
	w.markConsumed(m)
	return nil
}

// markConsumed adds m's offset to the open transaction.
func (w *worker) markConsumed(m *record) {
	parts := w.offsets[m.Topic]
	if parts == nil {
		parts = make(map[int32]int64)
		w.offsets[m.Topic] = parts
	}
	parts[m.Partition] = m.Offset + 1
}

func (w *worker) processIngress(m *record) {
	var in topology.Ingress
	for _, x := range w.p.topo.Ingresses {
		if string(x.Topic) == m.Topic {
			in = x
		}
	}
	var msgs []functions.OutgoingMessage
	if in.Router != nil {
		var err error
		msgs, err = callRouter(in.Router, topology.Record{Topic: in.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
		if err != nil {
			w.deadLetter(m, fmt.Sprintf("ingress router failed: %v", err), nil)
			return
		}
	} else {
		if m.Key == nil {
			w.deadLetter(m, "ingress record has no key: the key is the function id; give the record a key or set a router for the ingress", nil)
			return
		}
		for _, t := range in.Targets {
			msgs = append(msgs, functions.OutgoingMessage{
				To:      functions.Address{Type: t, ID: string(m.Key)},
				Message: functions.NewMessage(in.ValueType, m.Value),
			})
		}
	}
	for _, out := range msgs {
		// targets of the topology are valid function types; only the id
		// (the record key) and what a router returns need checking
		var err error
		if in.Router != nil {
			err = out.To.Validate()
		} else if out.To.ID == "" {
			err = fmt.Errorf("functions: address %s has an empty id", out.To)
		}
		if err != nil {
			w.deadLetter(m, fmt.Sprintf("ingress record routed to an invalid address: %v", err), nil)
			return
		}
	}
	n := w.p.topo.PartitionCount()
	for _, out := range msgs {
		env := wire.Envelope{Target: out.To, Argument: out.Message}
		part := partitionFor(out.To.ID, n)
		if w.direct(part) {
			w.deliverTo(m, env, part)
			w.p.count(func(s *Stats) { s.Direct++ })
			continue
		}
		if g := w.gates[part]; g != nil {
			g.routedInTxn++
		}
		w.sendLoopRouted(env)
	}
	w.p.count(func(s *Stats) { s.Ingress++ })
}

func callRouter(r topology.Router, rec topology.Record) (msgs []functions.OutgoingMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return r(rec)
}

func (w *worker) processLoop(m *record) {
	if g := w.gates[m.Partition]; g != nil && m.Offset > g.processed {
		g.processed = m.Offset
	}
	env, err := wire.DecodeEnvelope(m.Value)
	if err != nil {
		w.deadLetter(m, fmt.Sprintf("undecodable message envelope: %v", err), nil)
		return
	}
	if want := partitionFor(env.Target.ID, w.p.topo.PartitionCount()); want != m.Partition {
		// written by a producer that partitions differently: move it to
		// the partition that owns the id's state
		w.sendLoop(env)
		return
	}
	if w.parts[m.Partition] == nil {
		w.setFatal(fmt.Errorf("processor: internal error: record of loop partition %d before its state was recovered", m.Partition))
		return
	}
	w.deliverTo(m, env, m.Partition)
}

// deliverTo invokes the function of env.Target, whose state lives in loop
// partition part, for a message that came with the consumed record m (a
// loop record, or an ingress record delivered directly). Failures send m
// to the dead-letter topic.
func (w *worker) deliverTo(m *record, env wire.Envelope, part int32) {
	target := env.Target
	st := w.parts[part]
	if target.Type == topology.HTTPCaller {
		// a reply that reached the loop topic (written by another client)
		w.send(w.replyRecord(env))
		return
	}
	if !w.p.topo.HasFunction(target.Type) {
		w.deadLetter(m, fmt.Sprintf("message to unknown function type %s", target.Type), &target)
		return
	}
	if !w.p.hasTable(target.Type) {
		// a type of one of the topology's namespaces, invoked for the
		// first time
		if err := w.p.ensureTable(w.h.client, target.Type); err != nil {
			w.deadLetter(m, fmt.Sprintf("message to %s: %v", target, err), &target)
			return
		}
	}
	if env.IdempotencyKey != "" {
		dup, err := w.duplicate(part, target, env.IdempotencyKey)
		if err != nil {
			w.setFatal(fmt.Errorf("processor: idempotency keys of partition %d: %w", part, err))
			return
		}
		if dup {
			w.p.count(func(s *Stats) { s.Duplicates++ })
			return
		}
	}
	if w.batcher != nil && w.p.cfg.remote(target.Type) != nil {
		w.remoteSrc[target] = append(w.remoteSrc[target], m)
		w.batcher.Submit(target, remote.Call{Caller: env.Caller, Argument: env.Argument})
		return
	}
	if _, ok := w.p.reg.Lookup(target.Type); !ok {
		w.deadLetter(m, fmt.Sprintf("message to unknown function type %s", target.Type), &target)
		return
	}
	ref := stateRef{part: part, fn: target.Type, id: target.ID}
	current, err := w.state(st, ref)
	if err != nil {
		w.deadLetter(m, fmt.Sprintf("stored state of %s does not decode: %v", target, err), &target)
		return
	}
	current = functions.Unexpired(current, w.p.cfg.now())
	inv := functions.Invocation{Target: target, Caller: env.Caller, Message: env.Argument, State: current}
	effects, err := w.invoke(inv)
	if err != nil {
		w.deadLetter(m, err.Error(), &target)
		return
	}
	if err := w.apply(m, target, ref, current, effects); err != nil {
		w.deadLetter(m, err.Error(), &target)
	}
}

// complete applies a finished remote request: its effects, or its error
// to the dead-letter topic with each of its calls' records. It then lets
// the batcher send the address's next batch.
func (w *worker) complete(c remote.Completion) {
	queue := w.remoteSrc[c.Address]
	srcs := queue[:len(c.Calls)]
	if len(queue) == len(c.Calls) {
		delete(w.remoteSrc, c.Address)
	} else {
		w.remoteSrc[c.Address] = queue[len(c.Calls):]
	}
	defer w.batcher.Done(c)
	target := c.Address
	fail := func(reason string) {
		for _, m := range srcs {
			w.current = m
			w.deadLetter(m, reason, &target)
		}
	}
	w.p.m.duration.WithLabelValues(string(target.Type), "remote").Observe(c.Took.Seconds())
	if c.Err != nil {
		w.p.m.failures.WithLabelValues(string(target.Type)).Inc()
		w.p.count(func(s *Stats) { s.Failures++ })
		fail(c.Err.Error()) // names the endpoint URL and the address
		return
	}
	// the reasons below come from the runtime; name the endpoint too, as
	// the client's errors do (a *remote.Client tells its URL)
	if at := w.remoteAt(target.Type); at != "" {
		inner := fail
		fail = func(reason string) { inner(reason + at) }
	}
	part := partitionFor(target.ID, w.p.topo.PartitionCount())
	ref := stateRef{part: part, fn: target.Type, id: target.ID}
	current, err := w.state(w.parts[part], ref)
	if err != nil {
		fail(fmt.Sprintf("stored state of %s does not decode: %v", target, err))
		return
	}
	current = functions.Unexpired(current, w.p.cfg.now())
	specs := make([]functions.StateInfo, len(c.Result.Specs))
	for i, s := range c.Result.Specs {
		specs[i] = functions.StateInfo{Name: s.Name, TypeName: s.TypeName, Expiration: s.Expiration}
	}
	w.p.learnExpirations(target.Type, specs)
	// the records of a batch share its output; the last one answers for it
	if err := w.apply(srcs[len(srcs)-1], target, ref, current, c.Result.Effects()); err != nil {
		fail(err.Error())
		return
	}
	w.p.count(func(s *Stats) { s.Invocations += int64(len(c.Calls)) - 1 })
	w.p.m.invocations.WithLabelValues(string(target.Type), "remote").Add(float64(len(c.Calls)))
}

// urlTeller is an invoker that tells its endpoint's URL, as
// *remote.Client does.
type urlTeller interface {
	URL(functions.TypeName) string
}

// remoteAt names the endpoint of a remote function type for error
// messages, as " (remote function at URL)", if its invoker tells its URL.
func (w *worker) remoteAt(t functions.TypeName) string {
	if ep, ok := w.p.cfg.remote(t).(urlTeller); ok {
		return " (remote function at " + ep.URL(t) + ")"
	}
	return ""
}

// applyState puts the state of an address after an invocation, made for
// the consumed record m, into the open transaction's overlay: current (the
// state the invocation saw) with its changes, the expiry of expiring values
// stamped. An invocation that changes nothing is not written, unless it
// moves an after-call expiry.
func (w *worker) applyState(m *record, ref stateRef, current wire.StateRecord, changes []functions.StateChange) {
	exps := w.p.expirations(ref.fn)
	if len(changes) == 0 && len(exps) == 0 {
		return
	}
	// A record from the overlay belongs to this transaction and may be
	// changed in place; a committed one (cache, store) is copied, since an
	// abort must find it unchanged. current has no expired values, so an
	// overlay record that had some is copied too.
	next, own := w.overlay[ref]
	if !own || next == nil || len(next) != len(current) {
		next = make(wire.StateRecord, len(current)+len(changes))
		for k, v := range current {
			next[k] = v
		}
	}
	written := make([]string, 0, len(changes))
	for _, c := range changes {
		if c.Deleted {
			delete(next, c.Name)
		} else {
			next[c.Name] = c.Value
			written = append(written, c.Name)
		}
	}
	if stamped := functions.StampExpiry(next, written, exps, w.p.cfg.now()); len(changes) == 0 && !stamped {
		return
	}
	if !own {
		w.dirty = append(w.dirty, ref)
	}
	w.writers[ref] = m
	if len(next) == 0 {
		next = nil
	}
	w.overlay[ref] = next
}

// dropSlowCalls sends the records of every remote call still running or
// queued to the dead-letter topic, and cancels those calls: they could not
// finish within the transaction.
func (w *worker) dropSlowCalls(timeout time.Duration) {
	for addr, srcs := range w.remoteSrc {
		target := addr
		reason := fmt.Sprintf("remote call to %s did not finish within the transaction timeout of %v", addr, timeout)
		reason += w.remoteAt(addr.Type) + "; make the endpoint answer faster, lower its call timeout, or raise the transaction timeout"
		seen := make(map[*record]bool)
		for _, m := range srcs {
			if !seen[m] {
				seen[m] = true
				w.current = m
				w.deadLetter(m, reason, &target)
			}
		}
	}
	if err := w.startRemote(); err != nil {
		w.setFatal(err)
	}
}

// apply adds the effects of an invocation of target, made for the consumed
// record m, to the open transaction: state into the overlay, messages to
// the loop topic, egress records. It changes nothing if the egress records
// are invalid.
func (w *worker) apply(m *record, target functions.Address, ref stateRef, current wire.StateRecord, effects functions.Effects) error {
	w.current = m
	egress, err := w.egressRecords(effects.Egress)
	if err != nil {
		return fmt.Errorf("invocation of %s sent an invalid egress record: %v", target, err)
	}
	if err := w.addDelayed(m, target, ref.part, effects.Delayed); err != nil {
		return fmt.Errorf("invocation of %s: delayed messages: %v", target, err)
	}
	w.applyState(m, ref, current, effects.State)
	caller := target
	for _, out := range effects.Messages {
		env := wire.Envelope{Target: out.To, Caller: &caller, Argument: out.Message}
		if out.To.Type == topology.HTTPCaller {
			w.send(w.replyRecord(env))
			continue
		}
		w.sendLoop(env)
	}
	for _, rec := range egress {
		w.send(rec)
	}
	w.p.count(func(s *Stats) { s.Invocations++; s.Egress += int64(len(egress)) })
	fn := string(target.Type)
	w.p.m.outgoing.WithLabelValues(fn, "message").Add(float64(len(effects.Messages)))
	w.p.m.outgoing.WithLabelValues(fn, "egress").Add(float64(len(egress)))
	w.p.m.outgoing.WithLabelValues(fn, "delayed").Add(float64(len(effects.Delayed)))
	return nil
}

// invoke calls the function, retrying failures that may be transient.
func (w *worker) invoke(inv functions.Invocation) (functions.Effects, error) {
	backoff := w.p.cfg.retryBackoff
	fn := string(inv.Target.Type)
	for attempt := 0; ; attempt++ {
		start := time.Now()
		effects, err := w.p.reg.Invoke(w.ctx, inv)
		w.p.m.duration.WithLabelValues(fn, "local").Observe(time.Since(start).Seconds())
		if err == nil {
			w.p.m.invocations.WithLabelValues(fn, "local").Inc()
			return effects, nil
		}
		w.p.m.failures.WithLabelValues(fn).Inc()
		w.p.count(func(s *Stats) { s.Failures++ })
		if functions.IsPermanent(err) || attempt >= w.p.cfg.retries || w.ctx.Err() != nil {
			return functions.Effects{}, err
		}
		w.p.cfg.logger.Warn("invocation failed, retrying", "function_type", inv.Target.Type, "function_id", inv.Target.ID, "attempt", attempt+1, "err", err)
		select {
		case <-time.After(backoff):
		case <-w.ctx.Done():
		}
		backoff *= 2
	}
}

// state returns the current values of an address: the open transaction's
// overlay, else the local store.
func (w *worker) state(st *store, ref stateRef) (wire.StateRecord, error) {
	if rec, ok := w.overlay[ref]; ok {
		return rec, nil
	}
	if rec, ok := w.cache[ref]; ok {
		return rec, nil
	}
	b, err := st.get(ref.fn, ref.id)
	if err != nil {
		return nil, err
	}
	var rec wire.StateRecord
	if b != nil {
		if rec, err = wire.DecodeStateRecord(b); err != nil {
			return nil, err
		}
	}
	w.remember(ref, rec)
	return rec, nil
}

// maxCached bounds the decoded committed state a worker keeps.
const maxCached = 100_000

// remember caches the committed state of an address. The cache holds only
// committed values (what the local store has), so an aborted transaction
// never needs to touch it; it lives as long as the session, in which this
// worker is the only writer of its partitions.
func (w *worker) remember(ref stateRef, rec wire.StateRecord) {
	if len(w.cache) >= maxCached {
		clear(w.cache)
	}
	w.cache[ref] = rec
}

func (w *worker) egressRecords(msgs []functions.EgressMessage) ([]*sarama.ProducerMessage, error) {
	var out []*sarama.ProducerMessage
	for _, em := range msgs {
		eg, ok := w.p.topo.Egress(em.Egress)
		if !ok {
			return nil, fmt.Errorf("unknown egress %s", em.Egress)
		}
		if em.Message.TypeName() != functions.KafkaRecordType.Name() {
			return nil, fmt.Errorf("egress %s takes %s messages, got %s", em.Egress, functions.KafkaRecordType.Name(), em.Message.TypeName())
		}
		rec, err := functions.KafkaRecordType.As(em.Message)
		if err != nil {
			return nil, err
		}
		topic := rec.Topic
		if topic == "" {
			if len(eg.Topics) == 0 {
				return nil, fmt.Errorf("egress %s writes to the topic each record names, and this record names none", em.Egress)
			}
			topic = string(eg.Topics[0])
		}
		if !eg.AnyTopic && !slices.Contains(eg.Topics, topology.Topic(topic)) {
			return nil, fmt.Errorf("egress %s does not write to topic %q", em.Egress, topic)
		}
		if what, ok := w.p.topo.Reserved(topology.Topic(topic)); ok {
			return nil, fmt.Errorf("egress %s: topic %q is %s; egress records never go to internal topics", em.Egress, topic, what)
		}
		pm := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(rec.Value)}
		n, err := w.partitions(topic)
		if err != nil {
			return nil, err
		}
		if rec.Key != "" {
			pm.Key = sarama.StringEncoder(rec.Key)
			pm.Partition = partitionFor(rec.Key, n)
		} else {
			pm.Partition = int32(w.produced) % n
		}
		out = append(out, pm)
	}
	return out, nil
}

func (w *worker) partitions(topic string) (int32, error) {
	if n, ok := w.partCounts[topic]; ok {
		return n, nil
	}
	ps, err := w.h.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	w.partCounts[topic] = int32(len(ps))
	return int32(len(ps)), nil
}

func (w *worker) sendLoop(env wire.Envelope) {
	w.send(w.loopRecord(env))
}

// replyRecord is the replies topic record of a reply to an HTTP request:
// in the partition of the HTTP instance, keyed by the caller's id.
func (w *worker) replyRecord(env wire.Envelope) *sarama.ProducerMessage {
	instance, _, _ := strings.Cut(env.Target.ID, "/")
	return &sarama.ProducerMessage{
		Topic:     string(w.p.topo.RepliesTopic()),
		Partition: partitionFor(instance, w.p.topo.PartitionCount()),
		Key:       sarama.StringEncoder(env.Target.ID),
		Value:     sarama.ByteEncoder(wire.AppendEnvelope(nil, env)),
	}
}

// loopRecord is the loop topic record of a message.
func (w *worker) loopRecord(env wire.Envelope) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic:     string(w.p.topo.LoopTopic()),
		Partition: partitionFor(env.Target.ID, w.p.topo.PartitionCount()),
		Key:       sarama.StringEncoder(env.Target.ID),
		Value:     sarama.ByteEncoder(wire.AppendEnvelope(nil, env)),
	}
}

func (w *worker) send(m *sarama.ProducerMessage) {
	if w.current != nil && w.sources != nil {
		w.sources[m] = w.current
	}
	w.produced++
	w.h.producer.send(m)
}

// commit ends the open transaction: it writes the changed state to the
// table topics, adds the consumed offsets, commits, and then applies the
// state to the local stores. Any failure aborts and replays.
func (w *worker) commit() {
	if w.batcher != nil && w.batcher.Busy() {
		// The consumed offsets cover every call submitted: wait for their
		// results, which belong in this transaction, but not so long that
		// Kafka aborts the transaction for its age.
		timeout := w.p.cfg.txnTimeout
		deadline := w.txnStart.Add(timeout - min(timeout/4, 5*time.Second))
		ctx, cancel := context.WithDeadline(w.remoteCtx, deadline)
		err := w.batcher.Drain(ctx, w.complete)
		cancel()
		switch {
		case err != nil && w.remoteCtx.Err() == nil:
			w.dropSlowCalls(timeout)
		case err != nil:
			w.recoverFrom(fmt.Errorf("processor: remote functions: %w", err))
			return
		}
	}
	w.sendTimers()
	w.sendIdempotencyKeys()
	w.sendPositions()
	encoded := make([][]byte, len(w.dirty))
	for i, ref := range w.dirty {
		w.current = w.writers[ref]
		var value sarama.Encoder
		if b := encodeState(w.overlay[ref]); b != nil {
			encoded[i] = b
			value = sarama.ByteEncoder(b)
		}
		w.send(&sarama.ProducerMessage{
			Topic:     string(w.p.topo.TableTopic(ref.fn)),
			Partition: ref.part,
			Key:       sarama.StringEncoder(ref.id),
			Value:     value,
			Metadata:  ref,
		})
	}
	offsets := make(map[string][]*sarama.PartitionOffsetMetadata, len(w.offsets))
	for topic, parts := range w.offsets {
		for part, off := range parts {
			offsets[topic] = append(offsets[topic], &sarama.PartitionOffsetMetadata{Partition: part, Offset: off})
		}
	}
	var err error
	if f := w.p.cfg.faults; f != nil && f.BeforeCommit != nil {
		err = f.BeforeCommit()
	}
	var acked []*sarama.ProducerMessage
	if err == nil {
		start := time.Now()
		meta := sarama.NewConsumerGroupMetadataFromSession(w.sess, w.p.topo.App, nil)
		acked, err = w.h.producer.commit(offsets, meta)
		w.p.m.commitDuration.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		w.recoverFrom(fmt.Errorf("processor: commit: %w", err))
		return
	}
	if err := w.applyToStores(acked, encoded); err != nil {
		w.setFatal(fmt.Errorf("processor: write local store: %w", err))
		return
	}
	w.asides = nil
	w.p.count(func(s *Stats) { s.Commits++ })
	w.p.m.commits.Inc()
	if f := w.p.cfg.faults; f != nil && f.Committed != nil {
		refs := make([]RecordRef, len(w.pending))
		for i, m := range w.pending {
			refs[i] = RecordRef{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
		}
		f.Committed(refs)
	}
	w.resetTxn()
}

// encodeState encodes the values of an address, sorted by name; nil for
// an address without values (a tombstone).
func encodeState(rec wire.StateRecord) []byte {
	if len(rec) == 0 {
		return nil
	}
	names := make([]string, 0, len(rec))
	for n := range rec {
		names = append(names, n)
	}
	slices.Sort(names)
	return wire.AppendStateRecord(nil, rec, names)
}

// applyToStores writes the committed overlay to the local stores, one batch
// per partition with the new table offsets.
func (w *worker) applyToStores(acked []*sarama.ProducerMessage, encoded [][]byte) error {
	batches := make(map[int32]*storeBatch)
	batch := func(part int32) *storeBatch {
		b := batches[part]
		if b == nil {
			b = &storeBatch{}
			batches[part] = b
		}
		return b
	}
	for i, ref := range w.dirty {
		batch(ref.part).put(ref.fn, ref.id, encoded[i])
		batch(ref.part).indexExpiry(ref.fn, ref.id, w.overlay[ref])
		w.remember(ref, w.overlay[ref])
	}
	for part, keys := range w.swept {
		for _, k := range keys {
			batch(part).b.Delete(k)
		}
	}
	type tableRef struct {
		part int32
		fn   functions.TypeName
	}
	if err := w.timersToStores(batch); err != nil {
		return err
	}
	w.idempotencyToStores(batch)
	next := make(map[tableRef]int64)
	for _, m := range acked {
		var k tableRef
		switch ref := m.Metadata.(type) {
		case stateRef:
			k = tableRef{ref.part, ref.fn}
		case timerRef:
			k = tableRef{ref.part, timersFn}
		case idemRef:
			k = tableRef{ref.part, idempotencyFn}
		default:
			continue
		}
		if m.Offset+1 > next[k] {
			next[k] = m.Offset + 1
		}
	}
	for k, off := range next {
		batch(k.part).setOffset(k.fn, off)
	}
	for _, m := range acked {
		if r, ok := m.Metadata.(routedRef); ok {
			if g := w.gates[r.part]; g != nil && m.Offset > g.until {
				g.until = m.Offset
			}
		}
	}
	for part, b := range batches {
		st := w.parts[part]
		if st == nil {
			return fmt.Errorf("partition %d has no local store", part)
		}
		if err := st.write(b); err != nil {
			return err
		}
	}
	w.queueCommittedTimers()
	return nil
}

func (w *worker) resetTxn() {
	w.current, w.sources, w.writers = nil, nil, nil
	for _, g := range w.gates {
		g.routedInTxn = 0
	}
	w.inTxn = false
	w.pending = w.pending[:0]
	w.offsets = nil
	w.overlay = nil
	w.dirty = w.dirty[:0]
	w.timerOverlay = nil
	w.timerOrder = w.timerOrder[:0]
	w.swept = nil
	w.idemOverlay = nil
	w.idemOrder = w.idemOrder[:0]
	w.firedInTxn = 0
}

// recoverFrom handles a failed transaction: abort it, drop its state
// overlay and process its input again in a new transaction. A fenced or
// otherwise unusable producer is replaced and the session ends, so the
// group re-assigns partitions and consumption restarts at the committed
// offsets.
func (w *worker) recoverFrom(cause error) {
	w.p.count(func(s *Stats) { s.Aborts++ })
	w.p.m.aborts.Inc()
	log := w.p.cfg.logger
	abortErr := w.h.producer.abort()
	w.notePoison()
	replay := slices.Clone(w.pending)
	w.resetTxn()
	// results of remote requests of the failed transaction are dropped;
	// the replay sends its calls again
	if err := w.startRemote(); err != nil {
		w.setFatal(err)
		return
	}
	// timers fired in the failed transaction left memory but not the store
	for part := range w.timers {
		if err := w.loadTimers(part); err != nil {
			w.setFatal(fmt.Errorf("processor: load timers of partition %d: %w", part, err))
			return
		}
	}
	if abortErr != nil || w.h.producer.fatal() || errors.Is(cause, sarama.ErrProducerFenced) || w.ctx.Err() != nil {
		log.Warn("transaction failed; restarting the session", "err", cause, "abort_err", abortErr)
		if err := w.replaceProducer(); err != nil {
			w.setFatal(err)
			return
		}
		w.cancel(fmt.Errorf("transaction failed: %w", cause))
		return
	}
	log.Warn("transaction aborted; processing its input again", "err", cause, "records", len(replay))
	for _, m := range replay {
		if err := w.handle(item{msg: m}); err != nil {
			w.recoverFrom(err)
			return
		}
	}
}

func (w *worker) replaceProducer() error {
	_ = w.h.producer.close()
	prod, err := newTxnProducer(w.p.brokers, w.p.producerConfig(w.h.txnID))
	if err != nil {
		return fmt.Errorf("processor: recreate producer: %w", err)
	}
	w.h.producer = prod
	return nil
}

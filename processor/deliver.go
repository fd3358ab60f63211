package processor

import (
	"fmt"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// processIngress routes an ingress record to its addresses: each message
// is delivered directly when its partition is owned here and its gate is
// open, else written to the loop topic.
func (s *session) processIngress(t *txn, m *record) {
	d := s.p.tr.ingress(s.ctx, m)
	msgs, err := s.p.topo.Route(topology.Record{Topic: topology.Topic(m.Topic), Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
	if err != nil {
		s.deadLetterFrom(t, d, m, err.Error(), nil)
		return
	}
	n := s.p.topo.PartitionCount()
	tc := d.trace()
	for _, out := range msgs {
		env := wire.Envelope{Target: out.To, Argument: out.Message, Trace: tc}
		part := partitionFor(out.To.ID, n)
		if s.direct(t, part) {
			s.deliverTo(t, m, env, part)
			s.p.count(func(s *Stats) { s.Direct++ })
			continue
		}
		s.sendLoopRouted(t, m, env)
	}
	d.end(outcomeOK, "")
	s.p.count(func(s *Stats) { s.Ingress++ })
}

// processLoop delivers a loop record's message.
func (s *session) processLoop(t *txn, m *record) {
	if pp := s.parts[m.Partition]; pp != nil && m.Offset > pp.gate.processed {
		pp.gate.processed = m.Offset
	}
	env, err := wire.DecodeEnvelope(m.Value)
	if err != nil {
		s.deadLetter(t, m, fmt.Sprintf("undecodable message envelope: %v", err), nil)
		return
	}
	// the loop topic carries the trace context in the record's headers
	env.Trace = m.trace
	if want := partitionFor(env.Target.ID, s.p.topo.PartitionCount()); want != m.Partition {
		// written by a producer that partitions differently: move it to
		// the partition that owns the id's state
		s.sendLoop(t, m, env)
		return
	}
	if s.parts[m.Partition] == nil {
		s.setFatal(fmt.Errorf("processor: internal error: record of loop partition %d before its state was recovered", m.Partition))
		return
	}
	s.deliverTo(t, m, env, m.Partition)
}

// deliverTo delivers a message to env.Target, whose state lives in loop
// partition part, for the consumed record m (a loop record, or an ingress
// record delivered directly): it invokes the function, or puts the
// message in the address's inbox (a remote call, an address with waiting
// messages, a type whose table is being created). Failures send m to the
// dead-letter topic.
func (s *session) deliverTo(t *txn, m *record, env wire.Envelope, part int32) {
	target := env.Target
	if target.Type == topology.HTTPCaller {
		// a reply that reached the loop topic (written by another client)
		s.produce(s.replyRecord(m, env))
		return
	}
	if !s.p.topo.HasFunction(target.Type) {
		s.refuse(t, m, env, fmt.Sprintf("message to unknown function type %s", target.Type))
		return
	}
	if err, bad := s.p.tableError(target.Type); bad {
		s.refuse(t, m, env, fmt.Sprintf("message to %s: %v", target, err))
		return
	}
	// a replay becomes the message it replays (control.go)
	var replay wire.Envelope
	isReplay := env.Control != nil && env.Control.Replay != nil
	if isReplay {
		var err error
		if replay, err = s.replayMessage(env); err != nil {
			s.refuse(t, m, env, err.Error())
			return
		}
	}
	if env.IdempotencyKey != "" {
		dup, err := s.duplicate(t, part, target, env.IdempotencyKey)
		if err != nil {
			s.setFatal(fmt.Errorf("processor: idempotency keys of partition %d: %w", part, err))
			return
		}
		if dup {
			s.p.tr.undelivered(s.ctx, env, outcomeDuplicate, "")
			s.p.count(func(s *Stats) { s.Duplicates++ })
			if env.Control != nil {
				s.answer(m, env, wire.ControlResult{Duplicate: true})
			}
			return
		}
	}
	if isReplay {
		s.markReplayed(m, env)
		env = replay
	}
	// a control record waits its turn behind the address's messages, but
	// is never a remote call
	remote := s.isRemote(target.Type) && env.Control == nil
	if remote || s.waiting(target) || !s.tableReady(target.Type) {
		if !remote {
			// a remote call's span starts when the call is submitted
			s.p.tr.undelivered(s.ctx, env, outcomeParked, "")
		}
		s.enqueue(t, part, env, m)
		return
	}
	s.invoke(t, m, env, part, nil)
}

// undeliverable dead-letters the consumed record m, which brought env, for
// a reason found before env.Target could be invoked (with the record's
// value or without it). The span of the delivery records the reason.
func (s *session) undeliverable(t *txn, m *record, env wire.Envelope, reason string, withValue bool) {
	target := env.Target
	s.deadLetterValue(t, m.traced(s.p.tr.undelivered(s.ctx, env, outcomeDeadLettered, reason)), reason, &target, withValue)
}

// deadLetterFrom dead-letters the consumed record src for a reason found
// in the delivery d: the dead letter carries d's trace context, and d ends
// as dead-lettered.
func (s *session) deadLetterFrom(t *txn, d delivery, src *record, reason string, target *functions.Address) {
	s.deadLetter(t, src.traced(d.trace()), reason, target)
	d.end(outcomeDeadLettered, reason)
}

// tableReady reports whether the table of a function type exists, or is
// known not to fit (its messages go to the dead-letter topic); for a type
// of a namespace invoked for the first time it starts creating the table,
// off the session's goroutine, and reports false meanwhile.
func (s *session) tableReady(fn functions.TypeName) bool {
	if s.p.hasTable(fn) {
		return true
	}
	if _, bad := s.p.tableError(fn); bad {
		return true
	}
	s.p.createTable(s.cl, fn)
	return false
}

// invokeLocal invokes the Go function of env.Target for a message that
// came with the consumed record src, once, and applies its effects. A
// failure that may be transient parks the address: the message waits in
// its inbox (e is its entry, nil when it has none yet) for another attempt
// after a backoff, until the retries are used up and it goes to the
// dead-letter topic with the error. It reports whether the message is
// done with: delivered or dead-lettered.
func (s *session) invokeLocal(t *txn, src *record, env wire.Envelope, part int32, e *inboxEntry) bool {
	target := env.Target
	attempts := int32(1)
	if e != nil {
		attempts = e.attempts + 1
	}
	d := s.p.tr.invocation(s.ctx, env, "local", attempts)
	if _, ok := s.p.reg.Lookup(target.Type); !ok {
		s.deadLetterFrom(t, d, src, fmt.Sprintf("message to unknown function type %s", target.Type), &target)
		return true
	}
	ref := stateRef{part: part, fn: target.Type, id: target.ID}
	current, err := s.state(ref)
	if err != nil {
		s.deadLetterFrom(t, d, src, fmt.Sprintf("stored state of %s does not decode: %v", target, err), &target)
		return true
	}
	current = driver.Unexpired(current, s.p.cfg.now())
	inv := driver.Invocation{Target: target, Caller: env.Caller, Message: env.Argument, State: current}
	start := time.Now()
	effects, err := driver.Invoke(d.context(s.ctx), s.p.reg, inv)
	s.p.m.Invocation(target.Type, "local", 1, time.Since(start), err)
	if err != nil {
		s.p.count(func(s *Stats) { s.Failures++ })
		if functions.IsPermanent(err) || attempts > int32(s.p.cfg.retries) {
			s.deadLetterFrom(t, d, src, err.Error(), &target)
			return true
		}
		backoff := s.retryBackoff(attempts)
		s.p.cfg.logger.Warn("invocation failed; the address waits for a retry", "function_type", target.Type, "function_id", target.ID,
			"attempt", attempts, "retry_in", backoff.String(), "err", err)
		if e == nil {
			e = s.enqueue(t, part, env, src)
		}
		e.attempts, e.next = attempts, s.p.cfg.now().Add(backoff)
		s.update(t, s.inboxes[target], e)
		d.end(outcomeFailed, err.Error())
		return false
	}
	if err := s.apply(t, src, target, ref, current, effects, d.trace()); err != nil {
		s.deadLetterFrom(t, d, src, err.Error(), &target)
		return true
	}
	d.end(outcomeOK, "")
	return true
}

// complete applies a finished remote request: its effects, or its error
// to the dead-letter topic with the records of each of its calls. Its
// calls leave the address's inbox, and the batcher may send the address's
// next batch.
func (s *session) complete(t *txn, c remote.Completion) {
	out := s.remoteOut[c.Address]
	entries := out[:len(c.Calls)]
	if len(out) == len(c.Calls) {
		delete(s.remoteOut, c.Address)
	} else {
		s.remoteOut[c.Address] = out[len(c.Calls):]
	}
	defer s.batcher.Done(c)
	ib := s.inboxes[c.Address]
	defer func() {
		for range entries {
			s.remove(t, ib)
		}
	}()
	t.delivered += len(entries)
	target := c.Address
	fail := func(reason string) {
		for _, e := range entries {
			s.deadLetterFrom(t, e.span, e.src, reason, &target)
			e.span = delivery{}
		}
	}
	if c.Err != nil {
		s.p.m.Invocation(target.Type, "remote", len(c.Calls), c.Took, c.Err)
		s.p.count(func(s *Stats) { s.Failures++ })
		fail(c.Err.Error()) // names the endpoint URL and the address
		return
	}
	// the reasons below come from the runtime; name the endpoint too, as
	// the client's errors do (a *remote.Client tells its URL)
	if at := s.remoteAt(target.Type); at != "" {
		inner := fail
		fail = func(reason string) { inner(reason + at) }
	}
	part := partitionFor(target.ID, s.p.topo.PartitionCount())
	ref := stateRef{part: part, fn: target.Type, id: target.ID}
	current, err := s.state(ref)
	if err != nil {
		fail(fmt.Sprintf("stored state of %s does not decode: %v", target, err))
		return
	}
	current = driver.Unexpired(current, s.p.cfg.now())
	s.p.learnExpirations(target.Type, c.Result.Specs)
	// the records of a batch share its output; the last one answers for
	// it, and it carries the trace context of the first, which the
	// request carried too
	if err := s.apply(t, entries[len(entries)-1].src, target, ref, current, c.Result.Effects(), entries[0].span.trace()); err != nil {
		fail(err.Error())
		return
	}
	for _, e := range entries {
		e.span.end(outcomeOK, "")
		e.span = delivery{}
	}
	s.p.count(func(s *Stats) { s.Invocations += int64(len(c.Calls)) - 1 })
	s.p.m.Invocation(target.Type, "remote", len(c.Calls), c.Took, nil)
}

// urlTeller is an invoker that tells its endpoint's URL, as
// *remote.Client does.
type urlTeller interface {
	URL(functions.TypeName) string
}

// remoteAt names the endpoint of a remote function type for error
// messages, as " (remote function at URL)", if its invoker tells its URL.
func (s *session) remoteAt(fn functions.TypeName) string {
	if ep, ok := s.p.cfg.remote(fn).(urlTeller); ok {
		return " (remote function at " + ep.URL(fn) + ")"
	}
	return ""
}

// apply adds the effects of an invocation of target, made for the consumed
// record src, to the transaction: state into its stage, messages to the
// loop topic, egress records; the messages and records carry the
// invocation's trace context tc. It changes nothing if the egress records
// are invalid.
func (s *session) apply(t *txn, src *record, target functions.Address, ref stateRef, current wire.StateRecord, effects driver.Effects, tc wire.Trace) error {
	egress, err := s.egressRecords(src, effects.Egress, tc)
	if err != nil {
		return fmt.Errorf("invocation of %s sent an invalid egress record: %v", target, err)
	}
	if err := s.addDelayed(t, src, target, ref.part, effects.Delayed, tc); err != nil {
		return fmt.Errorf("invocation of %s: delayed messages: %v", target, err)
	}
	s.applyState(t, src, ref, current, effects.State)
	caller := target
	for _, out := range effects.Messages {
		env := wire.Envelope{Target: out.To, Caller: &caller, Argument: out.Message, Trace: tc}
		if out.To.Type == topology.HTTPCaller {
			s.produce(s.replyRecord(src, env))
			continue
		}
		s.send(t, src, env)
	}
	for _, o := range egress {
		s.produce(o)
	}
	for _, r := range effects.DroppedReplies {
		s.p.cfg.logger.Debug("reply dropped: the message has no caller (it came from an ingress or stateloop send)",
			"function_type", target.Type, "function_id", target.ID, "type", string(r.TypeName()))
	}
	s.p.count(func(s *Stats) { s.Invocations++; s.Egress += int64(len(egress)) })
	s.p.m.Outgoing(target.Type, len(effects.Messages), len(egress), len(effects.Delayed))
	return nil
}

// egressRecords makes the output records of egress messages sent for the
// consumed record src, with the trace context tc.
func (s *session) egressRecords(src *record, msgs []functions.EgressMessage, tc wire.Trace) ([]*output, error) {
	var out []*output
	for _, em := range msgs {
		rec, err := s.p.topo.EgressRecord(em)
		if err != nil {
			return nil, err
		}
		topic := string(rec.Topic)
		o := &output{Topic: topic, Key: rec.Key, Value: rec.Value, Headers: traceHeaders(nil, tc), src: src}
		n, err := s.partitionCount(topic)
		if err != nil {
			return nil, err
		}
		if rec.Key != nil {
			o.Partition = partitionFor(string(rec.Key), n)
		} else {
			o.Partition = s.spread() % n
		}
		out = append(out, o)
	}
	return out, nil
}

// spread picks partitions for keyless egress records in turn.
func (s *session) spread() int32 {
	s.keyless++
	return int32(s.keyless & 0x7fffffff)
}

// partitionCount returns the partition count of a topic, asked once per
// session.
func (s *session) partitionCount(topic string) (int32, error) {
	if n, ok := s.partCounts[topic]; ok {
		return n, nil
	}
	n, err := s.cl.partitions(topic)
	if err != nil {
		return 0, err
	}
	s.partCounts[topic] = n
	return n, nil
}

// localMessage is a message a function sent to an address of its own
// session, to be delivered in the same transaction.
type localMessage struct {
	src  *record // the record it answers with: the message, as a loop record never written
	env  wire.Envelope
	part int32
}

// send sends a message a function sent while handling the consumed record
// src: in this transaction when its address is in a partition of this
// session whose gate is open (local delivery: no commit to wait for),
// else through the loop topic.
func (s *session) send(t *txn, src *record, env wire.Envelope) {
	part := partitionFor(env.Target.ID, s.p.topo.PartitionCount())
	if !s.direct(t, part) {
		s.sendLoopRouted(t, src, env)
		return
	}
	t.localSeq++
	loop := string(s.p.topo.LoopTopic())
	value, _ := messageValue(env)
	rec := &record{Topic: loop, Partition: part, Offset: -1, Key: []byte(env.Target.ID), Value: value, trace: env.Trace,
		poison: &RecordRef{Topic: loop, Partition: part, Offset: -t.localSeq}}
	t.local = append(t.local, localMessage{src: rec, env: env, part: part})
}

// localRoom is how far past the commit count a transaction goes on
// delivering local messages, as a multiple of the count: a chain of hops
// started in a transaction ends in it, but functions that message each
// other without end cannot keep a transaction open.
const localRoom = 4

// deliverLocal delivers the messages waiting for local delivery, in order.
// What is left when the transaction is past localRoom times the commit
// count takes the loop topic at commit.
func (s *session) deliverLocal(t *txn) {
	for len(t.local) > 0 && t.size() < localRoom*s.p.cfg.commitCount {
		m := t.local[0]
		t.local = t.local[1:]
		t.delivered++
		if p, ok := s.poison[m.src.ref()]; ok {
			s.undeliverable(t, m.src, m.env, p.reason, !p.dropValue)
			continue
		}
		s.deliverTo(t, m.src, m.env, m.part)
		s.p.count(func(s *Stats) { s.Local++ })
	}
}

// flushLocal writes the messages still waiting for local delivery to the
// loop topic, at commit time.
func (s *session) flushLocal(t *txn) {
	for _, m := range t.local {
		s.sendLoopRouted(t, m.src, m.env)
	}
	t.local = nil
}

// sendLoop writes a message to the loop topic for the consumed record src.
func (s *session) sendLoop(t *txn, src *record, env wire.Envelope) {
	s.produce(s.loopRecord(src, env))
}

// sendLoopRouted writes a message to the loop topic and remembers the
// record's offset after the commit: direct and local deliveries to its
// partition, if this session has it or gets it ready later, wait until the
// record is processed, so that they do not overtake it.
func (s *session) sendLoopRouted(t *txn, src *record, env wire.Envelope) {
	o := s.loopRecord(src, env)
	o.routed = true
	t.routed[o.Partition]++
	s.produce(o)
}

// replyRecord is the replies topic record of a reply to an HTTP request:
// in the partition of the HTTP instance, keyed by the caller's id.
func (s *session) replyRecord(src *record, env wire.Envelope) *output {
	instance, _, _ := strings.Cut(env.Target.ID, "/")
	value, headers := messageValue(env)
	return &output{
		Topic:     string(s.p.topo.RepliesTopic()),
		Partition: partitionFor(instance, s.p.topo.PartitionCount()),
		Key:       []byte(env.Target.ID),
		Value:     value,
		Headers:   headers,
		src:       src,
	}
}

// loopRecord is the loop topic record of a message.
func (s *session) loopRecord(src *record, env wire.Envelope) *output {
	value, headers := messageValue(env)
	return &output{
		Topic:     string(s.p.topo.LoopTopic()),
		Partition: partitionFor(env.Target.ID, s.p.topo.PartitionCount()),
		Key:       []byte(env.Target.ID),
		Value:     value,
		Headers:   headers,
		src:       src,
	}
}

// messageValue encodes a message for the loop or the replies topic, whose
// records carry its trace context as headers, not in the envelope.
func messageValue(env wire.Envelope) (value []byte, headers []header) {
	headers = traceHeaders(nil, env.Trace)
	env.Trace = wire.Trace{}
	return wire.AppendEnvelope(nil, env), headers
}

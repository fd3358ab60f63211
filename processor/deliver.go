package processor

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// processIngress routes an ingress record to its addresses: each message
// is delivered directly when its partition is owned here and its gate is
// open, else written to the loop topic.
func (s *session) processIngress(t *txn, m *record) {
	var in topology.Ingress
	for _, x := range s.p.topo.Ingresses {
		if string(x.Topic) == m.Topic {
			in = x
		}
	}
	var msgs []functions.OutgoingMessage
	if in.Router != nil {
		var err error
		msgs, err = callRouter(in.Router, topology.Record{Topic: in.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
		if err != nil {
			s.deadLetter(t, m, fmt.Sprintf("ingress router failed: %v", err), nil)
			return
		}
	} else {
		if m.Key == nil {
			s.deadLetter(t, m, "ingress record has no key: the key is the function id; give the record a key or set a router for the ingress", nil)
			return
		}
		for _, target := range in.Targets {
			msgs = append(msgs, functions.OutgoingMessage{
				To:      functions.Address{Type: target, ID: string(m.Key)},
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
			s.deadLetter(t, m, fmt.Sprintf("ingress record routed to an invalid address: %v", err), nil)
			return
		}
	}
	n := s.p.topo.PartitionCount()
	for _, out := range msgs {
		env := wire.Envelope{Target: out.To, Argument: out.Message}
		part := partitionFor(out.To.ID, n)
		if s.direct(t, part) {
			s.deliverTo(t, m, env, part)
			s.p.count(func(s *Stats) { s.Direct++ })
			continue
		}
		s.sendLoopRouted(t, m, env)
	}
	s.p.count(func(s *Stats) { s.Ingress++ })
}

func callRouter(r topology.Router, rec topology.Record) (msgs []functions.OutgoingMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return r(rec)
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

// deliverTo invokes the function of env.Target, whose state lives in loop
// partition part, for a message that came with the consumed record m (a
// loop record, or an ingress record delivered directly). Failures send m
// to the dead-letter topic.
func (s *session) deliverTo(t *txn, m *record, env wire.Envelope, part int32) {
	target := env.Target
	if target.Type == topology.HTTPCaller {
		// a reply that reached the loop topic (written by another client)
		s.produce(s.replyRecord(m, env))
		return
	}
	if !s.p.topo.HasFunction(target.Type) {
		s.deadLetter(t, m, fmt.Sprintf("message to unknown function type %s", target.Type), &target)
		return
	}
	if !s.p.hasTable(target.Type) {
		// a type of one of the topology's namespaces, invoked for the
		// first time
		if err := s.p.ensureTable(s.cl, target.Type); err != nil {
			s.deadLetter(t, m, fmt.Sprintf("message to %s: %v", target, err), &target)
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
			s.p.count(func(s *Stats) { s.Duplicates++ })
			return
		}
	}
	if s.batcher != nil && s.p.cfg.remote(target.Type) != nil {
		t.remote[target] = append(t.remote[target], m)
		s.batcher.Submit(target, remote.Call{Caller: env.Caller, Argument: env.Argument})
		return
	}
	if _, ok := s.p.reg.Lookup(target.Type); !ok {
		s.deadLetter(t, m, fmt.Sprintf("message to unknown function type %s", target.Type), &target)
		return
	}
	ref := stateRef{part: part, fn: target.Type, id: target.ID}
	current, err := s.state(ref)
	if err != nil {
		s.deadLetter(t, m, fmt.Sprintf("stored state of %s does not decode: %v", target, err), &target)
		return
	}
	current = functions.Unexpired(current, s.p.cfg.now())
	inv := functions.Invocation{Target: target, Caller: env.Caller, Message: env.Argument, State: current}
	effects, err := s.invoke(inv)
	if err != nil {
		s.deadLetter(t, m, err.Error(), &target)
		return
	}
	if err := s.apply(t, m, target, ref, current, effects); err != nil {
		s.deadLetter(t, m, err.Error(), &target)
	}
}

// complete applies a finished remote request: its effects, or its error
// to the dead-letter topic with each of its calls' records. It then lets
// the batcher send the address's next batch.
func (s *session) complete(t *txn, c remote.Completion) {
	queue := t.remote[c.Address]
	srcs := queue[:len(c.Calls)]
	if len(queue) == len(c.Calls) {
		delete(t.remote, c.Address)
	} else {
		t.remote[c.Address] = queue[len(c.Calls):]
	}
	defer s.batcher.Done(c)
	target := c.Address
	fail := func(reason string) {
		for _, m := range srcs {
			s.deadLetter(t, m, reason, &target)
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
	current = functions.Unexpired(current, s.p.cfg.now())
	specs := make([]functions.StateInfo, len(c.Result.Specs))
	for i, sp := range c.Result.Specs {
		specs[i] = functions.StateInfo{Name: sp.Name, TypeName: sp.TypeName, Expiration: sp.Expiration}
	}
	s.p.learnExpirations(target.Type, specs)
	// the records of a batch share its output; the last one answers for it
	if err := s.apply(t, srcs[len(srcs)-1], target, ref, current, c.Result.Effects()); err != nil {
		fail(err.Error())
		return
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

// dropSlowCalls sends the records of every remote call still running or
// queued to the dead-letter topic, and cancels those calls: they could not
// finish within the transaction.
func (s *session) dropSlowCalls(t *txn, timeout time.Duration) {
	for addr, srcs := range t.remote {
		target := addr
		reason := fmt.Sprintf("remote call to %s did not finish within the transaction timeout of %v", addr, timeout)
		reason += s.remoteAt(addr.Type) + "; make the endpoint answer faster, lower its call timeout, or raise the transaction timeout"
		seen := make(map[*record]bool)
		for _, m := range srcs {
			if !seen[m] {
				seen[m] = true
				s.deadLetter(t, m, reason, &target)
			}
		}
	}
	clear(t.remote)
	if err := s.startRemote(); err != nil {
		s.setFatal(err)
	}
}

// apply adds the effects of an invocation of target, made for the consumed
// record src, to the transaction: state into its stage, messages to the
// loop topic, egress records. It changes nothing if the egress records are
// invalid.
func (s *session) apply(t *txn, src *record, target functions.Address, ref stateRef, current wire.StateRecord, effects functions.Effects) error {
	egress, err := s.egressRecords(src, effects.Egress)
	if err != nil {
		return fmt.Errorf("invocation of %s sent an invalid egress record: %v", target, err)
	}
	if err := s.addDelayed(t, src, target, ref.part, effects.Delayed); err != nil {
		return fmt.Errorf("invocation of %s: delayed messages: %v", target, err)
	}
	s.applyState(t, src, ref, current, effects.State)
	caller := target
	for _, out := range effects.Messages {
		env := wire.Envelope{Target: out.To, Caller: &caller, Argument: out.Message}
		if out.To.Type == topology.HTTPCaller {
			s.produce(s.replyRecord(src, env))
			continue
		}
		s.sendLoop(t, src, env)
	}
	for _, o := range egress {
		s.produce(o)
	}
	s.p.count(func(s *Stats) { s.Invocations++; s.Egress += int64(len(egress)) })
	s.p.m.Outgoing(target.Type, len(effects.Messages), len(egress), len(effects.Delayed))
	return nil
}

// invoke calls the function, retrying failures that may be transient.
func (s *session) invoke(inv functions.Invocation) (functions.Effects, error) {
	backoff := s.p.cfg.retryBackoff
	for attempt := 0; ; attempt++ {
		start := time.Now()
		effects, err := s.p.reg.Invoke(s.ctx, inv)
		s.p.m.Invocation(inv.Target.Type, "local", 1, time.Since(start), err)
		if err == nil {
			return effects, nil
		}
		s.p.count(func(s *Stats) { s.Failures++ })
		if functions.IsPermanent(err) || attempt >= s.p.cfg.retries || s.ctx.Err() != nil {
			return functions.Effects{}, err
		}
		s.p.cfg.logger.Warn("invocation failed, retrying", "function_type", inv.Target.Type, "function_id", inv.Target.ID, "attempt", attempt+1, "err", err)
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
		}
		backoff *= 2
	}
}

// egressRecords makes the output records of egress messages sent for the
// consumed record src.
func (s *session) egressRecords(src *record, msgs []functions.EgressMessage) ([]*output, error) {
	var out []*output
	for _, em := range msgs {
		eg, ok := s.p.topo.Egress(em.Egress)
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
		if what, ok := s.p.topo.Reserved(topology.Topic(topic)); ok {
			return nil, fmt.Errorf("egress %s: topic %q is %s; egress records never go to internal topics", em.Egress, topic, what)
		}
		o := &output{Topic: topic, Value: rec.Value, src: src}
		if o.Value == nil {
			o.Value = []byte{}
		}
		n, err := s.partitionCount(topic)
		if err != nil {
			return nil, err
		}
		if rec.Key != "" {
			o.Key = []byte(rec.Key)
			o.Partition = partitionFor(rec.Key, n)
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

// sendLoop writes a message to the loop topic for the consumed record src.
func (s *session) sendLoop(t *txn, src *record, env wire.Envelope) {
	s.produce(s.loopRecord(src, env))
}

// sendLoopRouted writes an ingress message for a partition that is not
// delivered directly, and remembers its offset after the commit: direct
// delivery to that partition must wait until the record is processed.
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
	return &output{
		Topic:     string(s.p.topo.RepliesTopic()),
		Partition: partitionFor(instance, s.p.topo.PartitionCount()),
		Key:       []byte(env.Target.ID),
		Value:     wire.AppendEnvelope(nil, env),
		src:       src,
	}
}

// loopRecord is the loop topic record of a message.
func (s *session) loopRecord(src *record, env wire.Envelope) *output {
	return &output{
		Topic:     string(s.p.topo.LoopTopic()),
		Partition: partitionFor(env.Target.ID, s.p.topo.PartitionCount()),
		Key:       []byte(env.Target.ID),
		Value:     wire.AppendEnvelope(nil, env),
		src:       src,
	}
}

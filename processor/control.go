package processor

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// Control records.
//
// An operator's request to edit an address's state, to cancel its delayed
// messages or to replay a dead letter to it (wire.Control, from `stateloop
// state set`, `timers cancel`, `dlq replay` or the HTTP API) is an envelope
// on the loop topic, in the partition of its address, and travels like a
// message: it waits its turn in the address's inbox behind messages that
// wait there (a parked address, remote calls still running), and is
// applied when its turn comes, in the transaction of that moment, with the
// idempotency key of its envelope checked as a message's is. The result
// (the state before and after, the timers cancelled, or why it was not
// applied) goes to the envelope's caller, an HTTP caller, through the
// replies topic, in the same transaction. A request that cannot be applied
// (an unknown function type, a state the function does not declare, a
// value of the wrong type, a replay of a record no ingress routes there)
// goes to the dead-letter topic with the reason, like a message that
// fails; nothing else waits for it.
//
// A replay becomes the message it replays when it reaches its address: it
// is delivered (or waits in the inbox) as that message, and the
// transaction that does so also writes a replay marker to the dead-letter
// topic (wire.HeaderReplayOf), so that `stateloop dlq list` can tell which
// dead letters were replayed long after their idempotency keys are gone.

// controlReason prefixes the reason a record is dead-lettered for with
// the kind of control record it is, if it is one.
func controlReason(env wire.Envelope, reason string) string {
	if env.Control == nil {
		return reason
	}
	return fmt.Sprintf("%s at %s: %s", env.Control.Kind(), env.Target, reason)
}

// refuse sends the record m of a message or control record that cannot
// be delivered to the dead-letter topic, and answers a control record's
// caller with the reason.
func (s *session) refuse(t *txn, m *record, env wire.Envelope, reason string) {
	reason = controlReason(env, reason)
	s.undeliverable(t, m, env, reason, true)
	if env.Control != nil {
		s.answer(m, env, wire.ControlResult{Error: reason})
	}
}

// answer sends the result of a control record to its caller, if that is
// an HTTP caller (the only kind that reads results), in the open
// transaction: the caller sees it once the transaction has committed.
func (s *session) answer(src *record, env wire.Envelope, r wire.ControlResult) {
	if env.Caller == nil || env.Caller.Type != topology.HTTPCaller {
		return
	}
	target := env.Target
	r.Address = target
	reply := wire.Envelope{Target: *env.Caller, Caller: &target,
		Argument: functions.NewMessage(wire.ControlResultType, wire.AppendControlResult(nil, r))}
	s.produce(s.replyRecord(src, reply))
}

// invoke delivers a message whose turn it is: a control record is
// applied, any other message invoked (see invokeLocal, whose result it
// returns).
func (s *session) invoke(t *txn, src *record, env wire.Envelope, part int32, e *inboxEntry) bool {
	if env.Control != nil {
		s.applyControl(t, src, env, part)
		return true
	}
	return s.invokeLocal(t, src, env, part, e)
}

// applyControl applies a state edit or timer cancel at env.Target, whose
// turn it is, in t, and answers its caller.
func (s *session) applyControl(t *txn, src *record, env wire.Envelope, part int32) {
	var res wire.ControlResult
	var err error
	switch c := env.Control; {
	case c.State != nil:
		res, err = s.editState(t, src, env.Target, part, c.State)
	case c.Cancel != nil:
		res, err = s.cancelTimers(t, src, env.Target, part, c.Cancel)
	default:
		// replays become their message on arrival (deliverTo)
		err = fmt.Errorf("internal error: a replay reached its turn unconverted")
	}
	if err != nil {
		s.refuse(t, src, env, err.Error())
		return
	}
	s.p.count(func(s *Stats) { s.Controls++ })
	s.answer(src, env, res)
}

// declaredState returns the state values a function type declares: those
// of its Spec for a Go function, those its remote function declared (the
// runtime learns them from its first invocations); known is false when
// nothing is known (a remote function not invoked yet).
func (s *session) declaredState(fn functions.TypeName) (decl []wire.StateDecl, known bool) {
	infos, ok := driver.States(s.p.reg, fn)
	if !ok && s.isRemote(fn) {
		if sp, isSpecs := s.p.cfg.remote(fn).(interface {
			Specs(functions.TypeName) []driver.StateInfo
		}); isSpecs {
			infos = sp.Specs(fn)
			ok = len(infos) > 0
		}
	}
	for _, info := range infos {
		decl = append(decl, wire.StateDecl{Name: info.Name, TypeName: info.TypeName})
	}
	return decl, ok
}

// editState applies a state edit to target. Values are checked against
// what the function type declares: a name it does not declare, or a type
// other than the declared one, is refused; a value without a type gets
// the declared type, else the current value's. Written values get their
// after-write (and after-call) expiry; the address's other values keep
// theirs, since an edit is not a call. State that does not decode can
// only be replaced as a whole (DeleteAll).
func (s *session) editState(t *txn, src *record, target functions.Address, part int32, edit *wire.StateEdit) (wire.ControlResult, error) {
	ref := stateRef{part: part, fn: target.Type, id: target.ID}
	now := s.p.cfg.now()
	current, err := s.state(ref)
	if err != nil {
		if !edit.DeleteAll {
			return wire.ControlResult{}, fmt.Errorf("the stored state of %s does not decode (%v): delete all of it to replace it", target, err)
		}
		current = nil
	}
	current = driver.Unexpired(current, now)
	decl, known := s.declaredState(target.Type)
	var changes []driver.StateChange
	if edit.DeleteAll {
		for _, name := range slices.Sorted(maps.Keys(current)) {
			changes = append(changes, driver.StateChange{Name: name, Deleted: true})
		}
	}
	for _, name := range edit.Delete {
		changes = append(changes, driver.StateChange{Name: name, Deleted: true})
	}
	var problems []string
	written := make(map[string]bool)
	for _, v := range edit.Set {
		typ := v.TypeName
		i := slices.IndexFunc(decl, func(d wire.StateDecl) bool { return d.Name == v.Name })
		switch {
		case known && i < 0:
			problems = append(problems, fmt.Sprintf("function type %s declares no state %q (it declares %s)", target.Type, v.Name, declNames(decl)))
			continue
		case i >= 0 && typ == "":
			typ = decl[i].TypeName
		case i >= 0 && typ != decl[i].TypeName:
			problems = append(problems, fmt.Sprintf("state %q of %s is of type %s, not %s", v.Name, target.Type, decl[i].TypeName, typ))
			continue
		}
		if typ == "" {
			cur, ok := current[v.Name]
			if !ok {
				problems = append(problems, fmt.Sprintf("state %q of %s has no value and the runtime does not know its type yet: give the value's type", v.Name, target))
				continue
			}
			typ = cur.TypeName
		}
		changes = append(changes, driver.StateChange{Name: v.Name, Value: driver.StoredValue{TypeName: typ, Value: v.Value}})
		written[v.Name] = true
	}
	if len(problems) > 0 {
		return wire.ControlResult{}, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	exps := maps.Clone(s.p.expirations(target.Type))
	maps.DeleteFunc(exps, func(name string, _ functions.Expiration) bool { return !written[name] })
	next, write := driver.ApplyState(current, false, changes, exps, now)
	if write {
		t.state.set(ref, next, src)
	}
	return wire.ControlResult{Before: current, After: next, Declared: decl}, nil
}

func declNames(decl []wire.StateDecl) string {
	if len(decl) == 0 {
		return "none"
	}
	names := make([]string, len(decl))
	for i, d := range decl {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

// cancelTimers cancels delayed messages of target (their sender) in t:
// those with the tokens given, or every one. A token without a waiting
// message is no error; the result lists the messages cancelled.
func (s *session) cancelTimers(t *txn, src *record, target functions.Address, part int32, c *wire.TimerCancel) (wire.ControlResult, error) {
	pp := s.parts[part]
	if pp == nil {
		return wire.ControlResult{}, fmt.Errorf("internal error: partition %d is not owned by this instance", part)
	}
	keys := make([][]byte, 0, len(c.Tokens))
	for _, tok := range c.Tokens {
		keys = append(keys, wire.AppendTimerKey(nil, target, tok))
	}
	if c.All {
		var err error
		if keys, err = s.timerKeysOf(t, pp, target); err != nil {
			return wire.ControlResult{}, err
		}
	}
	var res wire.ControlResult
	for _, key := range keys {
		rec, ok, err := s.pendingTimer(t, pp, key)
		if err != nil {
			return wire.ControlResult{}, err
		}
		if !ok {
			continue
		}
		tm, err := wire.DecodeTimer(rec)
		if err != nil {
			return wire.ControlResult{}, fmt.Errorf("a delayed message of %s does not decode: %v", target, err)
		}
		_, tok, _ := wire.DecodeTimerKey(key)
		res.Cancelled = append(res.Cancelled, wire.CancelledTimer{Token: tok, Timer: tm})
		t.timers.set(&pendingTimer{part: part, key: key, src: src})
	}
	return res, nil
}

// pendingTimer returns the record of a waiting delayed message, as the
// open transaction sees it.
func (s *session) pendingTimer(t *txn, pp *partition, key []byte) ([]byte, bool, error) {
	if pt, ok := t.timers.writes[string(key)]; ok {
		return pt.rec, pt.rec != nil, nil
	}
	_, rec, ok, err := pp.store.timer(key)
	return rec, ok, err
}

// timerKeysOf returns the keys of the delayed messages a sender has
// waiting, as the open transaction sees them, in key order.
func (s *session) timerKeysOf(t *txn, pp *partition, sender functions.Address) ([][]byte, error) {
	prefix := wire.AppendTimerKey(nil, sender, "")
	seen := make(map[string]bool)
	it := pp.store.db.NewIterator(util.BytesPrefix(timerKey(prefix)), nil)
	for it.Next() {
		seen[string(it.Key()[1:])] = true
	}
	it.Release()
	if err := it.Error(); err != nil {
		return nil, err
	}
	for _, k := range t.timers.order {
		if bytes.HasPrefix([]byte(k), prefix) {
			seen[k] = true
		}
	}
	var keys [][]byte
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		keys = append(keys, []byte(k))
	}
	return keys, nil
}

// markReplayed writes, in t, the replay marker of a replay that reached
// its address, to the dead-letter topic, and answers the caller.
func (s *session) markReplayed(m *record, env wire.Envelope) {
	r := env.Control.Replay
	dlq := string(s.p.topo.DLQTopic())
	n, err := s.partitionCount(dlq)
	if err != nil {
		s.setFatal(fmt.Errorf("processor: dead-letter topic: %w", err))
		return
	}
	target := env.Target
	s.produce(&output{Topic: dlq, Partition: r.DeadLetterPartition % n, src: m, Headers: []header{
		{Key: []byte(wire.HeaderReplayOf), Value: []byte(wire.FormatDeadLetterRef(r.DeadLetterPartition, r.DeadLetterOffset))},
		{Key: []byte(wire.HeaderFunctionType), Value: []byte(target.Type)},
		{Key: []byte(wire.HeaderFunctionID), Value: []byte(target.ID)},
	}})
	s.p.count(func(s *Stats) { s.Controls++ })
	s.answer(m, env, wire.ControlResult{})
}

// replayMessage returns the message a replay sends to its address: the
// message of a loop record as it was (without the idempotency key it had,
// which its first delivery used up), or the message the ingress makes of
// an ingress record for the address.
func (s *session) replayMessage(env wire.Envelope) (wire.Envelope, error) {
	r := env.Control.Replay
	target := env.Target
	if r.Message != nil {
		msg := *r.Message
		if msg.Target != target {
			return wire.Envelope{}, fmt.Errorf("the dead letter is a message to %s, not to %s", msg.Target, target)
		}
		msg.IdempotencyKey = ""
		return msg, nil
	}
	rec := r.Record
	msgs, err := s.p.topo.Route(topology.Record{Topic: topology.Topic(rec.Topic), Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value})
	if err != nil {
		return wire.Envelope{}, fmt.Errorf("the ingress record is not routed now: %v", err)
	}
	for _, out := range msgs {
		if out.To == target {
			return wire.Envelope{Target: target, Argument: out.Message}, nil
		}
	}
	return wire.Envelope{}, fmt.Errorf("ingress %s no longer sends this record to %s", rec.Topic, target)
}

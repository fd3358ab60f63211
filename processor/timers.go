package processor

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
)

// Delayed messages (timers).
//
// A delayed message is a record of the compacted topic <app>-timers, in the
// partition of its sender's id (so the sender's owner can cancel it), keyed
// by the sender's address and the cancellation token (a random one when the
// function gave none), with the due time and the message as its value. It
// is written with the transaction of the invocation that sent it. When it
// is due, the owner of the partition sends the message to the loop topic
// and writes the timer's tombstone in one transaction: it fires once.
//
// The local store keeps every timer of its partition with an index by due
// time; the session keeps only those due within timerHorizon in a heap per
// partition, and refills it from the store as time goes on.

// timerHorizon is how far ahead a session holds timers in memory.
const timerHorizon = time.Minute

// timerTick is how often a session looks for due timers.
const timerTick = 10 * time.Millisecond

// pendingTimer is a timer write of the open transaction.
type pendingTimer struct {
	part int32
	key  []byte
	due  int64  // Unix milliseconds
	rec  []byte // encoded wire.Timer; nil deletes the timer
	// src is the consumed record whose invocation made the write; nil for
	// a timer that fired
	src *record
	// oldKnown: oldDue is the due time of the stored timer this write
	// replaces (0: none), so the store need not be asked
	oldKnown bool
	oldDue   int64
}

// timerStage holds the open transaction's timer writes by key, in order.
type timerStage struct {
	writes map[string]*pendingTimer
	order  []string
}

func newTimerStage() timerStage { return timerStage{writes: make(map[string]*pendingTimer)} }

func (st *timerStage) set(pt *pendingTimer) {
	if _, seen := st.writes[string(pt.key)]; !seen {
		st.order = append(st.order, string(pt.key))
	}
	st.writes[string(pt.key)] = pt
}

// timersPart is the part of the delayed messages.
type timersPart struct{}

func (timersPart) flush(s *session, t *txn) {
	topic := string(s.p.topo.TimersTopic())
	for _, k := range t.timers.order {
		pt := t.timers.writes[k]
		s.produce(&output{Topic: topic, Partition: pt.part, Key: pt.key, Value: pt.rec, src: pt.src, store: timersFn})
	}
}

func (timersPart) write(s *session, t *txn, b batches) error {
	for _, k := range t.timers.order {
		pt := t.timers.writes[k]
		pp := s.parts[pt.part]
		if pp == nil {
			return fmt.Errorf("partition %d has no local store", pt.part)
		}
		if err := b.of(pt.part).putTimer(pp.store, pt.key, pt.due, pt.rec, pt.oldKnown, pt.oldDue); err != nil {
			return err
		}
	}
	return nil
}

// committed puts the timers the transaction wrote into memory when they
// are due within the horizon already loaded.
func (timersPart) committed(s *session, t *txn) {
	for _, k := range t.timers.order {
		pt := t.timers.writes[k]
		if pp := s.parts[pt.part]; pp != nil && pt.rec != nil && pt.due < pp.timers.until {
			heap.Push(&pp.timers.h, timerEntry{due: pt.due, key: pt.key})
		}
	}
}

func (timersPart) changelogs(p *Processor, st *store, part int32, _ *[]aside) []changelog {
	return []changelog{{name: timersFn, topic: string(p.topo.TimersTopic()), wipe: st.wipeTimers,
		put: func(b *storeBatch, r kafkaread.Record) error {
			var due int64
			if r.Value != nil {
				t, err := wire.DecodeTimer(r.Value)
				if err != nil {
					p.cfg.logger.Warn("skipping an undecodable timer record", "partition", part, "offset", r.Offset, "err", err)
					return nil
				}
				due = t.DueUnixMilli
			}
			return b.putTimer(st, r.Key, due, r.Value, false, 0)
		}}}
}

// timerQueue holds the timers of one partition due before until.
type timerQueue struct {
	h     timerHeap
	until int64
}

type timerEntry struct {
	due int64
	key []byte
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// autoToken names a delayed message sent without a token.
func autoToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "\x00" + hex.EncodeToString(b[:])
}

// addDelayed stages the delayed messages and cancellations of an
// invocation of sender, made for the consumed record src, whose trace
// context tc the messages keep until they are sent.
func (s *session) addDelayed(t *txn, src *record, sender functions.Address, part int32, delayed []driver.DelayedMessage, tc wire.Trace) error {
	for _, d := range delayed {
		if d.Cancel {
			key := wire.AppendTimerKey(nil, sender, d.Token)
			exists, err := s.timerExists(t, part, key)
			if err != nil {
				return err
			}
			if exists {
				t.timers.set(&pendingTimer{part: part, key: key, src: src})
			}
			continue
		}
		token := d.Token
		if token == "" {
			token = autoToken()
		}
		caller := sender
		due := s.p.cfg.now().Add(d.Delay).UnixMilli()
		rec := wire.AppendTimer(nil, wire.Timer{DueUnixMilli: due, Message: wire.Envelope{Target: d.To, Caller: &caller, Argument: d.Message, Trace: tc}})
		// a random token cannot name a stored timer
		t.timers.set(&pendingTimer{part: part, key: wire.AppendTimerKey(nil, sender, token), due: due, rec: rec, src: src, oldKnown: d.Token == ""})
	}
	return nil
}

// timerExists reports whether a timer is waiting, as the open transaction
// sees it.
func (s *session) timerExists(t *txn, part int32, key []byte) (bool, error) {
	if pt, ok := t.timers.writes[string(key)]; ok {
		return pt.rec != nil, nil
	}
	pp := s.parts[part]
	if pp == nil {
		return false, fmt.Errorf("partition %d is not owned by this instance", part)
	}
	_, _, ok, err := pp.store.timer(key)
	return ok, err
}

// loadTimers (re)builds the in-memory timers of a partition from its store.
func (s *session) loadTimers(pp *partition) error {
	pp.timers = timerQueue{}
	return pp.refillTimers(s.p.cfg.now().UnixMilli())
}

// refillTimers moves the timers due before now + timerHorizon from the
// store into memory.
func (pp *partition) refillTimers(now int64) error {
	to := now + timerHorizon.Milliseconds()
	err := pp.store.dueTimers(pp.timers.until, to, func(due int64, key []byte) bool {
		heap.Push(&pp.timers.h, timerEntry{due: due, key: key})
		return true
	})
	if err != nil {
		return err
	}
	pp.timers.until = to
	return nil
}

// fireDue sends the due timers of the owned partitions in the open
// transaction (opening one if needed): the message to its address, the
// timer's tombstone to the timers topic. Fired timers count towards the
// transaction's commit count, and one pass fires no more than the count
// allows, so a burst of timers due together is spread over transactions
// of the usual size (one huge transaction could outlive its timeout and
// be aborted again on every retry).
func (s *session) fireDue() error {
	now := s.p.cfg.now().UnixMilli()
	for _, pp := range s.parts {
		if s.txn != nil && s.txn.size() >= s.p.cfg.commitCount {
			return nil
		}
		q := &pp.timers
		if now+timerHorizon.Milliseconds()/2 > q.until {
			if err := pp.refillTimers(now); err != nil {
				return fmt.Errorf("load timers of partition %d: %w", pp.id, err)
			}
		}
		for q.h.Len() > 0 && q.h[0].due <= now && (s.txn == nil || s.txn.size() < s.p.cfg.commitCount) {
			e := heap.Pop(&q.h).(timerEntry)
			if s.txn != nil {
				if _, changed := s.txn.timers.writes[string(e.key)]; changed {
					// fired, cancelled or replaced in this transaction; a
					// replacement is queued when it commits
					continue
				}
			}
			due, rec, ok, err := pp.store.timer(e.key)
			if err != nil {
				return fmt.Errorf("read timer of partition %d: %w", pp.id, err)
			}
			if !ok || due != e.due {
				continue // cancelled or replaced since it was queued
			}
			t, err := s.begin()
			if err != nil {
				return err
			}
			tm, err := wire.DecodeTimer(rec)
			if err != nil {
				// a timer record this runtime did not write; drop it
				s.p.cfg.logger.Warn("dropping an undecodable timer", "partition", pp.id, "err", err)
			} else {
				if s.p.tr == nil {
					// written while tracing was on: tracing off sends
					// no trace context on
					tm.Message.Trace = wire.Trace{}
				}
				s.sendLoop(t, nil, tm.Message)
			}
			t.timers.set(&pendingTimer{part: pp.id, key: e.key, oldDue: e.due, oldKnown: true})
			t.fired++
			s.p.count(func(s *Stats) { s.TimersFired++ })
			s.p.m.TimersFired(1)
		}
	}
	return nil
}

package processor

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/functions"
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
// time; the worker keeps only those due within timerHorizon in a heap per
// partition, and refills it from the store as time goes on.

// timerHorizon is how far ahead the worker holds timers in memory.
const timerHorizon = time.Minute

// timerTick is how often the worker looks for due timers.
const timerTick = 10 * time.Millisecond

// timerRef is the Metadata of a timers topic record, for the store's
// offset of that partition.
type timerRef struct{ part int32 }

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

// addDelayed records the delayed messages and cancellations of an
// invocation of sender, made for the consumed record m, in the open
// transaction.
func (w *worker) addDelayed(m *record, sender functions.Address, part int32, delayed []functions.DelayedMessage) error {
	for _, d := range delayed {
		if d.Cancel {
			key := wire.AppendTimerKey(nil, sender, d.Token)
			exists, err := w.timerExists(part, key)
			if err != nil {
				return err
			}
			if exists {
				w.setTimer(&pendingTimer{part: part, key: key, src: m})
			}
			continue
		}
		token := d.Token
		if token == "" {
			token = autoToken()
		}
		caller := sender
		due := w.p.cfg.now().Add(d.Delay).UnixMilli()
		rec := wire.AppendTimer(nil, wire.Timer{DueUnixMilli: due, Message: wire.Envelope{Target: d.To, Caller: &caller, Argument: d.Message}})
		// a random token cannot name a stored timer
		w.setTimer(&pendingTimer{part: part, key: wire.AppendTimerKey(nil, sender, token), due: due, rec: rec, src: m, oldKnown: d.Token == ""})
	}
	return nil
}

// timerExists reports whether a timer is waiting, as the open transaction
// sees it.
func (w *worker) timerExists(part int32, key []byte) (bool, error) {
	if pt, ok := w.timerOverlay[string(key)]; ok {
		return pt.rec != nil, nil
	}
	st := w.parts[part]
	if st == nil {
		return false, fmt.Errorf("partition %d is not owned by this instance", part)
	}
	_, _, ok, err := st.timer(key)
	return ok, err
}

func (w *worker) setTimer(pt *pendingTimer) {
	if _, seen := w.timerOverlay[string(pt.key)]; !seen {
		w.timerOrder = append(w.timerOrder, string(pt.key))
	}
	w.timerOverlay[string(pt.key)] = pt
}

// sendTimers writes the open transaction's timer changes to the timers
// topic, at commit time.
func (w *worker) sendTimers() {
	topic := string(w.p.topo.TimersTopic())
	for _, k := range w.timerOrder {
		pt := w.timerOverlay[k]
		w.current = pt.src
		var value sarama.Encoder
		if pt.rec != nil {
			value = sarama.ByteEncoder(pt.rec)
		}
		w.send(&sarama.ProducerMessage{Topic: topic, Partition: pt.part, Key: sarama.ByteEncoder(pt.key), Value: value, Metadata: timerRef{pt.part}})
	}
}

// timersToStores adds the committed timer changes to the partitions' store
// batches; queued reports the timers to put in memory once written.
func (w *worker) timersToStores(batch func(int32) *storeBatch) error {
	for _, k := range w.timerOrder {
		pt := w.timerOverlay[k]
		st := w.parts[pt.part]
		if st == nil {
			return fmt.Errorf("partition %d has no local store", pt.part)
		}
		if err := batch(pt.part).putTimer(st, pt.key, pt.due, pt.rec, pt.oldKnown, pt.oldDue); err != nil {
			return err
		}
	}
	return nil
}

// queueCommittedTimers puts the timers the last transaction wrote into
// memory when they are due within the horizon already loaded.
func (w *worker) queueCommittedTimers() {
	for _, k := range w.timerOrder {
		pt := w.timerOverlay[k]
		if q := w.timers[pt.part]; q != nil && pt.rec != nil && pt.due < q.until {
			heap.Push(&q.h, timerEntry{due: pt.due, key: pt.key})
		}
	}
}

// loadTimers (re)builds the in-memory timers of a partition from its store.
func (w *worker) loadTimers(part int32) error {
	w.timers[part] = &timerQueue{}
	return w.refillTimers(part, w.p.cfg.now().UnixMilli())
}

// refillTimers moves the timers due before now + timerHorizon from the
// store into memory.
func (w *worker) refillTimers(part int32, now int64) error {
	q, st := w.timers[part], w.parts[part]
	to := now + timerHorizon.Milliseconds()
	err := st.dueTimers(q.until, to, func(due int64, key []byte) bool {
		heap.Push(&q.h, timerEntry{due: due, key: key})
		return true
	})
	if err != nil {
		return err
	}
	q.until = to
	return nil
}

// fireDue sends the due timers of the owned partitions in the open
// transaction (opening one if needed): the message to the loop topic, the
// timer's tombstone to the timers topic. Fired timers count towards the
// transaction's commit count, and one pass fires no more than the count
// allows, so a burst of timers due together is spread over transactions
// of the usual size (one huge transaction could outlive its timeout and
// be aborted again on every retry).
func (w *worker) fireDue() error {
	now := w.p.cfg.now().UnixMilli()
	for part, q := range w.timers {
		if w.txnSize() >= w.p.cfg.commitCount {
			return nil
		}
		if now+timerHorizon.Milliseconds()/2 > q.until {
			if err := w.refillTimers(part, now); err != nil {
				return fmt.Errorf("load timers of partition %d: %w", part, err)
			}
		}
		for q.h.Len() > 0 && q.h[0].due <= now && w.txnSize() < w.p.cfg.commitCount {
			e := heap.Pop(&q.h).(timerEntry)
			if _, changed := w.timerOverlay[string(e.key)]; changed {
				// fired, cancelled or replaced in this transaction; a
				// replacement is queued when it commits
				continue
			}
			due, rec, ok, err := w.parts[part].timer(e.key)
			if err != nil {
				return fmt.Errorf("read timer of partition %d: %w", part, err)
			}
			if !ok || due != e.due {
				continue // cancelled or replaced since it was queued
			}
			if err := w.begin(); err != nil {
				return err
			}
			w.current = nil
			t, err := wire.DecodeTimer(rec)
			if err != nil {
				// a timer record this runtime did not write; drop it
				w.p.cfg.logger.Warn("dropping an undecodable timer", "partition", part, "err", err)
			} else {
				w.sendLoop(t.Message)
			}
			w.setTimer(&pendingTimer{part: part, key: e.key, oldDue: e.due, oldKnown: true})
			w.firedInTxn++
			w.p.count(func(s *Stats) { s.TimersFired++ })
			w.p.m.timersFired.Inc()
		}
	}
	return nil
}

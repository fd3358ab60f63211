package processor

import (
	"time"
)

// txn is one transaction of a session: everything it consumed and staged,
// in one value made when it begins and dropped when it ends. Nothing of it
// outlives the transaction; an aborted transaction is processed again
// from consumed.
type txn struct {
	start time.Time
	// consumed are the records the transaction consumed, in order: what a
	// failed transaction processes again
	consumed []*record
	// offsets are the next offsets to consume, by topic and partition
	offsets map[string]map[int32]int64
	// fired counts the delayed messages the transaction sent, delivered
	// the messages it delivered from inboxes
	fired, delivered int

	// the stages of the parts (changelog-backed state)
	state  stateStage
	timers timerStage
	idem   idemStage
	inbox  inboxStage

	// routed counts the loop records written to each partition for its
	// gate; their offsets are known after the commit
	routed map[int32]int
	// local are the messages to addresses of this session waiting to be
	// delivered in the transaction, in order; localSeq numbers them
	local    []localMessage
	localSeq int64
}

func newTxn(now time.Time) *txn {
	return &txn{
		start:   now,
		offsets: make(map[string]map[int32]int64),
		state:   newStateStage(),
		timers:  newTimerStage(),
		idem:    newIdemStage(),
		inbox:   newInboxStage(),
		routed:  make(map[int32]int),
	}
}

// size is what counts towards the commit count: the records consumed, the
// delayed messages fired and the messages delivered from inboxes.
func (t *txn) size() int { return len(t.consumed) + t.fired + t.delivered }

// consume adds a record's offset to the transaction.
func (t *txn) consume(r *record) {
	parts := t.offsets[r.Topic]
	if parts == nil {
		parts = make(map[int32]int64)
		t.offsets[r.Topic] = parts
	}
	parts[r.Partition] = r.Offset + 1
}

// refs names the consumed records (for Faults.Committed).
func (t *txn) refs() []RecordRef {
	refs := make([]RecordRef, len(t.consumed))
	for i, m := range t.consumed {
		refs[i] = RecordRef{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	}
	return refs
}

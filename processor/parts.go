package processor

import (
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

// part is a kind of state of a loop partition that a compacted topic
// backs and the partition's local store holds: the tables of the function
// types (with the index of expiring state), the delayed messages, the
// idempotency keys; the input positions have a topic and no store.
//
// A transaction stages a part's changes in its own stage in the txn; at
// commit they become output records of the part's topic (flush), after
// the commit they are written to the stores (write) and to what the
// session keeps in memory (committed). When a partition is assigned,
// recovery catches its store up from each of the part's changelogs. A
// failed transaction is dropped with its stages: nothing to undo.
type part interface {
	// flush adds the staged changes of t to it as outputs.
	flush(s *session, t *txn)
	// write adds the committed changes of t to the store batches.
	write(s *session, t *txn, b batches) error
	// committed updates what the session keeps in memory, once the stores
	// are written.
	committed(s *session, t *txn)
	// changelogs returns the topic partitions that recovery reads into
	// the store of loop partition part. Records that do not decode are
	// added to asides.
	changelogs(p *Processor, st *store, part int32, asides *[]aside) []changelog
}

// changelog is one topic partition of a part, as recovery reads it.
type changelog struct {
	// name is the store's key of the offset read up to and the topic id
	name  functions.TypeName
	topic string
	// put adds a committed record to the store batch
	put func(b *storeBatch, r kafkaread.Record) error
	// wipe removes what the store has of the changelog
	wipe func() error
}

// theParts are the parts of every session, in the order their records are
// written at commit.
var theParts = []part{timersPart{}, idempotencyPart{}, positionsPart{}, statePart{}}

// batches are the store batches of a commit, by loop partition.
type batches map[int32]*storeBatch

func (b batches) of(part int32) *storeBatch {
	sb := b[part]
	if sb == nil {
		sb = &storeBatch{}
		b[part] = sb
	}
	return sb
}

package processor

import (
	"encoding/binary"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
)

// Idempotency keys.
//
// A message may carry an idempotency key (an HTTP request's
// Idempotency-Key header): the runtime then delivers only the first
// message with that key to its target address within the idempotency
// window, however often it was written (a client retrying a request whose
// answer it lost, perhaps through another HTTP instance). The keys seen
// are kept in the compacted topic <app>-idempotency, in the partition of
// the target's id, written in the transaction of the delivery, so the
// check and the invocation commit together; the local store keeps them as
// 'k' entries, recovered like a table.

// idempotencyFn is the pseudo function type under which a store keeps the
// offset and topic id of its idempotency partition.
const idempotencyFn functions.TypeName = "\x00idempotency"

// DefaultIdempotencyWindow is how long an idempotency key is remembered.
const DefaultIdempotencyWindow = 24 * time.Hour

// idemKey is the key of a target's idempotency key, in the topic and (with
// the 'k' prefix) in the store.
func idemKey(target functions.Address, key string) []byte {
	return []byte(target.String() + "\x00" + key)
}

func idemStoreKey(k []byte) []byte { return append([]byte{'k'}, k...) }

// seenAt returns when the store saw an idempotency key, if it did.
func (s *store) seenAt(k []byte) (time.Time, bool, error) {
	v, err := s.db.Get(idemStoreKey(k), nil)
	if err == leveldb.ErrNotFound {
		return time.Time{}, false, nil
	}
	if err != nil || len(v) != 8 {
		return time.Time{}, false, err
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(v))), true, nil
}

// putSeen records an idempotency key (nil value: forget it).
func (b *storeBatch) putSeen(k, value []byte) {
	if value == nil {
		b.b.Delete(idemStoreKey(k))
		return
	}
	b.b.Put(idemStoreKey(k), value)
}

// idemStage holds the idempotency keys seen in the open transaction, in
// order.
type idemStage struct {
	seen  map[string]idemEntry
	order []string
}

func newIdemStage() idemStage { return idemStage{seen: make(map[string]idemEntry)} }

type idemEntry struct {
	part int32
	at   time.Time
}

// duplicate reports whether the message with idempotency key for target
// was delivered within the window; if not, it stages the key in t.
func (s *session) duplicate(t *txn, part int32, target functions.Address, key string) (bool, error) {
	k := idemKey(target, key)
	now := s.p.cfg.now()
	if _, ok := t.idem.seen[string(k)]; ok {
		return true, nil
	}
	at, ok, err := s.parts[part].store.seenAt(k)
	if err != nil {
		return false, err
	}
	if ok && now.Sub(at) < s.p.cfg.idempotencyWindow {
		return true, nil
	}
	t.idem.order = append(t.idem.order, string(k))
	t.idem.seen[string(k)] = idemEntry{part: part, at: now}
	return false, nil
}

// idempotencyPart is the part of the idempotency keys.
type idempotencyPart struct{}

func idemValue(e idemEntry) []byte {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(e.at.UnixMilli()))
	return v[:]
}

func (idempotencyPart) flush(s *session, t *txn) {
	topic := string(s.p.topo.IdempotencyTopic())
	for _, k := range t.idem.order {
		e := t.idem.seen[k]
		s.produce(&output{Topic: topic, Partition: e.part, Key: []byte(k), Value: idemValue(e), store: idempotencyFn})
	}
}

func (idempotencyPart) write(s *session, t *txn, b batches) error {
	for _, k := range t.idem.order {
		e := t.idem.seen[k]
		b.of(e.part).putSeen([]byte(k), idemValue(e))
	}
	return nil
}

func (idempotencyPart) committed(*session, *txn) {}

func (idempotencyPart) changelogs(p *Processor, st *store, _ int32, _ *[]aside) []changelog {
	return []changelog{{name: idempotencyFn, topic: string(p.topo.IdempotencyTopic()),
		wipe: func() error { return st.wipePrefixes(idempotencyFn, 'k') },
		put:  func(b *storeBatch, r kafkaread.Record) error { b.putSeen(r.Key, r.Value); return nil }}}
}

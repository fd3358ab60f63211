package processor

import (
	"encoding/binary"
	"time"

	"github.com/IBM/sarama"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/stateloop/stateloop/functions"
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

// idemRef is the Metadata of an idempotency topic record.
type idemRef struct{ part int32 }

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

// duplicate reports whether the message with idempotency key for target
// was delivered within the window; if not, it records the key in the open
// transaction.
func (w *worker) duplicate(part int32, target functions.Address, key string) (bool, error) {
	k := idemKey(target, key)
	now := w.p.cfg.now()
	window := w.p.cfg.idempotencyWindow
	if _, ok := w.idemOverlay[string(k)]; ok {
		return true, nil
	}
	at, ok, err := w.parts[part].seenAt(k)
	if err != nil {
		return false, err
	}
	if ok && now.Sub(at) < window {
		return true, nil
	}
	w.idemOrder = append(w.idemOrder, string(k))
	w.idemOverlay[string(k)] = idemEntry{part: part, at: now}
	return false, nil
}

type idemEntry struct {
	part int32
	at   time.Time
}

// sendIdempotencyKeys writes the open transaction's new keys to the
// idempotency topic, at commit time.
func (w *worker) sendIdempotencyKeys() {
	topic := string(w.p.topo.IdempotencyTopic())
	for _, k := range w.idemOrder {
		e := w.idemOverlay[k]
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(e.at.UnixMilli()))
		w.current = nil
		w.send(&sarama.ProducerMessage{Topic: topic, Partition: e.part, Key: sarama.ByteEncoder(k), Value: sarama.ByteEncoder(v[:]), Metadata: idemRef{e.part}})
	}
}

// idempotencyToStores adds the committed keys to the store batches.
func (w *worker) idempotencyToStores(batch func(int32) *storeBatch) {
	for _, k := range w.idemOrder {
		e := w.idemOverlay[k]
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(e.at.UnixMilli()))
		batch(e.part).putSeen([]byte(k), v[:])
	}
}

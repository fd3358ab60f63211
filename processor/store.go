package processor

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stateloop/stateloop/functions"
)

// store is the local state of one loop partition: the values of every
// function type's addresses in that partition, and for each type the
// offset of its table partition up to which the values are applied.
//
// Invariant: a store is always a prefix of the committed changelog. It is
// written only after a transaction has committed, in one batch together
// with the new table offsets, so after any crash it can be caught up by
// reading each table partition from its stored offset.
//
// Keys: 's' type 0x00 id -> state record; 'o' type -> next table offset;
// 'i' type -> id of the table topic the values came from. Delayed messages
// (timers) of the partition: 'm' key -> due (8 bytes) + timer record; 'd'
// due (8 bytes) key -> nothing, the index by due time; their offset and
// topic id are kept under the pseudo type timersFn.
type store struct {
	db *leveldb.DB
}

func openStore(dir string, partition int32) (*store, error) {
	var (
		db  *leveldb.DB
		err error
	)
	// a bloom filter spares reads of keys that are not there: new timers,
	// idempotency keys, state of new addresses
	o := &opt.Options{NoSync: true, Filter: filter.NewBloomFilter(10)}
	if dir == "" {
		db, err = leveldb.Open(storage.NewMemStorage(), o)
	} else {
		path := filepath.Join(dir, fmt.Sprintf("p%04d", partition))
		if err = os.MkdirAll(path, 0o755); err != nil {
			return nil, err
		}
		db, err = leveldb.OpenFile(path, o)
		if err != nil && leveldbCorrupt(err) {
			db, err = leveldb.RecoverFile(path, o)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open local store of partition %d: %w", partition, err)
	}
	return &store{db: db}, nil
}

func leveldbCorrupt(err error) bool { return lerrors.IsCorrupted(err) }

func stateKey(fn functions.TypeName, id string) []byte {
	k := make([]byte, 0, 2+len(fn)+len(id))
	k = append(k, 's')
	k = append(k, fn...)
	k = append(k, 0)
	return append(k, id...)
}

func offsetKey(fn functions.TypeName) []byte {
	return append([]byte{'o'}, fn...)
}

// topicIDKey holds the id of the table topic the values were read from.
func topicIDKey(fn functions.TypeName) []byte {
	return append([]byte{'i'}, fn...)
}

// topicID returns the stored table topic id of fn, or "".
func (s *store) topicID(fn functions.TypeName) (string, error) {
	v, err := s.db.Get(topicIDKey(fn), nil)
	if err == leveldb.ErrNotFound {
		return "", nil
	}
	return string(v), err
}

func (s *store) get(fn functions.TypeName, id string) ([]byte, error) {
	v, err := s.db.Get(stateKey(fn, id), nil)
	if err == leveldb.ErrNotFound {
		return nil, nil
	}
	return v, err
}

// offset returns the next table offset to read for fn (0 if none).
func (s *store) offset(fn functions.TypeName) (int64, error) {
	v, err := s.db.Get(offsetKey(fn), nil)
	if err == leveldb.ErrNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("local store: offset of %s has %d bytes", fn, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// storeBatch collects writes for one atomic update of a store.
type storeBatch struct {
	b leveldb.Batch
	// timers holds the due time of each timer the batch writes (-1:
	// deleted), for later writes of the same key in the batch
	timers map[string]int64
}

func (b *storeBatch) put(fn functions.TypeName, id string, value []byte) {
	if value == nil {
		b.b.Delete(stateKey(fn, id))
		return
	}
	b.b.Put(stateKey(fn, id), value)
}

func (b *storeBatch) setOffset(fn functions.TypeName, next int64) {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(next))
	b.b.Put(offsetKey(fn), v[:])
}

func (b *storeBatch) setTopicID(fn functions.TypeName, id string) {
	if id != "" {
		b.b.Put(topicIDKey(fn), []byte(id))
	}
}

// reset empties the batch after it was written.
func (b *storeBatch) reset() {
	b.b.Reset()
	b.timers = nil
}

func (s *store) write(b *storeBatch) error {
	if b.b.Len() == 0 {
		return nil
	}
	return s.db.Write(&b.b, nil)
}

// wipe removes every value and the offset of fn.
func (s *store) wipe(fn functions.TypeName) error {
	var b leveldb.Batch
	prefix := append([]byte{'s'}, fn...)
	prefix = append(prefix, 0)
	it := s.db.NewIterator(util.BytesPrefix(prefix), nil)
	for it.Next() {
		b.Delete(append([]byte(nil), it.Key()...))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return err
	}
	b.Delete(offsetKey(fn))
	b.Delete(topicIDKey(fn))
	return s.db.Write(&b, nil)
}

func (s *store) close() error { return s.db.Close() }

// timersFn is the pseudo function type under which a store keeps the
// offset and topic id of its timers topic partition.
const timersFn functions.TypeName = "\x00timers"

func timerKey(key []byte) []byte { return append([]byte{'m'}, key...) }

func dueKey(due int64, key []byte) []byte {
	k := make([]byte, 9, 9+len(key))
	k[0] = 'd'
	binary.BigEndian.PutUint64(k[1:], uint64(due))
	return append(k, key...)
}

// timer returns the stored timer record of key and its due time; ok is
// false when there is none.
func (s *store) timer(key []byte) (due int64, rec []byte, ok bool, err error) {
	v, err := s.db.Get(timerKey(key), nil)
	if err == leveldb.ErrNotFound {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	if len(v) < 8 {
		return 0, nil, false, fmt.Errorf("local store: timer entry of %d bytes", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), v[8:], true, nil
}

// dueTimers calls fn, in due order, for every stored timer due in
// [from, to) (Unix milliseconds), until fn returns false.
func (s *store) dueTimers(from, to int64, fn func(due int64, key []byte) bool) error {
	it := s.db.NewIterator(&util.Range{Start: dueKey(from, nil), Limit: dueKey(to, nil)}, nil)
	defer it.Release()
	for it.Next() {
		k := it.Key()
		if !fn(int64(binary.BigEndian.Uint64(k[1:9])), append([]byte(nil), k[9:]...)) {
			break
		}
	}
	return it.Error()
}

// putTimer adds (rec != nil) or removes a timer in the batch, keeping the
// due index right. The due time of an existing timer is looked up in the
// batch first, then in the store.
// When oldKnown, oldDue is the due time of the stored timer (0: none) and
// the store is not asked.
func (b *storeBatch) putTimer(s *store, key []byte, due int64, rec []byte, oldKnown bool, oldDue int64) error {
	if b.timers == nil {
		b.timers = make(map[string]int64)
	}
	old, had := b.timers[string(key)]
	switch {
	case had:
		had = old >= 0
	case oldKnown:
		old, had = oldDue, oldDue != 0
	default:
		d, _, ok, err := s.timer(key)
		if err != nil {
			return err
		}
		old, had = d, ok
	}
	if had {
		b.b.Delete(dueKey(old, key))
	}
	if rec == nil {
		b.b.Delete(timerKey(key))
		b.timers[string(key)] = -1
		return nil
	}
	v := make([]byte, 8, 8+len(rec))
	binary.BigEndian.PutUint64(v, uint64(due))
	b.b.Put(timerKey(key), append(v, rec...))
	b.b.Put(dueKey(due, key), nil)
	b.timers[string(key)] = due
	return nil
}

// wipeTimers removes every timer and the timers topic's offset.
func (s *store) wipeTimers() error { return s.wipePrefixes(timersFn, 'm', 'd') }

// wipePrefixes removes every entry whose key starts with one of the
// one-byte prefixes, and the offset and topic id kept under fn.
func (s *store) wipePrefixes(fn functions.TypeName, prefixes ...byte) error {
	var b leveldb.Batch
	for _, prefix := range prefixes {
		it := s.db.NewIterator(util.BytesPrefix([]byte{prefix}), nil)
		for it.Next() {
			b.Delete(append([]byte(nil), it.Key()...))
		}
		it.Release()
		if err := it.Error(); err != nil {
			return err
		}
	}
	b.Delete(offsetKey(fn))
	b.Delete(topicIDKey(fn))
	return s.db.Write(&b, nil)
}

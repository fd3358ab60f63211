package processor

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
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
// 'i' type -> id of the table topic the values came from.
type store struct {
	db *leveldb.DB
}

func openStore(dir string, partition int32) (*store, error) {
	var (
		db  *leveldb.DB
		err error
	)
	o := &opt.Options{NoSync: true}
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
type storeBatch struct{ b leveldb.Batch }

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

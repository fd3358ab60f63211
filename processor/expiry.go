package processor

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
)

// State expiration.
//
// A state value that its function declares expiring carries its expiry
// time in the table record (wire.StateRecord). Invocations never see an
// expired value (functions.Unexpired), and each write stamps the expiry
// anew (functions.StampExpiry; every call, for after-call values). To make
// the changelog shrink, the local store indexes every record that holds
// an expiring value by its earliest expiry ('x' key); once a second the
// session sweeps the index up to now and writes the records of the
// addresses whose values expired, without those values (a tombstone when
// none is left), in a transaction like any other write. Index entries
// are only added, never updated: the sweep drops the ones that no longer
// match their record.

// sweepInterval is how often a session sweeps expired state.
const sweepInterval = time.Second

// sweepBatch bounds the records one sweep writes.
const sweepBatch = 1000

// expirations returns the declared expirations of a function type's state
// by name; nil when nothing of it expires.
func (p *Processor) expirations(fn functions.TypeName) map[string]functions.Expiration {
	p.expMu.Lock()
	defer p.expMu.Unlock()
	if m, ok := p.exps[fn]; ok {
		return m
	}
	var m map[string]functions.Expiration
	if infos, ok := p.reg.StateNames(fn); ok {
		for _, info := range infos {
			if info.Expiration.Mode != functions.ExpireNever {
				if m == nil {
					m = make(map[string]functions.Expiration)
				}
				m[info.Name] = info.Expiration
			}
		}
		p.exps[fn] = m
	}
	return m
}

// learnExpirations records the expirations a remote function type declared.
func (p *Processor) learnExpirations(fn functions.TypeName, specs []functions.StateInfo) {
	var m map[string]functions.Expiration
	for _, s := range specs {
		if s.Expiration.Mode != functions.ExpireNever {
			if m == nil {
				m = make(map[string]functions.Expiration)
			}
			m[s.Name] = s.Expiration
		}
	}
	p.expMu.Lock()
	p.exps[fn] = m
	p.expMu.Unlock()
}

// expiryKey is the index entry of an address whose earliest expiry is at.
func expiryKey(at time.Time, fn functions.TypeName, id string) []byte {
	k := make([]byte, 9, 10+len(fn)+len(id))
	k[0] = 'x'
	binary.BigEndian.PutUint64(k[1:], uint64(at.UnixMilli()))
	k = append(k, fn...)
	k = append(k, 0)
	return append(k, id...)
}

// parseExpiryKey splits an index entry.
func parseExpiryKey(k []byte) (fn functions.TypeName, id string, ok bool) {
	if len(k) < 10 || k[0] != 'x' {
		return "", "", false
	}
	rest := k[9:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", "", false
	}
	return functions.TypeName(rest[:i]), string(rest[i+1:]), true
}

// earliestExpiry returns the earliest expiry of a record's values, and
// false when none expires.
func earliestExpiry(rec wire.StateRecord) (time.Time, bool) {
	var first time.Time
	for _, v := range rec {
		if !v.ExpiresAt.IsZero() && (first.IsZero() || v.ExpiresAt.Before(first)) {
			first = v.ExpiresAt
		}
	}
	return first, !first.IsZero()
}

// indexExpiry adds the index entry of a record written to the store.
func (b *storeBatch) indexExpiry(fn functions.TypeName, id string, rec wire.StateRecord) {
	if at, ok := earliestExpiry(rec); ok {
		b.b.Put(expiryKey(at, fn, id), nil)
	}
}

// expiring calls fn for the index entries up to now, earliest first, until
// fn returns false.
func (s *store) expiring(now time.Time, fn func(key []byte) bool) error {
	it := s.db.NewIterator(&util.Range{Start: []byte{'x'}, Limit: expiryKey(now.Add(time.Millisecond), "", "")}, nil)
	defer it.Release()
	for it.Next() {
		if !fn(append([]byte(nil), it.Key()...)) {
			break
		}
	}
	return it.Error()
}

// sweep stages the records of addresses whose state expired in the open
// transaction (opened if needed), and the index entries to drop once it
// commits; stale entries (nothing expired) are dropped at once.
func (s *session) sweep() error {
	now := s.p.cfg.now()
	n := 0
	for _, pp := range s.parts {
		var keys [][]byte
		err := pp.store.expiring(now, func(k []byte) bool {
			keys = append(keys, k)
			return len(keys) < sweepBatch-n
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			fn, id, ok := parseExpiryKey(k)
			if !ok {
				if err := s.dropIndexEntry(pp, k); err != nil {
					return err
				}
				continue
			}
			ref := stateRef{part: pp.id, fn: fn, id: id}
			rec, err := s.state(ref)
			if err != nil {
				return err
			}
			live := functions.Unexpired(rec, now)
			if len(live) == len(rec) {
				// nothing expired: a stale entry
				if err := s.dropIndexEntry(pp, k); err != nil {
					return err
				}
				continue
			}
			t, err := s.begin()
			if err != nil {
				return err
			}
			t.state.set(ref, live, nil)
			t.state.swept[pp.id] = append(t.state.swept[pp.id], k)
			dropped := int64(len(rec) - len(live))
			s.p.count(func(s *Stats) { s.Expired += dropped })
			s.p.m.Expired(int(dropped))
			n++
		}
	}
	return nil
}

// dropIndexEntry removes an expiry index entry that names nothing to
// expire: in the open transaction's batch if there is one (a record it
// writes may need the entry), else at once.
func (s *session) dropIndexEntry(pp *partition, k []byte) error {
	if s.txn != nil {
		s.txn.state.swept[pp.id] = append(s.txn.state.swept[pp.id], k)
		return nil
	}
	var b storeBatch
	b.b.Delete(k)
	return pp.store.write(&b)
}

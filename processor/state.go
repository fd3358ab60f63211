package processor

import (
	"errors"
	"fmt"
	"slices"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
)

// The state part: the tables of the function types (one compacted topic
// per type, key = function id, value = every state value of the address)
// and, in the local store, the index of expiring state (expiry.go).

type stateRef struct {
	part int32
	fn   functions.TypeName
	id   string
}

// stateStage is the state a transaction changed.
type stateStage struct {
	// overlay holds the new values of the changed addresses; a nil
	// record clears the address
	overlay map[stateRef]wire.StateRecord
	// dirty lists the changed addresses in the order of their first change
	dirty []stateRef
	// writers maps each changed address to the consumed record whose
	// invocation wrote it last (nil for the expiry sweep)
	writers map[stateRef]*record
	// encoded holds the records flush wrote, by dirty index
	encoded [][]byte
	// swept are the expiry index entries the transaction's sweep handled,
	// per partition, to drop once it commits
	swept map[int32][][]byte
}

func newStateStage() stateStage {
	return stateStage{overlay: make(map[stateRef]wire.StateRecord), writers: make(map[stateRef]*record), swept: make(map[int32][][]byte)}
}

// set stages the values of an address, written for the consumed record src.
func (st *stateStage) set(ref stateRef, rec wire.StateRecord, src *record) {
	if _, seen := st.overlay[ref]; !seen {
		st.dirty = append(st.dirty, ref)
	}
	if len(rec) == 0 {
		rec = nil
	}
	st.overlay[ref] = rec
	st.writers[ref] = src
}

type statePart struct{}

func (statePart) flush(s *session, t *txn) {
	st := &t.state
	st.encoded = make([][]byte, len(st.dirty))
	for i, ref := range st.dirty {
		b := encodeState(st.overlay[ref])
		st.encoded[i] = b
		s.produce(&output{Topic: string(s.p.topo.TableTopic(ref.fn)), Partition: ref.part, Key: []byte(ref.id), Value: b,
			src: st.writers[ref], store: ref.fn})
	}
}

func (statePart) write(s *session, t *txn, b batches) error {
	st := &t.state
	for i, ref := range st.dirty {
		b.of(ref.part).put(ref.fn, ref.id, st.encoded[i])
		b.of(ref.part).indexExpiry(ref.fn, ref.id, st.overlay[ref])
	}
	for part, keys := range st.swept {
		for _, k := range keys {
			b.of(part).b.Delete(k)
		}
	}
	return nil
}

func (statePart) committed(s *session, t *txn) {
	for _, ref := range t.state.dirty {
		s.remember(ref, t.state.overlay[ref])
	}
}

func (statePart) changelogs(p *Processor, st *store, part int32, asides *[]aside) []changelog {
	var out []changelog
	for _, fn := range p.tableTypes() {
		topic := string(p.topo.TableTopic(fn))
		out = append(out, changelog{name: fn, topic: topic, wipe: func() error { return st.wipe(fn) },
			put: func(b *storeBatch, r kafkaread.Record) error {
				if r.Value == nil {
					b.put(fn, string(r.Key), nil)
					return nil
				}
				rec, err := wire.DecodeStateRecord(r.Value)
				if err == nil && len(rec) == 0 {
					// stateloop writes a tombstone, never an empty record
					err = errors.New("an empty state record")
				}
				if err != nil {
					// written by someone else: keep the address's last good
					// value and put the record aside
					target := functions.Address{Type: fn, ID: string(r.Key)}
					*asides = append(*asides, aside{
						rec:    &record{Topic: topic, Partition: part, Offset: r.Offset, Key: r.Key, Value: r.Value},
						reason: fmt.Sprintf("table record of %s does not decode (%v); recovery left it out, the address keeps its previous state", target, err),
						target: target,
					})
					p.cfg.logger.Warn("table record does not decode; left out of the state", "topic", topic, "partition", part,
						"offset", r.Offset, "function_type", fn, "function_id", string(r.Key), "err", err)
					return nil
				}
				b.put(fn, string(r.Key), r.Value)
				b.indexExpiry(fn, string(r.Key), rec)
				return nil
			}})
	}
	return out
}

// encodeState encodes the values of an address, sorted by name; nil for
// an address without values (a tombstone).
func encodeState(rec wire.StateRecord) []byte {
	if len(rec) == 0 {
		return nil
	}
	names := make([]string, 0, len(rec))
	for n := range rec {
		names = append(names, n)
	}
	slices.Sort(names)
	return wire.AppendStateRecord(nil, rec, names)
}

// state returns the current values of an address: the open transaction's
// overlay, else the committed state (cache, local store).
func (s *session) state(ref stateRef) (wire.StateRecord, error) {
	if s.txn != nil {
		if rec, ok := s.txn.state.overlay[ref]; ok {
			return rec, nil
		}
	}
	if rec, ok := s.cache[ref]; ok {
		return rec, nil
	}
	pt := s.parts[ref.part]
	if pt == nil {
		return nil, fmt.Errorf("partition %d is not owned by this instance", ref.part)
	}
	b, err := pt.store.get(ref.fn, ref.id)
	if err != nil {
		return nil, err
	}
	var rec wire.StateRecord
	if b != nil {
		if rec, err = wire.DecodeStateRecord(b); err != nil {
			return nil, err
		}
	}
	s.remember(ref, rec)
	return rec, nil
}

// maxCached bounds the decoded committed state a session keeps.
const maxCached = 100_000

// remember caches the committed state of an address. The cache holds only
// committed values (what the local store has), so an aborted transaction
// never needs to touch it; it lives as long as the session, in which this
// session is the only writer of its partitions.
func (s *session) remember(ref stateRef, rec wire.StateRecord) {
	if len(s.cache) >= maxCached {
		clear(s.cache)
	}
	s.cache[ref] = rec
}

// applyState stages the state of an address after an invocation, made for
// the consumed record src: current (the state the invocation saw) with its
// changes, the expiry of expiring values stamped. An invocation that
// changes nothing is not written, unless it moves an after-call expiry.
func (s *session) applyState(t *txn, src *record, ref stateRef, current wire.StateRecord, changes []functions.StateChange) {
	exps := s.p.expirations(ref.fn)
	if len(changes) == 0 && len(exps) == 0 {
		return
	}
	// A record from the overlay belongs to this transaction and may be
	// changed in place; a committed one (cache, store) is copied, since an
	// abort must find it unchanged. current has no expired values, so an
	// overlay record that had some is copied too.
	next, own := t.state.overlay[ref]
	if !own || next == nil || len(next) != len(current) {
		next = make(wire.StateRecord, len(current)+len(changes))
		for k, v := range current {
			next[k] = v
		}
	}
	written := make([]string, 0, len(changes))
	for _, c := range changes {
		if c.Deleted {
			delete(next, c.Name)
		} else {
			next[c.Name] = c.Value
			written = append(written, c.Name)
		}
	}
	if stamped := functions.StampExpiry(next, written, exps, s.p.cfg.now()); len(changes) == 0 && !stamped {
		return
	}
	t.state.set(ref, next, src)
}

package processor

import (
	"fmt"
	"slices"
	"time"

	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkaread"
	"github.com/stateloop/stateloop/internal/wire"
)

// Inboxes.
//
// A message that cannot be finished in the transaction that consumed it
// waits in its address's inbox, a queue kept in the compacted topic
// <app>-inbox (in the partition of the address, key = address and a
// sequence number) and in the partition's local store; the transaction
// that puts it there commits the consumed offset, so the partition goes
// on. Three kinds of message wait there:
//
//   - one whose invocation failed: its address is parked, and the message
//     is tried again after a backoff that doubles, then goes to the
//     dead-letter topic after the retries;
//   - every message to an address whose inbox is not empty: it waits its
//     turn, so messages to an address keep their order;
//   - a call to a remote function: its entry is written only if the
//     request is still running when the transaction commits, and removed
//     in the transaction that applies the result; a session that takes
//     the partition over sends it again;
//   - a message to a function type of a namespace whose table is being
//     created.
//
// Nothing else waits for a parked address: other addresses go on. The
// transaction that delivers a message from the inbox removes its entry
// with the message's effects, so each is delivered once.

// inboxFn is the pseudo function type under which a store keeps the
// offset and topic id of its inbox partition.
const inboxFn functions.TypeName = "\x00inbox"

// inboxStoreKey is the store key of an inbox entry.
func inboxStoreKey(key []byte) []byte { return append([]byte{'q'}, key...) }

// inboxEntry is a message in an inbox.
type inboxEntry struct {
	seq      uint64
	key      []byte // wire.AppendInboxKey
	env      wire.Envelope
	src      *record
	attempts int32
	next     time.Time // when to try again; zero: as soon as its turn comes
	// remote: the address's function type is remote; submitted: the call
	// is with the session's batcher
	remote    bool
	submitted bool
	// span is the span of the submitted remote call
	span delivery
}

func (e *inboxEntry) value() []byte {
	w := wire.InboxEntry{Message: e.env, Attempts: e.attempts,
		Source: wire.Source{Topic: e.src.Topic, Partition: e.src.Partition, Offset: e.src.Offset, Key: e.src.Key, Value: e.src.Value}}
	if !e.next.IsZero() {
		w.NextAttemptUnixMilli = e.next.UnixMilli()
	}
	return wire.AppendInboxEntry(nil, w)
}

// inbox is the queue of one address.
type inbox struct {
	addr    functions.Address
	part    int32
	entries []*inboxEntry // by seq
	nextSeq uint64
}

// inboxStage holds the inbox writes of a transaction by key, in order.
type inboxStage struct {
	writes map[string]*inboxWrite
	order  []string
}

type inboxWrite struct {
	part  int32
	key   []byte
	value []byte // nil removes the entry
	// created: the entry was made in this transaction (removing it again
	// writes nothing)
	created bool
	src     *record
}

func newInboxStage() inboxStage { return inboxStage{writes: make(map[string]*inboxWrite)} }

func (st *inboxStage) set(w *inboxWrite) {
	k := string(w.key)
	old, seen := st.writes[k]
	if !seen {
		st.order = append(st.order, k)
	} else {
		w.created = old.created
	}
	if w.value == nil && w.created {
		// made and removed in this transaction: nothing to write
		delete(st.writes, k)
		st.order = slices.DeleteFunc(st.order, func(o string) bool { return o == k })
		return
	}
	st.writes[k] = w
}

// inboxPart is the part of the inboxes.
type inboxPart struct{}

func (inboxPart) flush(s *session, t *txn) {
	topic := string(s.p.topo.InboxTopic())
	for _, k := range t.inbox.order {
		w := t.inbox.writes[k]
		s.produce(&output{Topic: topic, Partition: w.part, Key: w.key, Value: w.value, src: w.src, store: inboxFn})
	}
}

func (inboxPart) write(s *session, t *txn, b batches) error {
	for _, k := range t.inbox.order {
		w := t.inbox.writes[k]
		if w.value == nil {
			b.of(w.part).b.Delete(inboxStoreKey(w.key))
		} else {
			b.of(w.part).b.Put(inboxStoreKey(w.key), w.value)
		}
	}
	return nil
}

// committed has nothing to do: the session's inboxes are the
// transaction's already (a failed one reloads them from the stores).
func (inboxPart) committed(*session, *txn) {}

func (inboxPart) changelogs(p *Processor, st *store, _ int32, _ *[]aside) []changelog {
	return []changelog{{name: inboxFn, topic: string(p.topo.InboxTopic()),
		wipe: func() error { return st.wipePrefixes(inboxFn, 'q') },
		put: func(b *storeBatch, r kafkaread.Record) error {
			if r.Value == nil {
				b.b.Delete(inboxStoreKey(r.Key))
			} else {
				b.b.Put(inboxStoreKey(r.Key), r.Value)
			}
			return nil
		}}}
}

// loadInboxes reads the inboxes of a partition from its store into the
// session, and hands the remote calls among them to the batcher.
func (s *session) loadInboxes(pp *partition) error {
	it := pp.store.db.NewIterator(util.BytesPrefix([]byte{'q'}), nil)
	defer it.Release()
	for it.Next() {
		key := append([]byte(nil), it.Key()[1:]...)
		addr, seq, err := wire.DecodeInboxKey(key)
		if err != nil {
			s.p.cfg.logger.Warn("dropping an undecodable inbox entry", "partition", pp.id, "err", err)
			continue
		}
		// the iterator reuses its buffers; the entry keeps slices of it
		we, err := wire.DecodeInboxEntry(append([]byte(nil), it.Value()...))
		if err != nil {
			s.p.cfg.logger.Warn("dropping an undecodable inbox entry", "partition", pp.id, "address", addr.String(), "err", err)
			continue
		}
		ib := s.inboxes[addr]
		if ib == nil {
			ib = &inbox{addr: addr, part: pp.id}
			s.inboxes[addr] = ib
		}
		e := &inboxEntry{seq: seq, key: key, env: we.Message, attempts: we.Attempts, remote: s.isRemote(addr.Type) && we.Message.Control == nil,
			src: &record{Topic: we.Source.Topic, Partition: we.Source.Partition, Offset: we.Source.Offset, Key: we.Source.Key, Value: we.Source.Value}}
		if we.NextAttemptUnixMilli != 0 {
			e.next = time.UnixMilli(we.NextAttemptUnixMilli)
		}
		ib.entries = append(ib.entries, e)
		ib.nextSeq = max(ib.nextSeq, seq+1)
	}
	if err := it.Error(); err != nil {
		return err
	}
	for _, ib := range s.inboxes {
		if ib.part == pp.id {
			s.inboxChanged(ib)
		}
	}
	return nil
}

// reloadInboxes drops what a failed transaction did to the inboxes: they
// are read again from the stores, and their remote calls handed to the
// (new) batcher.
func (s *session) reloadInboxes() error {
	clear(s.inboxes)
	clear(s.remoteOut)
	clear(s.parked)
	for _, pp := range s.parts {
		if err := s.loadInboxes(pp); err != nil {
			return fmt.Errorf("load inboxes of partition %d: %w", pp.id, err)
		}
	}
	return nil
}

// waiting reports whether messages to addr wait in its inbox.
func (s *session) waiting(addr functions.Address) bool {
	ib := s.inboxes[addr]
	return ib != nil && len(ib.entries) > 0
}

// enqueue adds a message, which came with the consumed record src, to
// the inbox of its address in t.
func (s *session) enqueue(t *txn, part int32, env wire.Envelope, src *record) *inboxEntry {
	ib := s.inboxes[env.Target]
	if ib == nil {
		ib = &inbox{addr: env.Target, part: part}
		s.inboxes[env.Target] = ib
	}
	e := &inboxEntry{seq: ib.nextSeq, key: wire.AppendInboxKey(nil, env.Target, ib.nextSeq), env: env, src: src,
		remote: s.isRemote(env.Target.Type) && env.Control == nil}
	ib.nextSeq++
	ib.entries = append(ib.entries, e)
	t.inbox.set(&inboxWrite{part: part, key: e.key, value: e.value(), created: true, src: src})
	s.inboxChanged(ib)
	return e
}

// update writes an entry's new attempt count and retry time in t.
func (s *session) update(t *txn, ib *inbox, e *inboxEntry) {
	t.inbox.set(&inboxWrite{part: ib.part, key: e.key, value: e.value(), src: e.src})
}

// remove takes the first entry of an inbox out in t.
func (s *session) remove(t *txn, ib *inbox) {
	e := ib.entries[0]
	ib.entries = ib.entries[1:]
	t.inbox.set(&inboxWrite{part: ib.part, key: e.key, src: e.src})
	if len(ib.entries) == 0 {
		delete(s.inboxes, ib.addr)
	}
	s.inboxChanged(ib)
}

// inboxChanged updates what waits on an inbox: its remote calls go to the
// batcher (once the table of the type exists), and a local address with
// entries is parked: the retry pass delivers them.
func (s *session) inboxChanged(ib *inbox) {
	if len(ib.entries) == 0 {
		delete(s.parked, ib.addr)
		return
	}
	if !ib.entries[0].remote || !s.p.hasTable(ib.addr.Type) {
		s.parked[ib.addr] = true
		return
	}
	delete(s.parked, ib.addr)
	for _, e := range ib.entries {
		if !e.remote {
			// a control record: the calls after it wait until it is
			// applied, which the retry pass does once it is first
			break
		}
		if !e.submitted {
			s.submit(e)
		}
	}
}

// retryBackoff is how long an address waits after its attempts-th failed
// attempt.
func (s *session) retryBackoff(attempts int32) time.Duration {
	return s.p.cfg.retryBackoff << min(attempts-1, 20)
}

// retryParked delivers the inboxes of parked addresses whose first
// message is due, in the open transaction (opened if needed).
func (s *session) retryParked() error {
	now := s.p.cfg.now()
	for addr := range s.parked {
		if s.txn != nil && s.txn.size() >= s.p.cfg.commitCount {
			return nil
		}
		ib := s.inboxes[addr]
		if ib == nil || len(ib.entries) == 0 {
			delete(s.parked, addr)
			continue
		}
		if !s.p.hasTable(addr.Type) {
			if !s.tableReady(addr.Type) {
				continue
			}
		}
		if head := ib.entries[0]; head.next.After(now) {
			continue
		}
		t, err := s.begin()
		if err != nil {
			return err
		}
		s.drainInbox(t, ib)
		s.deliverLocal(t)
	}
	return nil
}

// drainInbox delivers the messages of an inbox in order, in t, until one
// fails, a remote call is sent, or t is full.
func (s *session) drainInbox(t *txn, ib *inbox) {
	for len(ib.entries) > 0 && t.size() < s.p.cfg.commitCount {
		e := ib.entries[0]
		if e.remote {
			s.inboxChanged(ib)
			return
		}
		t.delivered++
		target := ib.addr
		src := s.inboxSource(ib, e)
		if p, ok := s.poison[src.ref()]; ok {
			s.undeliverable(t, src, e.env, p.reason, !p.dropValue)
			s.remove(t, ib)
			continue
		}
		if err, bad := s.p.tableError(target.Type); bad {
			s.refuse(t, e.src, e.env, fmt.Sprintf("message to %s: %v", target, err))
			s.remove(t, ib)
			continue
		}
		if !s.invoke(t, src, e.env, ib.part, e) {
			return
		}
		s.remove(t, ib)
		s.deliverLocal(t)
	}
}

// inboxSource is the record a message delivered from an inbox answers
// with: its source record, named in the poison map by its inbox entry.
func (s *session) inboxSource(ib *inbox, e *inboxEntry) *record {
	src := *e.src
	src.poison = &RecordRef{Topic: string(s.p.topo.InboxTopic()), Partition: ib.part, Offset: int64(e.seq)}
	return &src
}

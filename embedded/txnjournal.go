package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transaction journal gives kfake's commits a commit point.
//
// kfake ends a transaction by writing a marker to each of its partitions,
// one after the other, and then the transaction's consumer-group offsets.
// A kill of the broker in the middle leaves some partitions committed and
// the others with records and no marker, which the next load treats as
// aborted: half a transaction. Kafka's coordinator does not have this
// problem because it first writes PrepareCommit to its transaction log
// and, after a crash, completes what it prepared.
//
// The embedded broker does the same from the outside. It watches the
// requests kfake handles: before a producer's first transactional records
// after the end of its previous transaction it appends "open" to the
// journal, and before kfake handles an EndTxn it appends "commit" or
// "abort". Both are appended before kfake acts, in the same step of its
// request loop. After a crash, a producer whose last entry is "commit"
// was committing: the guard completes the commit of its records that have
// no marker (see guardTransactions); every other producer's are aborted.

// journalFile, in the broker's data directory, is the journal.
const journalFile = "stateloop-txn-journal"

// journalEntrySize is the size of one entry: kind, producer id, epoch.
const journalEntrySize = 1 + 8 + 2

// Journal entry kinds.
const (
	journalOpen   byte = 'o'
	journalCommit byte = 'c'
	journalAbort  byte = 'a'
)

// journalCompactSize is the size past which the journal is rewritten
// with the last entry of each producer.
const journalCompactSize = 16 << 20

// producerEpoch identifies a producer's transactions of one epoch.
type producerEpoch struct {
	id    int64
	epoch int16
}

// readJournal returns the producers whose last journal entry is a commit:
// their transaction was being committed when the broker stopped.
func readJournal(dir string) (map[producerEpoch]bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, journalFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[producerEpoch]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read transaction journal: %w", err)
	}
	last := map[int64]journalEntry{}
	for ; len(b) >= journalEntrySize; b = b[journalEntrySize:] {
		e := decodeJournalEntry(b)
		last[e.pe.id] = e
	}
	committing := map[producerEpoch]bool{}
	for _, e := range last {
		if e.kind == journalCommit {
			committing[e.pe] = true
		}
	}
	return committing, nil
}

type journalEntry struct {
	kind byte
	pe   producerEpoch
}

func (e journalEntry) append(b []byte) []byte {
	b = append(b, e.kind)
	b = binary.BigEndian.AppendUint64(b, uint64(e.pe.id))
	return binary.BigEndian.AppendUint16(b, uint16(e.pe.epoch))
}

func decodeJournalEntry(b []byte) journalEntry {
	return journalEntry{kind: b[0], pe: producerEpoch{
		id:    int64(binary.BigEndian.Uint64(b[1:9])),
		epoch: int16(binary.BigEndian.Uint16(b[9:11])),
	}}
}

// txnJournal appends to the journal from kfake's control functions, which
// kfake runs one at a time in its request loop.
type txnJournal struct {
	dir    string
	logger *slog.Logger

	mu    sync.Mutex
	f     *os.File
	size  int64
	state map[int64]journalEntry // the last entry of each producer
	err   error
}

// startJournal starts a new journal (the guard has closed every
// transaction of the old one) and makes cl write to it.
func startJournal(cl *kfake.Cluster, dir string, logger *slog.Logger) (*txnJournal, error) {
	f, err := os.OpenFile(filepath.Join(dir, journalFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start transaction journal: %w", err)
	}
	j := &txnJournal{dir: dir, logger: logger, f: f, state: map[int64]journalEntry{}}
	cl.ControlKey(kmsg.Produce.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		if pe, ok := transactionalProducer(r.(*kmsg.ProduceRequest)); ok {
			if last, seen := j.state[pe.id]; !seen || last.kind != journalOpen || last.pe != pe {
				j.write(journalEntry{kind: journalOpen, pe: pe})
			}
		}
		return nil, nil, false
	})
	cl.ControlKey(kmsg.EndTxn.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.EndTxnRequest)
		kind := journalAbort
		if req.Commit {
			kind = journalCommit
		}
		j.write(journalEntry{kind: kind, pe: producerEpoch{req.ProducerID, req.ProducerEpoch}})
		return nil, nil, false
	})
	return j, nil
}

// transactionalProducer returns the producer of a produce request's
// transactional record batches.
func transactionalProducer(req *kmsg.ProduceRequest) (producerEpoch, bool) {
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			// RecordBatch v2: magic at 16, attributes at 21, producer
			// id at 43 and epoch at 51
			b := p.Records
			if len(b) < 53 || b[16] != 2 {
				continue
			}
			const transactional = 0x10
			if binary.BigEndian.Uint16(b[21:23])&transactional == 0 {
				return producerEpoch{}, false
			}
			return producerEpoch{int64(binary.BigEndian.Uint64(b[43:51])), int16(binary.BigEndian.Uint16(b[51:53]))}, true
		}
	}
	return producerEpoch{}, false
}

// write appends an entry. A journal that cannot be written is logged once
// and then no longer written: the broker goes on, with the crash safety
// of kfake alone.
func (j *txnJournal) write(e journalEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	j.state[e.pe.id] = e
	if _, err := j.f.Write(e.append(nil)); err != nil {
		j.fail(err)
		return
	}
	j.size += journalEntrySize
	if j.size >= journalCompactSize {
		j.compact()
	}
}

func (j *txnJournal) fail(err error) {
	j.err = err
	j.logger.Error("embedded: the transaction journal cannot be written; a crash may now split a transaction", "err", err)
}

// compact rewrites the journal with the last entry of each producer.
func (j *txnJournal) compact() {
	var b []byte
	for _, e := range j.state {
		if e.kind == journalOpen || e.kind == journalCommit {
			b = e.append(b)
		}
	}
	path := filepath.Join(j.dir, journalFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		j.fail(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		j.fail(err)
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		j.fail(err)
		return
	}
	_ = j.f.Close()
	j.f, j.size = f, int64(len(b))
	for id, e := range j.state {
		if e.kind == journalAbort {
			delete(j.state, id)
		}
	}
}

// forgetSnapshots removes kfake's snapshot of each partition, so that its
// next load reads the partition's records and markers from its segments
// (a snapshot keeps the aborted ranges kfake had in memory). The layout
// is kfake's: <dir>/partitions/<topic, path-escaped>-<partition>/.
func forgetSnapshots(dir string, parts []topicPart) error {
	for _, tp := range parts {
		path := filepath.Join(dir, "partitions", fmt.Sprintf("%s-%d", url.PathEscape(tp.topic), tp.part), "snapshot.json")
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the snapshot of %s/%d: %w", tp.topic, tp.part, err)
		}
	}
	return nil
}

func (j *txnJournal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if j.err == nil {
		j.err = io.ErrClosedPipe
	}
	return err
}

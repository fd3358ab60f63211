package processor

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// Tests of the recovery of local stores from the changelog (table) topics,
// and of the read_committed reader underneath it.

// recKeys returns n keys that cover every one of the 4 partitions.
func recKeys(t testing.TB, n int) []string {
	t.Helper()
	var keys []string
	covered := map[int32]bool{}
	for i := 0; i < n; i++ {
		k := "k" + strconv.Itoa(i)
		keys = append(keys, k)
		covered[partitionFor(k, 4)] = true
	}
	if len(covered) != 4 {
		t.Fatalf("keys %v cover partitions %v, want all 4", keys, covered)
	}
	return keys
}

// recWords writes `rounds` words for every key to the counter app's ingress.
func recWords(t testing.TB, client sarama.Client, app string, keys []string, rounds int) {
	t.Helper()
	var recs [][2][]byte
	for r := 0; r < rounds; r++ {
		for _, k := range keys {
			recs = append(recs, [2][]byte{[]byte(k), []byte("w")})
		}
	}
	produce(t, client, app+"-words", recs...)
}

// recEgress parses the counter app's egress: for every key the counts it
// wrote, in order (a key's records share a partition).
func recEgress(t testing.TB, client sarama.Client, app string) (map[string][]int64, int) {
	t.Helper()
	recs := readTopic(t, client, app+"-out")
	slices.SortFunc(recs, func(a, b topicRecord) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	out := map[string][]int64{}
	for _, r := range recs {
		k, v, ok := strings.Cut(string(r.Value), "=")
		if !ok {
			t.Fatalf("egress record %q is not key=count", r.Value)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("egress record %q: %v", r.Value, err)
		}
		out[k] = append(out[k], n)
	}
	return out, len(recs)
}

// recWaitEgress waits until the counter app's egress holds n records.
func recWaitEgress(t testing.TB, client sarama.Client, app string, n int, p *Processor) {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("%d egress records", n), func() (bool, string) {
		got := len(readTopic(t, client, app+"-out"))
		return got >= n, fmt.Sprintf("%d records, stats %+v", got, p.Stats())
	})
}

// recCheckCounts checks that every key's egress counts are exactly 1..want.
func recCheckCounts(t testing.TB, client sarama.Client, app string, keys []string, want int) {
	t.Helper()
	got, _ := recEgress(t, client, app)
	for _, k := range keys {
		seq := got[k]
		ok := len(seq) == want
		for i := 0; ok && i < len(seq); i++ {
			ok = seq[i] == int64(i+1)
		}
		if !ok {
			t.Errorf("key %s: egress counts %v, want 1..%d", k, seq, want)
		}
	}
}

// recDecodeCount decodes the counter app's state record.
func recDecodeCount(t testing.TB, b []byte) int64 {
	t.Helper()
	rec, err := wire.DecodeStateRecord(b)
	if err != nil {
		t.Fatalf("state record: %v", err)
	}
	n, err := codec.Int64().Decode(rec["count"].Value)
	if err != nil {
		t.Fatalf("state record count: %v", err)
	}
	return n
}

// recCountRecord encodes a counter app state record with count n.
func recCountRecord(n int64) []byte {
	v, _ := codec.Int64().Encode(n)
	rec := wire.StateRecord{"count": {TypeName: functions.LongType.Name(), Value: v}}
	return wire.AppendStateRecord(nil, rec, []string{"count"})
}

// recTable reads the counter app's table (read_committed): the count of
// every key.
func recTable(t testing.TB, client sarama.Client, topo topology.Topology) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	for _, r := range readTopic(t, client, string(topo.TableTopic(counterFn))) {
		if r.Value == nil {
			delete(counts, r.Key)
			continue
		}
		counts[r.Key] = recDecodeCount(t, r.Value)
	}
	return counts
}

func recCheckTable(t testing.TB, client sarama.Client, topo topology.Topology, keys []string, want int64) {
	t.Helper()
	got := recTable(t, client, topo)
	for _, k := range keys {
		if got[k] != want {
			t.Errorf("table %s: key %s has count %d, want %d", topo.TableTopic(counterFn), k, got[k], want)
		}
	}
	if len(got) != len(keys) {
		t.Errorf("table %s has %d keys, want %d: %v", topo.TableTopic(counterFn), len(got), len(keys), got)
	}
}

// recDataRecords returns the offsets of the committed data records of a
// partition from offset from up to its LSO.
func recDataRecords(t testing.TB, client sarama.Client, topic string, part int32, from int64) []int64 {
	t.Helper()
	start, _, lso, err := partitionEnds(client, topic, part)
	if err != nil {
		t.Fatalf("ends of %s/%d: %v", topic, part, err)
	}
	from = max(from, start)
	var offs []int64
	if _, err := readCommitted(context.Background(), client, topic, part, from, lso, func(r committedRecord) error {
		offs = append(offs, r.Offset)
		return nil
	}); err != nil {
		t.Fatalf("read %s/%d: %v", topic, part, err)
	}
	return offs
}

// recBatchAt fetches (read_uncommitted) the record batch holding offset off.
func recBatchAt(t testing.TB, client sarama.Client, topic string, part int32, off int64) *sarama.RecordBatch {
	t.Helper()
	broker, err := client.Leader(topic, part)
	if err != nil {
		t.Fatalf("leader of %s/%d: %v", topic, part, err)
	}
	req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 100, MinBytes: 1, MaxBytes: 1 << 20, Isolation: sarama.ReadUncommitted}
	req.AddBlock(topic, part, off, 1<<20, -1)
	resp, err := broker.Fetch(req)
	if err != nil {
		t.Fatalf("fetch %s/%d at %d: %v", topic, part, off, err)
	}
	block := resp.GetBlock(topic, part)
	if block == nil || block.Err != sarama.ErrNoError {
		t.Fatalf("fetch %s/%d at %d: %+v", topic, part, off, block)
	}
	for _, rs := range block.RecordsSet {
		b := rs.RecordBatch
		if b != nil && b.FirstOffset <= off && off <= b.FirstOffset+int64(b.LastOffsetDelta) {
			return b
		}
	}
	t.Fatalf("fetch %s/%d at %d: no batch holds the offset", topic, part, off)
	return nil
}

// recLog records the processor's log messages (and passes them on to the
// test log).
type recLog struct {
	next slog.Handler
	mu   *sync.Mutex
	recs *[]recLogRecord
}

type recLogRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]slog.Value
}

func newRecLog(t testing.TB) (*slog.Logger, *recLog) {
	h := &recLog{next: testLogger(t).Handler(), mu: new(sync.Mutex), recs: new([]recLogRecord)}
	return slog.New(h), h
}

func (h *recLog) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (h *recLog) Handle(ctx context.Context, r slog.Record) error {
	rec := recLogRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]slog.Value{}}
	r.Attrs(func(a slog.Attr) bool { rec.Attrs[a.Key] = a.Value.Resolve(); return true })
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *recLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &recLog{next: h.next.WithAttrs(as), mu: h.mu, recs: h.recs}
}

func (h *recLog) WithGroup(name string) slog.Handler {
	return &recLog{next: h.next.WithGroup(name), mu: h.mu, recs: h.recs}
}

// messages returns the records with the given message.
func (h *recLog) messages(msg string) []recLogRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []recLogRecord
	for _, r := range *h.recs {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// recovered returns, per loop partition, the record counts of its
// "partition recovered" log lines.
func (h *recLog) recovered() map[int32][]int64 {
	out := map[int32][]int64{}
	for _, r := range h.messages("partition recovered") {
		part := int32(r.Attrs["partition"].Int64())
		out[part] = append(out[part], r.Attrs["records"].Int64())
	}
	return out
}

// recRecover runs the recovery of one loop partition, white-box, into st.
func recRecover(t testing.TB, p *Processor, client sarama.Client, st *store, part int32, timeout time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var asides []aside
	if err := p.recover(ctx, saramaCluster{client: client}, st, part, &asides); err != nil {
		t.Fatalf("recover partition %d: %v (after %v)", part, err, time.Since(start))
	}
	return time.Since(start)
}

func recStoreCount(t testing.TB, st *store, key string) (int64, bool) {
	t.Helper()
	b, err := st.get(counterFn, key)
	if err != nil {
		t.Fatalf("store get %s: %v", key, err)
	}
	if b == nil {
		return 0, false
	}
	return recDecodeCount(t, b), true
}

func recCounter(t testing.TB, brokers []string, app string, opts ...Option) (*Processor, topology.Topology) {
	t.Helper()
	topo, reg := counterApp(app)
	opts = append([]Option{WithCommitInterval(20 * time.Millisecond), WithSessionTimeout(2 * time.Second), WithLogger(testLogger(t))}, opts...)
	p, err := New(brokers, topo, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p, topo
}

func recWaitReady(t testing.TB, p *Processor, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "processor ready", func() (bool, string) {
		s := p.Stats()
		return s.Ready && len(s.Partitions) == 4, fmt.Sprintf("%+v", s)
	})
}

// TestRecoveryNewInstanceWithEmptyStoreContinuesCountsFromChangelog: a new
// instance (another instance id, a fresh data directory) rebuilds every
// partition's state from the table topic, so counts continue exactly.
func TestRecoveryNewInstanceWithEmptyStoreContinuesCountsFromChangelog(t *testing.T) {
	brokers, app := testBroker(t, "rec-empty")
	client := testClient(t, brokers)
	keys := recKeys(t, 12)

	topo := recCountWords(t, brokers, client, app, keys, 4, WithInstanceID("first"))
	recCheckTable(t, client, topo, keys, 4)

	logger, logs := newRecLog(t)
	p2, _ := recCounter(t, brokers, app, WithInstanceID("second"), WithDataDir(t.TempDir()), WithLogger(logger))
	runProcessor(t, p2)
	recWaitReady(t, p2, 10*time.Second)
	recWords(t, client, app, keys, 3)
	recWaitEgress(t, client, app, 7*len(keys), p2)

	recCheckCounts(t, client, app, keys, 7)
	recCheckTable(t, client, topo, keys, 7)
	if s := p2.Stats(); s.Ingress != int64(3*len(keys)) || s.Invocations != int64(3*len(keys)) {
		t.Errorf("second instance: %d ingress records, %d invocations; want %d each (no reprocessing)", s.Ingress, s.Invocations, 3*len(keys))
	}
	// the second instance read the whole changelog: every table record
	// committed by the first
	rec := logs.recovered()
	for part := int32(0); part < 4; part++ {
		if len(rec[part]) == 0 {
			t.Errorf("partition %d: no \"partition recovered\" log line", part)
		}
	}
}

// TestRecoveryOfTableEndingWithCommitMarkerIsPromptAndComplete: after a
// commit the last offset of a table partition (HWM-1) is a transaction
// marker, not data. Recovery must see that it reached the end, promptly,
// with all the state.
func TestRecoveryOfTableEndingWithCommitMarkerIsPromptAndComplete(t *testing.T) {
	brokers, app := testBroker(t, "rec-marker")
	client := testClient(t, brokers)
	keys := recKeys(t, 12)

	topo := recCountWords(t, brokers, client, app, keys, 5, WithInstanceID("first"))

	table := string(topo.TableTopic(counterFn))
	if err := client.RefreshMetadata(table); err != nil {
		t.Fatal(err)
	}
	hwms := map[int32]int64{}
	for part := int32(0); part < 4; part++ {
		_, hwm, lso, err := partitionEnds(client, table, part)
		if err != nil {
			t.Fatal(err)
		}
		hwms[part] = hwm
		if hwm == 0 {
			t.Fatalf("table partition %d is empty; every partition has keys", part)
		}
		if lso != hwm {
			t.Fatalf("table partition %d: LSO %d != HWM %d after a clean stop", part, lso, hwm)
		}
		data := recDataRecords(t, client, table, part, 0)
		if len(data) == 0 {
			t.Fatalf("table partition %d: no data records below HWM %d", part, hwm)
		}
		if last := data[len(data)-1]; last >= hwm-1 {
			t.Errorf("table partition %d: last data record at %d, HWM %d: HWM-1 should be a commit marker", part, last, hwm)
		}
		b := recBatchAt(t, client, table, part, hwm-1)
		if !b.Control || isAbortMarker(b) {
			t.Errorf("table partition %d: batch at HWM-1=%d is not a commit marker (control %v)", part, hwm-1, b.Control)
		}
	}

	// white-box: recover every partition into an empty store, bounded
	want := recTable(t, client, topo)
	p2, _ := recCounter(t, brokers, app, WithInstanceID("second"))
	for part := int32(0); part < 4; part++ {
		st, err := openStore("", part)
		if err != nil {
			t.Fatal(err)
		}
		took := recRecover(t, p2, client, st, part, 10*time.Second)
		if took > 3*time.Second {
			t.Errorf("partition %d: recovery took %v", part, took)
		}
		if off, _ := st.offset(counterFn); off != hwms[part] {
			t.Errorf("partition %d: stored table offset %d after recovery, want the HWM %d", part, off, hwms[part])
		}
		for _, k := range keys {
			if partitionFor(k, 4) != part {
				continue
			}
			if n, ok := recStoreCount(t, st, k); !ok || n != want[k] || n != 5 {
				t.Errorf("partition %d: recovered count of %s is %d (present %v), want 5", part, k, n, ok)
			}
		}
		st.close()
	}

	// and a processor with an empty store is ready promptly and continues
	runProcessor(t, p2)
	recWaitReady(t, p2, 5*time.Second)
	recWords(t, client, app, keys, 1)
	recWaitEgress(t, client, app, 6*len(keys), p2)
	recCheckCounts(t, client, app, keys, 6)
}

// TestRecoveryWithOpenTransactionOnTableUsesDataBelowLSO: another producer
// holds a transaction open on a table partition. Recovery must not wait for
// it: it reads up to the last stable offset, never shows the uncommitted
// value, and processing goes on. When that transaction aborts, nothing
// changes.
func TestRecoveryWithOpenTransactionOnTableUsesDataBelowLSO(t *testing.T) {
	brokers, app := testBroker(t, "rec-open")
	client := testClient(t, brokers)
	keys := recKeys(t, 12)

	topo := recCountWords(t, brokers, client, app, keys, 3, WithInstanceID("first"))

	// an intruder opens a transaction on the table partition of k0 and
	// writes a bogus count of 1000 for it
	table := string(topo.TableTopic(counterFn))
	part := partitionFor("k0", 4)
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Transaction.ID = app + "-intruder"
	sc.Producer.Transaction.Timeout = time.Minute
	sc.Net.MaxOpenRequests = 1
	intruder, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	if err := intruder.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	_, bogusOff, err := intruder.SendMessage(&sarama.ProducerMessage{Topic: table, Partition: part, Key: sarama.StringEncoder("k0"), Value: sarama.ByteEncoder(recCountRecord(1000))})
	if err != nil {
		t.Fatal(err)
	}
	// and a value for a key that no one else writes
	ghost := ""
	for i := 0; ghost == ""; i++ {
		if k := "ghost" + strconv.Itoa(i); partitionFor(k, 4) == part {
			ghost = k
		}
	}
	if _, _, err := intruder.SendMessage(&sarama.ProducerMessage{Topic: table, Partition: part, Key: sarama.StringEncoder(ghost), Value: sarama.ByteEncoder(recCountRecord(1000))}); err != nil {
		t.Fatal(err)
	}
	_, hwm, lso, err := partitionEnds(client, table, part)
	if err != nil {
		t.Fatal(err)
	}
	if lso != bogusOff || hwm != bogusOff+2 {
		t.Fatalf("table partition %d: LSO %d, HWM %d; want the open transaction's record %d to hold the LSO", part, lso, hwm, bogusOff)
	}

	// white-box: recovery is prompt and does not see the open record
	p2, _ := recCounter(t, brokers, app, WithInstanceID("second"))
	st, err := openStore("", part)
	if err != nil {
		t.Fatal(err)
	}
	if took := recRecover(t, p2, client, st, part, 10*time.Second); took > 3*time.Second {
		t.Errorf("recovery under an open transaction took %v", took)
	}
	if n, _ := recStoreCount(t, st, "k0"); n != 3 {
		t.Errorf("recovered count of k0 under an open transaction: %d, want 3", n)
	}
	if n, ok := recStoreCount(t, st, ghost); ok {
		t.Errorf("recovered the open transaction's value of %s: %d", ghost, n)
	}
	if off, _ := st.offset(counterFn); off > bogusOff {
		t.Errorf("stored table offset %d is past the open transaction's record %d: its value would be skipped if it committed", off, bogusOff)
	}
	st.close()

	// a processor with an empty store recovers and continues from 3
	p3, _ := recCounter(t, brokers, app, WithInstanceID("third"))
	runProcessor(t, p3)
	recWaitReady(t, p3, 10*time.Second)
	recWords(t, client, app, keys, 2)
	recWaitEgress(t, client, app, 5*len(keys), p3)
	recCheckCounts(t, client, app, keys, 5)

	// the transaction aborts: nothing changes, and processing continues
	if err := intruder.AbortTxn(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "LSO back at HWM", func() (bool, string) {
		_, hwm, lso, err := partitionEnds(client, table, part)
		return err == nil && lso == hwm, fmt.Sprintf("LSO %d HWM %d err %v", lso, hwm, err)
	})
	recCheckTable(t, client, topo, keys, 5)
	if _, n := recEgress(t, client, app); n != 5*len(keys) {
		t.Errorf("egress has %d records after the abort, want %d", n, 5*len(keys))
	}
	recWords(t, client, app, keys, 1)
	recWaitEgress(t, client, app, 6*len(keys), p3)
	recCheckCounts(t, client, app, keys, 6)
	recCheckTable(t, client, topo, keys, 6)

	// and a fresh recovery skips the aborted record
	st, err = openStore("", part)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	recRecover(t, p2, client, st, part, 10*time.Second)
	if n, _ := recStoreCount(t, st, "k0"); n != 6 {
		t.Errorf("count of k0 recovered after the abort: %d, want 6", n)
	}
	if n, ok := recStoreCount(t, st, ghost); ok {
		t.Errorf("recovered the aborted value of %s: %d", ghost, n)
	}
}

// TestRecoveryResumesFromStoredTableOffsets: an instance restarted on its
// data directory reads only the table records after its stored offsets.
func TestRecoveryResumesFromStoredTableOffsets(t *testing.T) {
	brokers, app := testBroker(t, "rec-resume")
	client := testClient(t, brokers)
	keys := recKeys(t, 12)
	dir := t.TempDir()

	topo := recCountWords(t, brokers, client, app, keys, 3, WithInstanceID("a"), WithDataDir(dir))

	table := string(topo.TableTopic(counterFn))
	storeDir := filepath.Join(dir, "state", app)
	stored := map[int32]int64{}
	for part := int32(0); part < 4; part++ {
		st, err := openStore(storeDir, part)
		if err != nil {
			t.Fatal(err)
		}
		off, err := st.offset(counterFn)
		st.close()
		if err != nil {
			t.Fatal(err)
		}
		_, hwm, _, err := partitionEnds(client, table, part)
		if err != nil {
			t.Fatal(err)
		}
		data := recDataRecords(t, client, table, part, 0)
		if off <= 0 || off > hwm || len(data) == 0 || off <= data[len(data)-1] {
			t.Fatalf("partition %d: stored table offset %d; want > 0, past the last data record %v and <= HWM %d", part, off, data, hwm)
		}
		stored[part] = off
	}

	// another instance moves the table on while a is down
	pb, _ := recCounter(t, brokers, app, WithInstanceID("b"))
	stop := runProcessor(t, pb)
	recWaitReady(t, pb, 10*time.Second)
	recWords(t, client, app, keys, 1)
	recWaitEgress(t, client, app, 4*len(keys), pb)
	stop()

	want := map[int32]int64{}
	for part := int32(0); part < 4; part++ {
		after := len(recDataRecords(t, client, table, part, stored[part]))
		all := len(recDataRecords(t, client, table, part, 0))
		if after == 0 || after >= all {
			t.Fatalf("partition %d: %d table records after the stored offset, %d in all; the test needs 0 < after < all", part, after, all)
		}
		want[part] = int64(after)
	}

	logger, logs := newRecLog(t)
	pa, _ := recCounter(t, brokers, app, WithInstanceID("a"), WithDataDir(dir), WithLogger(logger))
	runProcessor(t, pa)
	recWaitReady(t, pa, 10*time.Second)
	got := logs.recovered()
	for part := int32(0); part < 4; part++ {
		if len(got[part]) != 1 || got[part][0] != want[part] {
			t.Errorf("partition %d: recovery read %v table records, want [%d] (the records after stored offset %d)", part, got[part], want[part], stored[part])
		}
	}
	recWords(t, client, app, keys, 1)
	recWaitEgress(t, client, app, 5*len(keys), pa)
	recCheckCounts(t, client, app, keys, 5)
	recCheckTable(t, client, topo, keys, 5)
}

// TestReadCommittedReturnsCommittedAndNonTransactionalRecordsInOrder reads
// a partition where two transactional producers commit and abort, with
// plain records in between, from every start offset and to every end.
func TestReadCommittedReturnsCommittedAndNonTransactionalRecordsInOrder(t *testing.T) {
	brokers, topic := testBroker(t, "rc-mixed")
	client := testClient(t, brokers)
	txnProducer := func(id string) sarama.SyncProducer {
		sc := sarama.NewConfig()
		sc.Version = sarama.V3_0_0_0
		sc.Producer.Idempotent = true
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Return.Successes = true
		sc.Producer.Partitioner = sarama.NewManualPartitioner
		sc.Producer.Transaction.ID = id
		sc.Net.MaxOpenRequests = 1
		sp, err := sarama.NewSyncProducer(brokers, sc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		return sp
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	plain, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	a, b := txnProducer(topic+"-a"), txnProducer(topic+"-b")

	type want struct {
		off   int64
		value string
	}
	var expect []want
	send := func(sp sarama.SyncProducer, value string, visible bool) int64 {
		t.Helper()
		_, off, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(value)})
		if err != nil {
			t.Fatalf("send %s: %v", value, err)
		}
		if visible {
			expect = append(expect, want{off, value})
		}
		return off
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	send(plain, "n1", true)
	must(a.BeginTxn())
	send(a, "a1", true)
	must(b.BeginTxn())
	send(b, "b1-aborted", false)
	send(plain, "n2", true)
	send(a, "a2", true)
	must(a.CommitTxn())
	send(b, "b2-aborted", false)
	send(plain, "n3", true)
	must(b.AbortTxn())
	must(a.BeginTxn())
	send(a, "a3-aborted", false)
	must(b.BeginTxn())
	send(b, "b3", true)
	send(a, "a4-aborted", false)
	must(a.AbortTxn())
	send(plain, "n4", true)
	send(b, "b4", true)
	must(b.CommitTxn())

	start, hwm, lso, err := partitionEnds(client, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if start != 0 || lso != hwm {
		t.Fatalf("partition ends: start %d, HWM %d, LSO %d", start, hwm, lso)
	}
	if last := expect[len(expect)-1].off; last != hwm-2 {
		t.Fatalf("the last data record is at %d, HWM %d: want the partition to end with a commit marker", last, hwm)
	}
	read := func(from, end int64) ([]want, int64) {
		t.Helper()
		var got []want
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		next, err := readCommitted(ctx, client, topic, 0, from, end, func(r committedRecord) error {
			got = append(got, want{r.Offset, string(r.Value)})
			return nil
		})
		if err != nil {
			t.Fatalf("readCommitted(%d, %d): %v", from, end, err)
		}
		return got, next
	}
	filter := func(from, end int64) []want {
		var out []want
		for _, w := range expect {
			if w.off >= from && w.off < end {
				out = append(out, w)
			}
		}
		return out
	}
	got, next := read(0, lso)
	if !slices.Equal(got, expect) {
		t.Errorf("readCommitted(0, LSO %d) = %v, want %v", lso, got, expect)
	}
	if next != lso {
		t.Errorf("readCommitted(0, LSO %d) reached %d, want the LSO", lso, next)
	}
	wrong := 0
	for from := int64(0); from < lso && wrong < 5; from++ {
		for end := from + 1; end <= lso && wrong < 5; end++ {
			got, next := read(from, end)
			if w := filter(from, end); !slices.Equal(got, w) {
				t.Errorf("readCommitted(%d, %d) = %v, want %v", from, end, got, w)
				wrong++
			}
			if next != end {
				// past end would skip records: a reader goes on from next
				t.Errorf("readCommitted(%d, %d) stopped at %d, want %d", from, end, next, end)
				wrong++
			}
		}
	}

	// consumeBatches on one raw fetch of the whole partition
	broker, err := client.Leader(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 100, MinBytes: 1, MaxBytes: 1 << 20, Isolation: sarama.ReadCommitted}
	req.AddBlock(topic, 0, 0, 1<<20, -1)
	resp, err := broker.Fetch(req)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	next, complete, err := consumeBatches(resp.GetBlock(topic, 0), 0, lso, func(r committedRecord) error {
		got = append(got, want{r.Offset, string(r.Value)})
		return nil
	})
	if err != nil || !complete || next != lso || !slices.Equal(got, expect) {
		t.Errorf("consumeBatches = %v, next %d, complete %v, err %v; want %v, next %d, complete", got, next, complete, err, expect, lso)
	}

	// an open transaction holds the LSO; the reader stops there promptly
	must(a.BeginTxn())
	send(a, "a5-open", false)
	n5 := send(plain, "n5", false) // above the LSO until a ends
	_, hwm, lso, err = partitionEnds(client, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lso >= hwm {
		t.Fatalf("open transaction: LSO %d, HWM %d", lso, hwm)
	}
	started := time.Now()
	got, next = read(0, lso)
	if !slices.Equal(got, expect) || next < lso {
		t.Errorf("readCommitted(0, LSO %d) under an open transaction = %v, reached %d; want %v", lso, got, next, expect)
	}
	if took := time.Since(started); took > 2*time.Second {
		t.Errorf("readCommitted under an open transaction took %v", took)
	}
	must(a.AbortTxn())
	// Kafka answers EndTxn before it has written the abort marker: wait
	// until the marker is in and the LSO has caught up with the HWM
	waitFor(t, 10*time.Second, "the abort marker", func() (bool, string) {
		_, hwm, lso, err = partitionEnds(client, topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		return lso == hwm && lso > n5+1, fmt.Sprintf("LSO %d, HWM %d", lso, hwm)
	})
	got, _ = read(0, lso)
	if w := append(slices.Clone(expect), want{n5, "n5"}); !slices.Equal(got, w) {
		t.Errorf("after the abort: readCommitted(0, LSO %d) = %v, want %v", lso, got, w)
	}
}

// TestRecoveryRebuildsStoreThatIsAheadOfChangelog: a local store whose
// stored offset is past the high water mark of its table (here the table
// topic was deleted and recreated) is wiped and rebuilt, not trusted.
func TestRecoveryRebuildsStoreThatIsAheadOfChangelog(t *testing.T) {
	brokers, app := testBroker(t, "rec-ahead")
	client, topo, keys, dir, _ := recCountThenDeleteTable(t, brokers, app)
	table := string(topo.TableTopic(counterFn))

	logger, logs := newRecLog(t)
	pa, _ := recCounter(t, brokers, app, WithInstanceID("a"), WithDataDir(dir), WithLogger(logger))
	stop := runProcessor(t, pa)
	recWaitReady(t, pa, 10*time.Second)
	wiped := map[int32]bool{}
	for _, r := range logs.messages("local store does not belong to this changelog, rebuilding") {
		wiped[int32(r.Attrs["partition"].Int64())] = true
	}
	if len(wiped) != 4 {
		t.Errorf("stores rebuilt for partitions %v, want all 4", wiped)
	}
	recWords(t, client, app, keys, 1)
	recWaitEgress(t, client, app, 4*len(keys), pa)
	stop()

	// the state restarted with the (new, empty) changelog
	got, _ := recEgress(t, client, app)
	for _, k := range keys {
		if seq := got[k]; len(seq) != 4 || seq[3] != 1 {
			t.Errorf("key %s: egress counts %v, want 1 2 3 then 1 (state rebuilt from the empty table)", k, seq)
		}
	}
	recCheckTable(t, client, topo, keys, 1)
	storeDir := filepath.Join(dir, "state", app)
	for part := int32(0); part < 4; part++ {
		st, err := openStore(storeDir, part)
		if err != nil {
			t.Fatal(err)
		}
		_, hwm, _, err := partitionEnds(client, table, part)
		if err != nil {
			t.Fatal(err)
		}
		if off, _ := st.offset(counterFn); off > hwm {
			t.Errorf("partition %d: stored offset %d still past the HWM %d", part, off, hwm)
		}
		for _, k := range keys {
			if partitionFor(k, 4) == part {
				if n, ok := recStoreCount(t, st, k); !ok || n != 1 {
					t.Errorf("partition %d: stored count of %s is %d (present %v), want 1", part, k, n, ok)
				}
			}
		}
		st.close()
	}
}

// TestRecoveryRebuildsStoreWhenTableWasRecreatedAndGrew: the table topic is
// deleted and created again and then holds more records than the store's
// stored offset, so offsets alone cannot tell; the topic id can, and the
// store is rebuilt from the new table instead of trusting stale values.
func TestRecoveryRebuildsStoreWhenTableWasRecreatedAndGrew(t *testing.T) {
	brokers, app := testBroker(t, "rec-regrown")
	client, topo, keys, dir, admin := recCountThenDeleteTable(t, brokers, app)
	table := string(topo.TableTopic(counterFn))
	compact := "compact"
	if err := admin.CreateTopic(table, &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false); err != nil {
		t.Fatalf("create %s: %v", table, err)
	}
	// more records per partition than the old store's offsets: other keys
	ghost, err := codec.Int64().Encode(100)
	if err != nil {
		t.Fatal(err)
	}
	value := wire.AppendStateRecord(nil, wire.StateRecord{"count": {TypeName: functions.LongType.Name(), Value: ghost}}, []string{"count"})
	pc := sarama.NewConfig()
	pc.Version = sarama.V3_0_0_0
	pc.Producer.Return.Successes = true
	pc.Producer.Partitioner = sarama.NewManualPartitioner
	sp, err := sarama.NewSyncProducer(brokers, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var msgs []*sarama.ProducerMessage
	for part := int32(0); part < 4; part++ {
		for i := 0; i < 50; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: table, Partition: part, Key: sarama.StringEncoder(fmt.Sprintf("ghost-%d-%d", part, i)), Value: sarama.ByteEncoder(value)})
		}
	}
	if err := sp.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}

	pa, _ := recCounter(t, brokers, app, WithInstanceID("a"), WithDataDir(dir))
	stop := runProcessor(t, pa)
	recWaitReady(t, pa, 10*time.Second)
	recWords(t, client, app, keys, 1)
	recWaitEgress(t, client, app, 4*len(keys), pa)
	stop()

	got, _ := recEgress(t, client, app)
	for _, k := range keys {
		if seq := got[k]; len(seq) != 4 || seq[3] != 1 {
			t.Errorf("key %s: egress counts %v, want 1 2 3 then 1 (state rebuilt from the recreated table)", k, seq)
		}
	}
}

// recCountThenDeleteTable counts three words for each of 12 keys with a
// data directory, stops, and deletes the counter's table topic.
func recCountThenDeleteTable(t *testing.T, brokers []string, app string) (client sarama.Client, topo topology.Topology, keys []string, dir string, admin sarama.ClusterAdmin) {
	t.Helper()
	client = testClient(t, brokers)
	keys = recKeys(t, 12)
	dir = t.TempDir()

	topo = recCountWords(t, brokers, client, app, keys, 3, WithInstanceID("a"), WithDataDir(dir))

	table := string(topo.TableTopic(counterFn))
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTopic(table); err != nil {
		t.Fatalf("delete %s: %v", table, err)
	}
	waitFor(t, 10*time.Second, "table topic deleted", func() (bool, string) {
		topics, err := admin.ListTopics()
		_, exists := topics[table]
		return err == nil && !exists, fmt.Sprintf("exists %v err %v", exists, err)
	})
	return client, topo, keys, dir, admin
}

// recCountWords runs a counter instance with opts until it has counted n
// words for each key, then stops it.
func recCountWords(t *testing.T, brokers []string, client sarama.Client, app string, keys []string, n int, opts ...Option) topology.Topology {
	t.Helper()
	p, topo := recCounter(t, brokers, app, opts...)
	stop := runProcessor(t, p)
	recWaitReady(t, p, 10*time.Second)
	recWords(t, client, app, keys, n)
	recWaitEgress(t, client, app, n*len(keys), p)
	stop()
	return topo
}

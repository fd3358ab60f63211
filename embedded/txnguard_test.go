package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// killChild kills the broker child with SIGKILL, as a kill of the whole
// process tree does, and waits for it to be gone.
func killChild(t *testing.T, b *Broker) {
	t.Helper()
	if err := syscall.Kill(b.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("broker child did not die")
	}
}

// Regression: kfake treats the records of a transaction that was open
// when it was killed as aborted on the next start, but writes nothing that
// says so. When the same producer later committed a transaction in that
// partition and the broker was killed again, the next start read the old
// records as part of the committed transaction: records that were aborted
// (and processed again by their consumer) came back, and every one of
// them was there twice.
func TestTransactionOpenAtAKillStaysAbortedAcrossLaterKills(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
	if err := createTopics(b.Addr(), map[string]int32{"guarded": 1}); err != nil {
		t.Fatal(err)
	}
	p, err := txnProducer(b.Addr(), "guard-txn")
	if err != nil {
		t.Fatal(err)
	}
	sendTxnTo(t, p, "guarded", true, 0, "kept-1")
	sendTxnTo(t, p, "guarded", false, 0, "lost-1", "lost-2", "lost-3")
	killChild(t, b)
	_ = p.Close()

	for round := 2; round <= 3; round++ {
		b = start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
		p, err = txnProducer(b.Addr(), "guard-txn")
		if err != nil {
			t.Fatal(err)
		}
		sendTxnTo(t, p, "guarded", true, 0, fmt.Sprintf("kept-%d", round))
		killChild(t, b)
		_ = p.Close()
	}

	b = start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
	got, err := consumeCommitted(b.Addr(), "guarded", 0, -1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kept-1", "kept-2", "kept-3"}; !slices.Equal(got, want) {
		t.Errorf("read_committed after three kills: %q, want %q", got, want)
	}
	for _, v := range got {
		if strings.HasPrefix(v, "lost") {
			t.Errorf("record %q of the transaction open at the first kill came back", v)
		}
	}
}

// kmsgClient is a franz-go client for raw requests to the broker.
func kmsgClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// A kill of the broker while it writes a commit's markers leaves some
// partitions committed and the others with records and no marker. The
// test makes that state by hand: the transaction's journal entry says
// "commit" (as the broker writes it before it writes any marker), and one
// of its two partitions has its commit marker.
func TestCommitSplitByAKillIsCompletedAtTheNextStart(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2})
	if err := createTopics(b.Addr(), map[string]int32{"split": 2}); err != nil {
		t.Fatal(err)
	}
	p, err := txnProducer(b.Addr(), "split-txn")
	if err != nil {
		t.Fatal(err)
	}
	sendTxnTo(t, p, "split", true, 0, "kept-0")
	sendTxnTo(t, p, "split", true, 1, "kept-1")
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for part := range int32(2) {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "split", Partition: part, Value: sarama.StringEncoder(fmt.Sprintf("half-%d", part))}); err != nil {
			t.Fatal(err)
		}
	}

	cl := kmsgClient(t, b.Addr())
	dp := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = "split", []int32{0}
	dp.Topics = append(dp.Topics, dt)
	resp, err := dp.RequestWith(context.Background(), cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || len(resp.Topics[0].Partitions[0].ActiveProducers) != 1 {
		t.Fatalf("describe producers: %v %+v", err, resp)
	}
	ap := resp.Topics[0].Partitions[0].ActiveProducers[0]
	pe := producerEpoch{ap.ProducerID, int16(ap.ProducerEpoch)}
	f, err := os.OpenFile(filepath.Join(dir, journalFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(journalEntry{kind: journalCommit, pe: pe}.append(nil)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wm := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = pe.id, pe.epoch, true
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = "split", []int32{0}
	m.Topics = append(m.Topics, mt)
	wm.Markers = append(wm.Markers, m)
	if _, err := wm.RequestWith(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	killChild(t, b)
	_ = p.Close()

	for round := range 2 {
		b = start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2})
		for part := range int32(2) {
			got, err := consumeCommitted(b.Addr(), "split", part, -1, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{fmt.Sprintf("kept-%d", part), fmt.Sprintf("half-%d", part)}; !slices.Equal(got, want) {
				t.Errorf("start %d: read_committed split/%d = %q, want %q (the whole transaction)", round+1, part, got, want)
			}
		}
		killChild(t, b)
	}
}

// sendTxnTo writes values to topic/part in one committed or open
// transaction of p.
func sendTxnTo(t *testing.T, p sarama.SyncProducer, topic string, commit bool, part int32, values ...string) {
	t.Helper()
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		if err := p.CommitTxn(); err != nil {
			t.Fatal(err)
		}
	}
}

// The running broker journals a producer's first transactional records
// and the end of its transactions, before it acts on them.
func TestJournalRecordsOpenAndEndOfTransactions(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
	if err := createTopics(b.Addr(), map[string]int32{"journaled": 1}); err != nil {
		t.Fatal(err)
	}
	p, err := txnProducer(b.Addr(), "journal-txn")
	if err != nil {
		t.Fatal(err)
	}
	sendTxnTo(t, p, "journaled", true, 0, "a", "b", "c")
	sendTxnTo(t, p, "journaled", false, 0, "d")
	if err := p.AbortTxn(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []byte
	for ; len(raw) >= journalEntrySize; raw = raw[journalEntrySize:] {
		kinds = append(kinds, decodeJournalEntry(raw).kind)
	}
	if want := []byte{journalOpen, journalCommit, journalOpen, journalAbort}; !slices.Equal(kinds, want) {
		t.Errorf("journal holds %q, want %q", kinds, want)
	}
}

// Regression: kfake saves its topic list when a topic is created with
// CreateTopics, but not when a client's metadata request creates it, so
// after a kill of the broker an auto-created topic and all its records
// were gone.
func TestAutoCreatedTopicSurvivesAKill(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2})
	c := saramaConfig()
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	sp, err := sarama.NewSyncProducer([]string{b.Addr()}, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "auto-created", Partition: 1, Value: sarama.StringEncoder(fmt.Sprint("v", i))}); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	killChild(t, b)
	b = start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2})
	got, err := consumeCommitted(b.Addr(), "auto-created", 1, 3, 0)
	if err != nil {
		t.Fatalf("after a kill: %v", err)
	}
	if want := []string{"v0", "v1", "v2"}; !slices.Equal(got, want) {
		t.Errorf("auto-created/1 after a kill = %q, want %q", got, want)
	}
}

// Regression: a kill of the broker between its write of a record batch
// and the write of the batch's index entry left the batch without an
// entry. kfake then read that batch as not transactional, so a
// transaction that was never committed became visible, and read every
// later entry for the batch before it, shuffling which batches are
// transactional.
func TestBatchWrittenWithoutItsIndexEntryIsRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
	if err := createTopics(b.Addr(), map[string]int32{"gap": 1}); err != nil {
		t.Fatal(err)
	}
	p, err := txnProducer(b.Addr(), "gap-txn")
	if err != nil {
		t.Fatal(err)
	}
	sendTxnTo(t, p, "gap", true, 0, "kept-1")
	sendTxnTo(t, p, "gap", false, 0, "lost-1")
	killChild(t, b)
	_ = p.Close()
	// as if the kill came between the two writes of the last batch
	idx, err := filepath.Glob(filepath.Join(dir, "partitions", "gap-0", "*.idx"))
	if err != nil || len(idx) != 1 {
		t.Fatalf("index files of gap-0: %v %v", idx, err)
	}
	fi, err := os.Stat(idx[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(idx[0], fi.Size()-kfakeIndexEntrySize); err != nil {
		t.Fatal(err)
	}

	for round := 2; round <= 3; round++ {
		b = start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
		p, err = txnProducer(b.Addr(), "gap-txn")
		if err != nil {
			t.Fatal(err)
		}
		sendTxnTo(t, p, "gap", true, 0, fmt.Sprintf("kept-%d", round))
		sendTxnTo(t, p, "gap", false, 0, fmt.Sprintf("lost-%d", round))
		if err := p.AbortTxn(); err != nil {
			t.Fatal(err)
		}
		killChild(t, b)
		_ = p.Close()
	}
	b = start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
	got, err := consumeCommitted(b.Addr(), "gap", 0, -1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kept-1", "kept-2", "kept-3"}; !slices.Equal(got, want) {
		t.Errorf("read_committed = %q, want %q", got, want)
	}
}

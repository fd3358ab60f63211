package embedded

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
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

// sendTxn writes values to topic/0 in a transaction of p and commits it
// when commit is set; otherwise the transaction stays open.
func sendTxn(t *testing.T, p sarama.SyncProducer, topic string, commit bool, values ...string) {
	t.Helper()
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		if err := p.CommitTxn(); err != nil {
			t.Fatal(err)
		}
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
	sendTxn(t, p, "guarded", true, "kept-1")
	sendTxn(t, p, "guarded", false, "lost-1", "lost-2", "lost-3")
	killChild(t, b)
	_ = p.Close()

	for round := 2; round <= 3; round++ {
		b = start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1})
		p, err = txnProducer(b.Addr(), "guard-txn")
		if err != nil {
			t.Fatal(err)
		}
		sendTxn(t, p, "guarded", true, fmt.Sprintf("kept-%d", round))
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

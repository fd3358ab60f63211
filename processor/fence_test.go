package processor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestFencesNameOnlyGoneOwnersOnceEach: the plan after a member left names
// it once, by the new owner of the lowest partition it owned, and never a
// member still in the group, a member that owned nothing or a member
// without a thread's group instance id.
func TestFencesNameOnlyGoneOwnersOnceEach(t *testing.T) {
	prev := &assignPlan{
		Members:   []string{"a", "b", "b-t1", "c", "x/member-1"},
		Instances: []string{"a", "b", "b", "c", "x"},
		Owner:     []int{0, 1, 2, 1, 4, 0, 2},
		Standbys:  make([][]int, 7),
	}
	live := map[string]bool{"a": true, "c": true}
	ap := &assignPlan{
		Members:   []string{"a", "c"},
		Instances: []string{"a", "c"},
		Owner:     []int{0, 1, 0, 0, 1, 0, 1},
		Standbys:  make([][]int, 7),
	}
	got := goneOwners(prev, ap, func(k string) bool { return live[k] })
	want := []planFence{{Key: "b", By: 1}, {Key: "b-t1", By: 0}}
	if !slices.Equal(got, want) {
		t.Errorf("fences %v, want %v", got, want)
	}
	if got := goneOwners(nil, ap, func(string) bool { return false }); got != nil {
		t.Errorf("fences without a previous plan %v, want none", got)
	}
	live["b"] = true
	if got := goneOwners(prev, ap, func(k string) bool { return live[k] }); !slices.Equal(got, []planFence{{Key: "b-t1", By: 0}}) {
		t.Errorf("fences with b in the group %v, want only b-t1's", got)
	}
	for _, c := range []struct {
		key, instance string
		want          bool
	}{{"a", "a", true}, {"a-t2", "a", true}, {"a-t0", "a", false}, {"a-t02", "a", false}, {"a-tx", "a", false}, {"a/m", "a", false}, {"", "", false}} {
		if got := threadKey(c.key, c.instance); got != c.want {
			t.Errorf("threadKey(%q, %q) = %v, want %v", c.key, c.instance, got, c.want)
		}
	}
}

// TestKilledInstancesPartitionsServedLongBeforeItsTransactionTimeout: an
// instance killed with SIGKILL while records flow leaves a transaction
// open, with a transaction timeout (60 s) far longer than the session
// timeout (3 s). The instance that stays fences the dead instance's
// transactional id when it takes its partitions over, so it serves them
// (new records processed) within 25 s of the kill, not after the broker
// aborts the transaction at its timeout; every count is exact.
func TestKilledInstancesPartitionsServedLongBeforeItsTransactionTimeout(t *testing.T) {
	fenceKillScenario(t, 1)
}

// TestKilledTwoThreadInstancesPartitionsServedLongBeforeItsTransactionTimeout
// is the same with two stream threads per instance: both of the dead
// instance's transactional ids are fenced, each by one thread.
func TestKilledTwoThreadInstancesPartitionsServedLongBeforeItsTransactionTimeout(t *testing.T) {
	fenceKillScenario(t, 2)
}

func fenceKillScenario(t *testing.T, threads int) {
	const (
		session = 3 * time.Second
		txn     = 60 * time.Second
		within  = 25 * time.Second
	)
	brokers, app := memberBroker(t, fmt.Sprintf("fence-kill%d", threads))
	topo, reg := cycleApp(app)
	client := testClient(t, brokers)
	stays, err := New(brokers, topo, reg, WithInstanceID("stays"), WithThreads(threads), WithSessionTimeout(session), WithTransactionTimeout(txn),
		WithCommitInterval(20*time.Millisecond), WithCommitCount(500), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, stays)
	waitFor(t, 60*time.Second, "the first instance owning every partition", func() (bool, string) { return ownsAll(stays, 4) })
	// its transactions stay open 2 s: the kill below finds one open
	victim := launchAppProcess(t, append(memberEnv(brokers, app, "victim", session, ""), "STATELOOP_TEST_TXN_TIMEOUT="+txn.String(),
		"STATELOOP_TEST_COMMIT_INTERVAL=2s", "STATELOOP_TEST_THREADS="+strconv.Itoa(threads))...)
	t.Cleanup(func() { _ = victim.cmd.Process.Kill(); _ = victim.cmd.Wait() })
	victim.waitReady(t, 60*time.Second)
	waitFor(t, 30*time.Second, "two instances sharing the partitions", func() (bool, string) {
		s := stays.Stats()
		return s.Ready && len(s.Partitions) == 2, fmt.Sprintf("partitions %v", s.Partitions)
	})

	const ids = 2000
	perID := map[string]int{}
	produceSeqs(t, client, app+"-in", 0, 2000, ids, perID)
	rebWaitDone(t, client, app+"-done", 2000, 60*time.Second, stays)
	// kill it while records flow to its partitions: its transaction is open
	killedAt := make(chan time.Time, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = victim.cmd.Process.Signal(syscall.SIGKILL)
		killedAt <- time.Now()
	}()
	for from := 2000; from < 4000; from += 50 {
		produceSeqs(t, client, app+"-in", from, from+50, ids, perID)
		time.Sleep(20 * time.Millisecond)
	}
	killed := <-killedAt
	_ = victim.cmd.Wait()
	if open := openTransactions(t, brokers, app); len(open) == 0 {
		t.Fatal("no partition has an open transaction after the kill: the scenario did not catch the victim in a transaction")
	} else {
		t.Logf("open transactions after the kill on %v", open)
	}
	deadline := killed.Add(within)
	waitFor(t, time.Until(deadline), "the instance that stays owning every partition", func() (bool, string) { return ownsAll(stays, 4) })
	owned := time.Since(killed)
	produceSeqs(t, client, app+"-in", 4000, 4400, ids, perID)
	rebWaitDone(t, client, app+"-done", 4400, time.Until(deadline), stays)
	t.Logf("every partition owned %v and every record processed %v after the kill (session timeout %v, transaction timeout %v)",
		owned.Round(100*time.Millisecond), time.Since(killed).Round(100*time.Millisecond), session, txn)
	stop()
	checkCycleExact(t, client, topo, perID)
}

// openTransactions returns the partitions of the application app's topics
// with an open transaction: their last stable offset (a read_committed
// ListOffsets) is short of their high watermark.
func openTransactions(t *testing.T, brokers []string, app string) []string {
	t.Helper()
	client := testClient(t, brokers)
	if err := client.RefreshMetadata(); err != nil {
		t.Fatal(err)
	}
	topics, err := client.Topics()
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, topic := range topics {
		if !strings.HasPrefix(topic, app+"-") {
			continue
		}
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			leader, err := client.Leader(topic, p)
			if err != nil {
				t.Fatal(err)
			}
			req := &sarama.OffsetRequest{Version: 2, IsolationLevel: sarama.ReadCommitted}
			req.AddBlock(topic, p, sarama.OffsetNewest, 1)
			resp, err := leader.GetAvailableOffsets(req)
			if err != nil {
				t.Fatal(err)
			}
			b := resp.GetBlock(topic, p)
			if b == nil || !errors.Is(b.Err, sarama.ErrNoError) {
				t.Fatalf("last stable offset of %s/%d: %v", topic, p, b)
			}
			high, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			if b.Offset < high {
				open = append(open, fmt.Sprintf("%s/%d", topic, p))
			}
		}
	}
	return open
}

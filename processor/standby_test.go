package processor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Warm standbys (WithStandbys): an instance keeps the stores of another
// instance's partitions caught up with their changelogs, so that when the
// other instance dies, taking its partitions over reads only the records
// the standby had not read yet.

const (
	standbySession = 3 * time.Second
	standbyTxn     = 5 * time.Second
)

// coldRecords returns how many changelog records recovering the loop
// partitions parts with empty stores reads now.
func coldRecords(t *testing.T, p *Processor, client sarama.Client, parts []int32) int64 {
	t.Helper()
	var total int64
	for _, part := range parts {
		st, err := openStore("", part)
		if err != nil {
			t.Fatal(err)
		}
		var asides []aside
		n, err := p.catchUp(context.Background(), saramaCluster{client: client}, st, part, &asides, false)
		st.close()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// takeoverScenario runs two instances with standbys standbys and threads
// stream threads each: "stays" in this process and "victim" in a child
// process, streams records through
// them, kills the victim with SIGKILL while records flow, and returns how
// many changelog records the takeover's recovery read and how many a
// recovery with empty stores read just before the kill. Every count must
// be exact afterwards.
func takeoverScenario(t *testing.T, standbys, threads int) (recovered, cold int64) {
	brokers, app := memberBroker(t, fmt.Sprintf("standby%d-%d", standbys, threads))
	topo, reg := cycleApp(app)
	client := testClient(t, brokers)
	stays, err := New(brokers, topo, reg, WithInstanceID("stays"), WithStandbys(standbys), WithThreads(threads), WithSessionTimeout(standbySession),
		WithTransactionTimeout(standbyTxn), WithCommitInterval(20*time.Millisecond), WithCommitCount(500), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, stays)
	waitFor(t, 60*time.Second, "the first instance owning every partition", func() (bool, string) { return ownsAll(stays, 4) })
	victim := launchAppProcess(t, append(memberEnv(brokers, app, "victim", standbySession, ""),
		"STATELOOP_TEST_STANDBYS="+strconv.Itoa(standbys), "STATELOOP_TEST_THREADS="+strconv.Itoa(threads),
		"STATELOOP_TEST_TXN_TIMEOUT="+standbyTxn.String())...)
	t.Cleanup(func() { _ = victim.cmd.Process.Kill(); _ = victim.cmd.Wait() })
	victim.waitReady(t, 60*time.Second)
	var theirs []int32
	waitFor(t, 30*time.Second, "two instances sharing the partitions, each with standbys of the other's", func() (bool, string) {
		s := stays.Stats()
		theirs = slices.DeleteFunc([]int32{0, 1, 2, 3}, func(p int32) bool { return slices.Contains(s.Partitions, p) })
		want := []int32(nil)
		if standbys > 0 {
			want = theirs
		}
		return s.Ready && len(s.Partitions) == 2 && slices.Equal(s.Standbys, want), fmt.Sprintf("partitions %v standbys %v", s.Partitions, s.Standbys)
	})

	const ids = 2000
	perID := map[string]int{}
	produceSeqs(t, client, app+"-in", 0, 4000, ids, perID)
	rebWaitDone(t, client, app+"-done", 4000, 60*time.Second, stays)
	if standbys > 0 {
		// the standby is current once it reads nothing new for a while
		last, since := int64(-1), time.Now()
		waitFor(t, 30*time.Second, "the standbys caught up", func() (bool, string) {
			n := stays.Stats().StandbyRecords
			if n != last {
				last, since = n, time.Now()
			}
			return n > 0 && time.Since(since) > 3*standbyInterval, fmt.Sprintf("%d records read by the standbys", n)
		})
	}
	cold = coldRecords(t, stays, client, theirs)
	before := stays.Stats().RecoveryRecords
	// kill it with records to process
	produceSeqs(t, client, app+"-in", 4000, 4200, ids, perID)
	victim.kill(t)
	killed := time.Now()
	waitFor(t, 4*standbySession+standbyTxn+30*time.Second, "the instance that stays owning every partition", func() (bool, string) {
		return ownsAll(stays, 4)
	})
	recovered = stays.Stats().RecoveryRecords - before
	t.Logf("%d standbys: the takeover read %d changelog records (a recovery from empty stores before the kill read %d); every partition served %v after the kill",
		standbys, recovered, cold, time.Since(killed).Round(100*time.Millisecond))
	produceSeqs(t, client, app+"-in", 4200, 5000, ids, perID)
	rebWaitDone(t, client, app+"-done", 5000, 60*time.Second, stays)
	stop()
	checkCycleExact(t, client, topo, perID)
	return recovered, cold
}

// TestStandbyTakeoverReadsOnlyTheTail: with a standby, the partitions of
// an instance killed with SIGKILL are taken over by the instance that kept
// their standbys, whose recovery reads a small tail of their changelogs.
func TestStandbyTakeoverReadsOnlyTheTail(t *testing.T) {
	recovered, cold := takeoverScenario(t, 1, 1)
	if cold == 0 || recovered*4 > cold {
		t.Errorf("the takeover read %d changelog records, a recovery from empty stores %d: want a fourth or less", recovered, cold)
	}
}

// TestStandbyTakeoverWithTwoThreads is the same with two stream threads
// per instance: the standbys of a partition are on the other instance,
// whichever of its threads keeps them, and the thread that takes the
// partition over gets the store its instance kept warm.
func TestStandbyTakeoverWithTwoThreads(t *testing.T) {
	recovered, cold := takeoverScenario(t, 1, 2)
	if cold == 0 || recovered*4 > cold {
		t.Errorf("the takeover read %d changelog records, a recovery from empty stores %d: want a fourth or less", recovered, cold)
	}
}

// TestTakeoverWithoutStandbyReadsTheWholeChangelog is the same without
// standbys: the takeover reads the whole changelog.
func TestTakeoverWithoutStandbyReadsTheWholeChangelog(t *testing.T) {
	recovered, cold := takeoverScenario(t, 0, 1)
	if cold == 0 || recovered < cold {
		t.Errorf("the takeover read %d changelog records, a recovery from empty stores %d: want at least as many", recovered, cold)
	}
}

package processor

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Partitions move between instances of one application while records flow:
// an instance leaves, or a new one joins. Every effect must still happen
// exactly once.

const (
	rebTotal = 6000
	rebIDs   = 64
)

func rebProcessor(t testing.TB, brokers []string, app, instance string) *Processor {
	t.Helper()
	topo, reg := cycleApp(app)
	p, err := New(brokers, topo, reg, WithInstanceID(instance), WithCommitInterval(20*time.Millisecond),
		WithCommitCount(500), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rebWaitStable waits until every processor has had a session and is
// ready, and together they own each loop partition exactly once.
func rebWaitStable(t testing.TB, ps ...*Processor) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d instances sharing the partitions", len(ps)), func() (bool, string) {
		owners := map[int32]int{}
		state := ""
		ok := true
		for i, p := range ps {
			s := p.Stats()
			state += fmt.Sprintf(" [%d: partitions %v ready %v invocations %d]", i, s.Partitions, s.Ready, s.Invocations)
			ok = ok && s.Ready
			for _, part := range s.Partitions {
				owners[part]++
			}
		}
		for part := int32(0); part < 4; part++ {
			ok = ok && owners[part] == 1
		}
		return ok, state
	})
}

func rebWaitDone(t testing.TB, client sarama.Client, topic string, n int, timeout time.Duration, ps ...*Processor) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d sequence numbers done", n), func() (bool, string) {
		got := egressDistinct(t, client, topic)
		state := fmt.Sprintf("%d done", got)
		for i, p := range ps {
			s := p.Stats()
			state += fmt.Sprintf(" [%d: partitions %v invocations %d commits %d aborts %d]", i, s.Partitions, s.Invocations, s.Commits, s.Aborts)
		}
		return got >= n, state
	})
}

// TestRebalanceWhenInstanceStopsMidStreamKeepsExactlyOnce: two instances
// share the cycle application; one stops gracefully half-way through the
// stream and the other takes over its partitions.
func TestRebalanceWhenInstanceStopsMidStreamKeepsExactlyOnce(t *testing.T) {
	brokers, app := testBroker(t, "reb-leave")
	topo, _ := cycleApp(app)
	client := testClient(t, brokers)
	p1, p2, stop1, stop2 := rebStartTwo(t, brokers, app)

	// stop the instance that owns loop partitions (state), r2 if both do
	// (see TestRebalanceSpreadsLoopPartitionsOverInstances)
	stay, leave, stopStay, stopLeave := p1, p2, stop1, stop2
	if len(p2.Stats().Partitions) == 0 {
		stay, leave, stopStay, stopLeave = p2, p1, stop2, stop1
	}
	moved := leave.Stats().Partitions
	perID := map[string]int{}
	produceSeqs(t, client, app+"-in", 0, rebTotal/3, rebIDs, perID)
	rebWaitDone(t, client, app+"-done", rebTotal/12, 20*time.Second, p1, p2)
	// stop with a backlog of records to process
	produceSeqs(t, client, app+"-in", rebTotal/3, 2*rebTotal/3, rebIDs, perID)
	stopLeave()
	done := egressDistinct(t, client, app+"-done")
	if s := leave.Stats(); s.Invocations == 0 {
		t.Errorf("the stopped instance did no work: %+v", s)
	}
	waitFor(t, 20*time.Second, "the remaining instance owns every partition", func() (bool, string) {
		s := stay.Stats()
		return len(s.Partitions) == 4 && s.Ready, fmt.Sprintf("%+v", s)
	})
	produceSeqs(t, client, app+"-in", 2*rebTotal/3, rebTotal, rebIDs, perID)
	rebWaitDone(t, client, app+"-done", rebTotal, 30*time.Second, stay)
	t.Logf("after the takeover: %+v", stay.Stats())
	stopStay()
	t.Logf("loop partitions %v moved with %d of %d sequence numbers done", moved, done, rebTotal)
	checkCycleExact(t, client, topo, perID)
}

// TestRebalanceWhenInstanceJoinsMidStreamKeepsExactlyOnce: a third
// instance joins two running ones half-way through the stream; partitions
// move to it.
func TestRebalanceWhenInstanceJoinsMidStreamKeepsExactlyOnce(t *testing.T) {
	brokers, app := testBroker(t, "reb-join")
	topo, _ := cycleApp(app)
	client := testClient(t, brokers)
	p1, p2, stop1, stop2 := rebStartTwo(t, brokers, app)

	perID := map[string]int{}
	produceSeqs(t, client, app+"-in", 0, rebTotal/3, rebIDs, perID)
	rebWaitDone(t, client, app+"-done", rebTotal/12, 20*time.Second, p1, p2)
	// join with a backlog of records to process
	produceSeqs(t, client, app+"-in", rebTotal/3, 2*rebTotal/3, rebIDs, perID)
	joined := egressDistinct(t, client, app+"-done")
	p3 := rebProcessor(t, brokers, app, "r3")
	stop3 := runProcessor(t, p3)
	rebWaitStable(t, p1, p2, p3)
	done := egressDistinct(t, client, app+"-done")
	before := p3.Stats()
	produceSeqs(t, client, app+"-in", 2*rebTotal/3, rebTotal, rebIDs, perID)
	rebWaitDone(t, client, app+"-done", rebTotal, 30*time.Second, p1, p2, p3)
	// the joiner got partitions of the loop or ingress topic (the group
	// has 8 for 3 members) and worked on the last third of the stream
	if s := p3.Stats(); s.Invocations+s.Ingress == 0 {
		t.Errorf("the joining instance did no work: %+v", s)
	}
	stop3()
	stop2()
	stop1()
	t.Logf("an instance joined with %d of %d sequence numbers done; the group was stable again with %d; the joiner got loop partitions %v", joined, rebTotal, done, before.Partitions)
	checkCycleExact(t, client, topo, perID)
}

// TestRebalanceSpreadsLoopPartitionsOverInstances: with two instances, each
// should own half of the loop partitions, where the functions run and the
// state lives. The sticky strategy balances the count of partitions over
// all subscribed topics (loop + ingress) instead, so an instance can end up
// with 3 or even 4 of the 4 loop partitions, and the other with only
// ingress partitions and no function work. The split depends on the random
// member ids, so the test tries four groups.
func TestRebalanceSpreadsLoopPartitionsOverInstances(t *testing.T) {
	brokers, base := testBroker(t, "reb-spread")
	var splits []string
	uneven := 0
	for i := 0; i < 4; i++ {
		app := fmt.Sprintf("%s%d", base, i)
		p1 := rebProcessor(t, brokers, app, "r1")
		stop1 := runProcessor(t, p1)
		rebWaitStable(t, p1)
		p2 := rebProcessor(t, brokers, app, "r2")
		stop2 := runProcessor(t, p2)
		rebWaitStable(t, p1, p2)
		a, b := p1.Stats().Partitions, p2.Stats().Partitions
		splits = append(splits, fmt.Sprintf("%v/%v", a, b))
		if len(a) != 2 || len(b) != 2 {
			uneven++
		}
		stop2()
		stop1()
	}
	if uneven > 0 {
		t.Errorf("loop partitions of two instances, in %d of 4 groups not 2 each: %v", uneven, splits)
	}
}

// rebStartTwo starts instances r1 and r2, one after the other, and waits
// until the group is stable with both.
func rebStartTwo(t *testing.T, brokers []string, app string) (p1, p2 *Processor, stop1, stop2 func()) {
	t.Helper()
	p1 = rebProcessor(t, brokers, app, "r1")
	stop1 = runProcessor(t, p1)
	rebWaitStable(t, p1)
	p2 = rebProcessor(t, brokers, app, "r2")
	stop2 = runProcessor(t, p2)
	rebWaitStable(t, p1, p2)
	return p1, p2, stop1, stop2
}

package processor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// The timers application: each ingress record asks test/sched (id = the
// record key) to send a delayed message to test/recv (same id), or to
// cancel one it sent. test/recv writes "f,seq,due,arrival" (Unix ms) to
// the egress, and test/sched writes "c,seq,time" when it cancels.

type timerCmd struct {
	Seq     int   `json:"seq"`
	DelayMs int64 `json:"delay_ms"`
	Cancel  bool  `json:"cancel"`
	// Token: send with a cancellation token (always for Cancel)
	Token bool  `json:"token"`
	Due   int64 `json:"due"` // set by test/sched: Unix ms
}

var (
	schedFn     = functions.TypeName("test/sched")
	recvFn      = functions.TypeName("test/recv")
	timerCmdT   = functions.NewType("test/timer-cmd", codec.JSON[timerCmd]())
	firedOut    = functions.TypeName("test/fired")
	timerTokens = func(seq int) string { return "t" + strconv.Itoa(seq) }
)

func timersApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: schedFn, Egresses: []functions.TypeName{firedOut}, Function: functions.Router(functions.Handle(timerCmdT, func(ctx functions.Context, c timerCmd) error {
		if c.Cancel {
			ctx.CancelDelayed(timerTokens(c.Seq))
			ctx.SendEgress(firedOut, functions.KafkaMessage("", ctx.Self().ID, fmt.Appendf(nil, "c,%d,%d", c.Seq, time.Now().UnixMilli())))
			return nil
		}
		delay := time.Duration(c.DelayMs) * time.Millisecond
		c.Due = time.Now().Add(delay).UnixMilli()
		to := functions.Address{Type: recvFn, ID: ctx.Self().ID}
		if c.Token {
			ctx.SendAfterWithToken(delay, timerTokens(c.Seq), to, timerCmdT.Of(c))
		} else {
			ctx.SendAfter(delay, to, timerCmdT.Of(c))
		}
		return nil
	}))})
	reg.MustRegister(functions.Spec{Type: recvFn, Egresses: []functions.TypeName{firedOut}, Function: functions.Router(functions.Handle(timerCmdT, func(ctx functions.Context, c timerCmd) error {
		if caller, ok := ctx.Caller(); !ok || caller != (functions.Address{Type: schedFn, ID: ctx.Self().ID}) {
			return functions.Permanent(fmt.Errorf("delayed message with caller %v, %v; want its sender", caller, ok))
		}
		ctx.SendEgress(firedOut, functions.KafkaMessage("", ctx.Self().ID, fmt.Appendf(nil, "f,%d,%d,%d", c.Seq, c.Due, time.Now().UnixMilli())))
		return nil
	}))})
	return topology.Topology{
		App: app, Partitions: 4, Functions: []functions.TypeName{schedFn, recvFn},
		Ingresses: []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: timerCmdT.Name(), Targets: []functions.TypeName{schedFn}}},
		Egresses:  []topology.Egress{{ID: firedOut, Topics: []topology.Topic{topology.Topic(app + "-fired")}}},
	}, reg
}

// timerPlan is a random set of delayed messages, some cancelled.
type timerPlan struct {
	cmds      []timerCmd // in order of production; cancels after their sends
	cancelled map[int]bool
	sends     int
	maxDelay  time.Duration
}

// newTimerPlan plans n delayed messages with delays up to maxDelay; one in
// ten is sent with a token and cancelled right after (with a delay of at
// least 3 s, so the cancel comes first).
func newTimerPlan(n int, maxDelay time.Duration, seed uint64) timerPlan {
	rng := rand.New(rand.NewPCG(seed, 11))
	p := timerPlan{cancelled: map[int]bool{}, sends: n, maxDelay: max(maxDelay, 3*time.Second)}
	for seq := 0; seq < n; seq++ {
		c := timerCmd{Seq: seq, DelayMs: rng.Int64N(maxDelay.Milliseconds() + 1), Token: rng.IntN(2) == 0}
		if rng.IntN(10) == 0 {
			c.Token, c.DelayMs = true, 3000+rng.Int64N(2000)
			p.cancelled[seq] = true
			p.cmds = append(p.cmds, c, timerCmd{Seq: seq, Cancel: true})
			continue
		}
		p.cmds = append(p.cmds, c)
	}
	return p
}

// produce writes commands [from, to) of the plan, keys over ids.
func (p timerPlan) produce(t testing.TB, client sarama.Client, topic string, from, to, ids int) {
	t.Helper()
	var recs [][2][]byte
	for _, c := range p.cmds[from:to] {
		b, err := timerCmdT.Codec().Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, [2][]byte{[]byte("id" + strconv.Itoa(c.Seq%ids)), b})
		if len(recs) == 1000 {
			produce(t, client, topic, recs...)
			recs = nil
		}
	}
	if len(recs) > 0 {
		produce(t, client, topic, recs...)
	}
}

// timerOutcome is what the egress says of one sequence number.
type timerOutcome struct {
	arrivals  int
	due       int64 // Unix ms, from the arrival
	arrived   int64 // Unix ms, of the last arrival
	cancelled int64 // Unix ms when its cancel was committed; 0 if none
}

// timerOutcomes reads the egress.
func timerOutcomes(t testing.TB, client sarama.Client, topic string) map[int]*timerOutcome {
	t.Helper()
	out := map[int]*timerOutcome{}
	for _, r := range readTopic(t, client, topic) {
		f := strings.Split(string(r.Value), ",")
		n := make([]int64, len(f)-1)
		for i := range n {
			var err error
			if n[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				t.Fatalf("egress record %q: %v", r.Value, err)
			}
		}
		if len(n) == 0 {
			t.Fatalf("egress record %q", r.Value)
		}
		o := out[int(n[0])]
		if o == nil {
			o = &timerOutcome{}
			out[int(n[0])] = o
		}
		switch {
		case f[0] == "f" && len(n) == 3:
			o.arrivals++
			o.due, o.arrived = n[1], n[2]
		case f[0] == "c" && len(n) == 2:
			o.cancelled = n[1]
		default:
			t.Fatalf("egress record %q is neither f,seq,due,arrival nor c,seq,time", r.Value)
		}
	}
	return out
}

// check waits until every planned message arrived and the cancelled ones
// are past their due time, then checks: each once, none early, and no
// cancelled one, unless its cancel came after its due time (when it may
// have been sent already: a no-op cancel, by the rules).
func (p timerPlan) check(t testing.TB, client sarama.Client, topic string, timeout time.Duration, stats func() string) {
	t.Helper()
	want := p.sends - len(p.cancelled)
	waitFor(t, timeout, fmt.Sprintf("%d delayed messages", want), func() (bool, string) {
		arrived := 0
		for seq, o := range timerOutcomes(t, client, topic) {
			if o.arrivals > 0 && !p.cancelled[seq] {
				arrived++
			}
		}
		return arrived >= want, fmt.Sprintf("%d arrived; %s", arrived, stats())
	})
	time.Sleep(p.maxDelay / 2) // time for a cancelled message to show up wrongly
	outcomes := timerOutcomes(t, client, topic)
	var twice, lost, resurrected, early, late []string
	lateCancels := 0
	for seq := 0; seq < p.sends; seq++ {
		o := outcomes[seq]
		if o == nil {
			o = &timerOutcome{}
		}
		switch {
		case o.arrivals > 1:
			twice = append(twice, strconv.Itoa(seq))
		case o.arrivals == 1 && o.arrived < o.due:
			early = append(early, fmt.Sprintf("%d (%d ms early)", seq, o.due-o.arrived))
		case p.cancelled[seq] && o.cancelled == 0:
			lost = append(lost, fmt.Sprintf("%d (its cancel)", seq))
		case p.cancelled[seq] && o.arrivals == 1 && o.cancelled < o.due:
			resurrected = append(resurrected, fmt.Sprintf("%d (cancelled %d ms before due)", seq, o.due-o.cancelled))
		case p.cancelled[seq] && o.arrivals == 1:
			lateCancels++
			late = append(late, strconv.Itoa(seq))
		case !p.cancelled[seq] && o.arrivals == 0:
			lost = append(lost, strconv.Itoa(seq))
		}
	}
	if len(twice)+len(lost)+len(resurrected)+len(early) > 0 {
		t.Errorf("of %d delayed messages (%d cancelled): %d twice %v, %d lost %v, %d arrived though cancelled in time %v, %d early %v",
			p.sends, len(p.cancelled), len(twice), head(twice), len(lost), head(lost), len(resurrected), head(resurrected), len(early), head(early))
	}
	if lateCancels > 0 {
		t.Logf("%d cancels came after their message was due (it arrived, as the rules allow): %v", lateCancels, head(late))
	}
}

func head[T any](s []T) []T { return s[:min(len(s), 10)] }

// TestDelayedMessagesArriveOnceNotEarlyAndCancelledNever sends delayed
// messages with random delays up to 2 s, cancels one in ten, aborts one
// commit in five and restarts the processor twice on its data directory
// while they wait.
func TestDelayedMessagesArriveOnceNotEarlyAndCancelledNever(t *testing.T) {
	brokers, app := testBroker(t, "timers")
	topo, reg := timersApp(app)
	plan := newTimerPlan(5000, 2*time.Second, 5)
	var aborts atomic.Int64
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 8))
	faults := &Faults{BeforeCommit: func() error {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(5) == 0 {
			aborts.Add(1)
			return errors.New("injected commit failure")
		}
		return nil
	}}
	dir := t.TempDir()
	var p *Processor
	start := func() func() {
		var err error
		p, err = New(brokers, topo, reg, WithDataDir(dir), WithInstanceID("t1"), WithCommitInterval(20*time.Millisecond),
			WithFaults(faults), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		return runProcessor(t, p)
	}
	client := testClient(t, brokers)
	stop := start()
	third := len(plan.cmds) / 3
	plan.produce(t, client, app+"-in", 0, third, 64)
	time.Sleep(700 * time.Millisecond)
	stop()
	stop = start()
	plan.produce(t, client, app+"-in", third, 2*third, 64)
	time.Sleep(700 * time.Millisecond)
	stop()
	start()
	plan.produce(t, client, app+"-in", 2*third, len(plan.cmds), 64)
	plan.check(t, client, app+"-fired", 60*time.Second, func() string { return fmt.Sprintf("stats %+v", p.Stats()) })
	t.Logf("%d aborted commits, %d timers fired by the last instance", aborts.Load(), p.Stats().TimersFired)
}

// TestDelayedMessagesSurviveKill9OfRuntimeAndEmbeddedBroker sends 100,000
// delayed messages (delays up to 3 s, one in ten cancelled) to the process
// that runs the runtime and the embedded broker, and kills it with SIGKILL
// twice while they wait: every message arrives once, none early, no
// cancelled one.
func TestDelayedMessagesSurviveKill9OfRuntimeAndEmbeddedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running crash test")
	}
	t.Setenv("STATELOOP_TEST_APP_KIND", "timers")
	dir, listen := t.TempDir(), freePort(t)
	n := 100_000
	if raceEnabled {
		// seven times slower: the race pass takes a fifth (the pass
		// without the detector and the Kafka one take them all)
		n = 20_000
	}
	plan := newTimerPlan(n, 3*time.Second, uint64(time.Now().UnixNano()))
	app := startCrashApp(t, dir, listen, 1)
	third := len(plan.cmds) / 3
	for k := 0; k < 2; k++ {
		client := crashClient(t, listen)
		plan.produce(t, client, "crash-in", k*third, (k+1)*third, 64)
		client.Close()
		time.Sleep(time.Second)
		app.kill(t)
		t.Logf("kill %d after producing %d commands", k+1, (k+1)*third)
		app = startCrashApp(t, dir, listen, 1)
	}
	client := crashClient(t, listen)
	defer client.Close()
	plan.produce(t, client, "crash-in", 2*third, len(plan.cmds), 64)
	plan.check(t, client, "crash-fired", 120*time.Second, func() string { return "" })
	app.cmd.Process.Signal(syscall.SIGTERM)
	_ = app.cmd.Wait()
}

// TestDelayedMessagesFireAfterTheirPartitionMovesToAnotherInstance: two
// instances share the timers application; one leaves while 2,000 delayed
// messages wait, and a third joins later: the instances that take over
// its partitions fire their due timers, each once, none early.
func TestDelayedMessagesFireAfterTheirPartitionMovesToAnotherInstance(t *testing.T) {
	brokers, app := testBroker(t, "timers-move")
	topo, reg := timersApp(app)
	plan := newTimerPlan(2000, 3*time.Second, 13)
	start := func(instance string) (*Processor, func()) {
		p, err := New(brokers, topo, reg, WithInstanceID(instance), WithDataDir(t.TempDir()), WithCommitInterval(20*time.Millisecond),
			WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		return p, runProcessor(t, p)
	}
	client := testClient(t, brokers)
	p1, _ := start("m1")
	p2, stop2 := start("m2")
	rebWaitStable(t, p1, p2)
	plan.produce(t, client, app+"-in", 0, len(plan.cmds), 64)
	time.Sleep(500 * time.Millisecond)
	stop2() // its timers wait in its partitions of <app>-timers
	p3, _ := start("m3")
	plan.check(t, client, app+"-fired", 60*time.Second, func() string {
		return fmt.Sprintf("m1 %+v m3 %+v", p1.Stats(), p3.Stats())
	})
	if p2.Stats().TimersFired == 0 || p1.Stats().TimersFired+p3.Stats().TimersFired == 0 {
		t.Errorf("timers fired: m1 %d, m2 %d, m3 %d; want the leaving instance and the others to have fired some",
			p1.Stats().TimersFired, p2.Stats().TimersFired, p3.Stats().TimersFired)
	}
}

// TestABurstOfDueTimersIsSpreadOverTransactions: 3,000 delayed messages
// due at the same moment are sent in transactions of at most the commit
// count (here 200), not in one, which could outlive its timeout.
func TestABurstOfDueTimersIsSpreadOverTransactions(t *testing.T) {
	brokers, app := testBroker(t, "timers-burst")
	topo, reg := timersApp(app)
	plan := timerPlan{cancelled: map[int]bool{}, sends: 3000, maxDelay: 3 * time.Second}
	for seq := 0; seq < plan.sends; seq++ {
		plan.cmds = append(plan.cmds, timerCmd{Seq: seq, DelayMs: 2000})
	}
	// commits by count; the interval only closes the last transaction,
	// which has fewer records than the count (with an hour it waited for
	// ever, its fired timers' deliveries in it), and is too long to split
	// the burst: a burst in one transaction gives a few commits, not 15
	p, err := New(brokers, topo, reg, WithCommitCount(200), WithCommitInterval(time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	client := testClient(t, brokers)
	plan.produce(t, client, app+"-in", 0, len(plan.cmds), 64)
	// the last scheduling transaction closes by count or on the next input
	waitFor(t, 30*time.Second, "every timer scheduled", func() (bool, string) {
		s := p.Stats()
		return s.Invocations >= 3000, fmt.Sprintf("%+v", s)
	})
	before := p.Stats().Commits
	plan.check(t, client, app+"-fired", 60*time.Second, func() string { return fmt.Sprintf("%+v", p.Stats()) })
	// 3,000 fired timers and 3,000 deliveries at 200 per transaction
	if n := p.Stats().Commits - before; n < 3000/200 {
		t.Errorf("%d transactions after the timers came due, want at least %d: a burst must not go into one", n, 3000/200)
	}
}

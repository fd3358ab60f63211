package processor

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// BenchmarkPauseWhenAnInstanceGoes measures, with three instances of the
// cycle application in child processes under a steady stream, the longest
// pause of any loop partition when one instance is killed with SIGKILL,
// without standbys (the baseline), with one standby, and when it is killed
// and started again at once within the session timeout (static
// membership). A partition's pause is the longest gap between two of its
// results becoming visible to a read_committed consumer of the egress
// topic, around the event. Before the event the tables hold 40,000
// addresses (STATELOOP_PAUSE_ADDRESSES sets another number), so a takeover
// without a standby has changelogs to read.
//
//	go test -run '^$' -bench PauseWhenAnInstanceGoes -benchtime 1x ./processor/
func BenchmarkPauseWhenAnInstanceGoes(b *testing.B) {
	const session, txn = 3 * time.Second, 5 * time.Second
	var baseline time.Duration
	for _, tc := range []struct {
		name     string
		standbys int
		restart  bool
	}{
		{"killed, no standby", 0, false},
		{"killed, 1 standby", 1, false},
		{"killed and restarted, no standby", 0, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var worst time.Duration
			for range b.N {
				worst = max(worst, pauseScenario(b, session, txn, tc.standbys, tc.restart))
			}
			b.ReportMetric(worst.Seconds(), "pause-s")
			if baseline == 0 {
				baseline = worst
			}
			b.Logf("%s: longest pause of a partition %v, %.2f× the pause of a killed instance without standby (%v); session timeout %v, transaction timeout %v",
				tc.name, worst.Round(10*time.Millisecond), worst.Seconds()/baseline.Seconds(), baseline.Round(10*time.Millisecond), session, txn)
		})
	}
}

const pauseParts = 4 // of the cycle application

// pauseAddresses returns the number of addresses in the tables.
func pauseAddresses() int {
	if n, err := strconv.Atoi(os.Getenv("STATELOOP_PAUSE_ADDRESSES")); err == nil && n >= 400 {
		return n
	}
	return 40000
}

// pauseWatch follows the egress topic of the cycle application: when the
// result of each sequence number became visible, by loop partition.
type pauseWatch struct {
	ids int

	mu    sync.Mutex
	seen  map[int]bool
	last  map[int32]time.Time
	armed time.Time
	gaps  map[int32]time.Duration
}

func (w *pauseWatch) saw(seq int, at time.Time) {
	part := PartitionFor("id"+strconv.Itoa(seq%w.ids), pauseParts)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[seq] = true
	if last, ok := w.last[part]; ok && !w.armed.IsZero() && last.After(w.armed) {
		w.gaps[part] = max(w.gaps[part], at.Sub(last))
	}
	w.last[part] = at
}

func (w *pauseWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// arm starts measuring gaps that begin after at.
func (w *pauseWatch) arm(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = at
	w.gaps = map[int32]time.Duration{}
}

// lastSeen returns when each partition last had a result.
func (w *pauseWatch) lastSeen() map[int32]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[int32]time.Time{}
	for p, t := range w.last {
		out[p] = t
	}
	return out
}

func (w *pauseWatch) worst() (time.Duration, map[int32]time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var worst time.Duration
	gaps := map[int32]time.Duration{}
	for p, g := range w.gaps {
		gaps[p] = g
		worst = max(worst, g)
	}
	return worst, gaps
}

// committedConsumer returns a read_committed consumer whose fetches wait
// at most wait.
func committedConsumer(t testing.TB, brokers []string, wait time.Duration) sarama.Consumer {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.MaxWaitTime = wait
	c, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// watchEgress consumes every partition of topic read_committed into w
// until ctx ends.
func watchEgress(b testing.TB, ctx context.Context, brokers []string, topic string, w *pauseWatch) {
	c := committedConsumer(b, brokers, 20*time.Millisecond)
	parts, err := c.Partitions(topic)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				select {
				case m := <-pc.Messages():
					if seq, err := strconv.Atoi(string(m.Value)); err == nil {
						w.saw(seq, time.Now())
					}
				case <-ctx.Done():
					pc.AsyncClose()
					return
				}
			}
		}()
	}
	b.Cleanup(func() { _ = c.Close() })
}

// pauseScenario runs one measurement and returns the longest pause.
func pauseScenario(b *testing.B, session, txn time.Duration, standbys int, restart bool) time.Duration {
	brokers, app := memberBroker(b, "pause")
	client := testClient(b, brokers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addresses := pauseAddresses()
	w := &pauseWatch{ids: addresses, seen: map[int]bool{}, last: map[int32]time.Time{}}

	launch := func(id, dir string) *appProcess {
		a := launchAppProcess(b, append(memberEnv(brokers, app, id, session, dir),
			"STATELOOP_TEST_STANDBYS="+strconv.Itoa(standbys), "STATELOOP_TEST_TXN_TIMEOUT="+txn.String())...)
		b.Cleanup(func() { _ = a.cmd.Process.Kill(); _ = a.cmd.Wait() })
		return a
	}
	dirs := map[string]string{}
	procs := map[string]*appProcess{}
	for _, id := range []string{"a", "b", "c"} {
		dirs[id] = b.TempDir()
		procs[id] = launch(id, dirs[id])
		procs[id].waitReady(b, 60*time.Second)
	}
	watchEgress(b, ctx, brokers, app+"-done", w)

	// fill the tables: one address per sequence number
	perID := map[string]int{}
	produceSeqs(b, client, app+"-in", 0, addresses, addresses, perID)
	waitFor(b, 20*time.Minute, "the tables filled", func() (bool, string) {
		n := w.count()
		return n >= addresses, fmt.Sprintf("%d of %d results", n, addresses)
	})

	// a steady stream: 400 records a second over 400 addresses; sequence
	// number seq goes to address seq%addresses, as in the tables
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		b.Fatal(err)
	}
	loadDone := make(chan struct{})
	k := 0
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var msgs []*sarama.ProducerMessage
			for range 4 {
				seq := addresses*(1+k/400) + k%400
				id := "id" + strconv.Itoa(seq%addresses)
				msgs = append(msgs, &sarama.ProducerMessage{Topic: app + "-in", Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(strconv.Itoa(seq))})
				k++
			}
			if err := sp.SendMessages(msgs); err != nil && ctx.Err() == nil {
				b.Errorf("produce: %v", err)
				return
			}
		}
	}()
	// every partition produces results before the event
	waitFor(b, 30*time.Second, "every partition producing results", func() (bool, string) {
		last := w.lastSeen()
		ok := len(last) == pauseParts
		for _, t := range last {
			ok = ok && time.Since(t) < time.Second
		}
		return ok, fmt.Sprint("last results ", last)
	})
	time.Sleep(2 * time.Second)

	event := time.Now()
	w.arm(event.Add(-time.Second))
	if err := procs["c"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	_ = procs["c"].cmd.Wait()
	if restart {
		procs["c"] = launch("c", dirs["c"])
	}
	// the pause is over once every partition produced results again for
	// a while
	waitFor(b, 2*time.Minute, "every partition producing results again", func() (bool, string) {
		last := w.lastSeen()
		ok := true
		for p := range int32(pauseParts) {
			ok = ok && last[p].After(event.Add(3*time.Second)) && time.Since(last[p]) < time.Second
		}
		return ok, fmt.Sprint("last results ", last)
	})
	cancel()
	<-loadDone
	_ = sp.Close()
	worst, gaps := w.worst()
	b.Logf("standbys %d, restart %v: pauses by partition %v", standbys, restart, gaps)
	return worst
}

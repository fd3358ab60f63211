//go:build integration

package processor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/wire"
)

// The tests in this file run against a real Apache Kafka given by
// KAFKA_BROKERS (scripts/kafka.sh start prints it), with the build tag
// integration: `go test -tags integration ./processor/`. With the tag,
// every test that takes its broker from testBroker (exactly-once, fencing,
// rebalance, recovery, ordering, dead letters) runs on that Kafka too,
// with topic names that carry a random suffix, so runs on one broker do
// not meet.

func init() { externalBrokers = kafkaBrokers }

func kafkaBrokers(t testing.TB) []string { return kafkatest.KafkaBrokers(t) }

// startKafkaApp runs runMemberApp on Kafka in a child process, with local
// state in dir (in memory if empty), and waits until it is ready.
func startKafkaApp(t *testing.T, app, instance, dir string) *appProcess {
	t.Helper()
	return startAppProcess(t, memberEnv(kafkaBrokers(t), app, instance, 2*time.Second, dir)...)
}

// TestKafkaZombieInstanceIsFenced freezes an instance with SIGSTOP in the
// middle of a stream until its group session expires and another instance
// has taken its partitions and finished the work, then resumes it with
// SIGCONT: whatever the frozen instance had in flight must be fenced, so
// the counts stay exact.
func TestKafkaZombieInstanceIsFenced(t *testing.T) {
	brokers := kafkaBrokers(t)
	app := uniqueApp("zombie")
	topo, reg := cycleApp(app)
	client := testClient(t, brokers)

	zombie := startKafkaApp(t, app, "zombie", "")
	cmd := zombie.cmd
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	perID := map[string]int{}
	const total, ids = 6000, 64
	produceSeqs(t, client, app+"-in", 0, 3000, ids, perID)
	waitFor(t, 60*time.Second, "the first instance at work", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= 300, fmt.Sprintf("%d done", n)
	})
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := true
	defer func() {
		if frozen {
			_ = cmd.Process.Signal(syscall.SIGCONT)
		}
	}()

	p, err := New(brokers, topo, reg, WithInstanceID("heir"), WithCommitInterval(20*time.Millisecond), WithSessionTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	produceSeqs(t, client, app+"-in", 3000, total, ids, perID)
	waitFor(t, 90*time.Second, "the heir finished every record", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total, fmt.Sprintf("%d done, heir %+v", n, p.Stats())
	})
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	frozen = false
	// give the resumed zombie time to try to commit and to rejoin
	time.Sleep(8 * time.Second)
	checkCycleExact(t, client, topo, perID)
}

// TestKafkaExactlyOnceAcrossKill9OfRuntime kills the runtime process (a
// child process on Apache Kafka, keeping its data directory) with SIGKILL
// six times at random moments while 10,000 records stream in at a steady
// rate through the cycle application, restarting it each time: every
// effect must still happen exactly once, in the tables and in the
// read_committed egress.
func TestKafkaExactlyOnceAcrossKill9OfRuntime(t *testing.T) {
	kafkaKill9Scenario(t, 1)
}

// TestKafkaExactlyOnceAcrossKill9WithFourThreads is the same with four
// stream threads in the killed process.
func TestKafkaExactlyOnceAcrossKill9WithFourThreads(t *testing.T) {
	kafkaKill9Scenario(t, 4)
}

func kafkaKill9Scenario(t *testing.T, threads int) {
	t.Setenv("STATELOOP_TEST_THREADS", strconv.Itoa(threads))
	brokers := kafkaBrokers(t)
	app := uniqueApp("kill9")
	topo, _ := cycleApp(app)
	client := testClient(t, brokers)
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 9))
	t.Logf("seed %d", seed)

	const total, ids, kills, step = 10000, 64, 6, 100
	proc := startKafkaApp(t, app, "k1", dir)
	defer func() { _ = proc.cmd.Process.Kill(); _ = proc.cmd.Wait() }()

	// the stream: step records every 200 ms, about 20 s in all
	perID := map[string]int{}
	var produced atomic.Int64
	streamed := make(chan error, 1)
	go func() {
		sp, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			streamed <- err
			return
		}
		for seq := 0; seq < total; seq += step {
			var msgs []*sarama.ProducerMessage
			for s := seq; s < seq+step; s++ {
				id := "id" + strconv.Itoa(s%ids)
				perID[id]++
				msgs = append(msgs, &sarama.ProducerMessage{Topic: app + "-in", Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(strconv.Itoa(s))})
			}
			if err := sp.SendMessages(msgs); err != nil {
				streamed <- err
				return
			}
			produced.Store(int64(seq + step))
			time.Sleep(200 * time.Millisecond)
		}
		streamed <- nil
	}()

	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		done := egressDistinct(t, client, app+"-done")
		proc.kill(t)
		t.Logf("kill %d: %d records produced, %d done", k+1, produced.Load(), done)
		proc = startKafkaApp(t, app, "k1", dir)
	}
	if err := <-streamed; err != nil {
		t.Fatalf("producing the stream: %v", err)
	}
	waitFor(t, 120*time.Second, "every record done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total, fmt.Sprintf("%d done", n)
	})
	checkCycleExact(t, client, topo, perID)
}

// ownKafka is an Apache Kafka broker of one test, started with
// scripts/kafka.sh in a temporary directory, so the test can restart it.
type ownKafka struct {
	t       *testing.T
	dir     string
	brokers []string
}

func startOwnKafka(t *testing.T) *ownKafka {
	t.Helper()
	k := &ownKafka{t: t, dir: t.TempDir()}
	k.script("start")
	t.Cleanup(func() { k.script("stop", "--clean") })
	return k
}

// script runs scripts/kafka.sh on the test's broker; start sets brokers.
func (k *ownKafka) script(args ...string) {
	k.t.Helper()
	cmd := exec.Command("../scripts/kafka.sh", args...)
	// a short broker session, so a start after a SIGKILL is not refused
	// for long as a duplicate registration
	cmd.Env = append(os.Environ(), "KAFKA_DIR="+k.dir,
		"KAFKA_PROPERTIES=group.min.session.timeout.ms=500 broker.session.timeout.ms=4000 broker.heartbeat.interval.ms=1000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("scripts/kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if args[0] == "start" {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		addr, ok := strings.CutPrefix(lines[len(lines)-1], "KAFKA_BROKERS=")
		if !ok {
			k.t.Fatalf("scripts/kafka.sh start did not end with KAFKA_BROKERS=:\n%s", out)
		}
		k.brokers = strings.Split(addr, ",")
	}
}

// kill stops the broker with SIGKILL, as a crash would.
func (k *ownKafka) kill() {
	k.t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, "kafka.pid"))
	if err != nil {
		k.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		k.t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		k.t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKafkaBrokerRestartMidStreamKeepsExactlyOnce restarts the (single)
// broker twice while records stream through the cycle application: once
// with a clean shutdown, once killed with SIGKILL. The runtime must ride
// out the outage, reconnect, and every effect must happen exactly once.
func TestKafkaBrokerRestartMidStreamKeepsExactlyOnce(t *testing.T) {
	kafka := startOwnKafka(t)
	app := uniqueApp("brestart")
	topo, reg := cycleApp(app)
	p, err := New(kafka.brokers, topo, reg, WithInstanceID("b1"), WithCommitInterval(20*time.Millisecond),
		WithSessionTimeout(6*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 60*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })

	perID := map[string]int{}
	const total, ids = 6000, 64
	stream := func(from, to int, after string) {
		client := testClient(t, kafka.brokers)
		produceSeqs(t, client, app+"-in", from, to, ids, perID)
		waitFor(t, 120*time.Second, after, func() (bool, string) {
			n := egressDistinct(t, client, app+"-done")
			return n >= from+(to-from)/4, fmt.Sprintf("%d done, stats %+v", n, p.Stats())
		})
		client.Close()
	}
	stream(0, 2000, "a quarter of the first batch done")
	kafka.script("stop")
	t.Log("broker stopped")
	time.Sleep(2 * time.Second)
	kafka.script("start")
	t.Log("broker started again")
	stream(2000, 4000, "a quarter of the second batch done after the clean restart")
	kafka.kill()
	t.Log("broker killed")
	time.Sleep(time.Second)
	kafka.script("start")
	t.Log("broker started again")
	stream(4000, total, "a quarter of the third batch done after the crash")

	client := testClient(t, kafka.brokers)
	waitFor(t, 120*time.Second, "every record done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total, fmt.Sprintf("%d done, stats %+v", n, p.Stats())
	})
	checkCycleExact(t, client, topo, perID)
}

// TestKafkaRunReturnsSoonWhenStoppedWhileTheBrokerIsDown: a processor
// told to stop while its only broker is down returns within a minute.
//
// Regression: its last commit, and then the abort, each went through
// sarama's transaction retries with ten metadata retries apiece, and Run
// returned only minutes later.
func TestKafkaRunReturnsSoonWhenStoppedWhileTheBrokerIsDown(t *testing.T) {
	kafka := startOwnKafka(t)
	app := uniqueApp("outage")
	topo, reg := cycleApp(app)
	p, err := New(kafka.brokers, topo, reg, WithInstanceID("o1"), WithCommitInterval(20*time.Millisecond),
		WithSessionTimeout(6*time.Second), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, 60*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	client := testClient(t, kafka.brokers)
	perID := map[string]int{}
	produceSeqs(t, client, app+"-in", 0, 2000, 16, perID)
	client.Close()
	kafka.kill()
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		t.Logf("Run returned %v after the stop, with the broker down: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(time.Minute):
		t.Fatalf("Run has not returned a minute after the stop, with the broker down")
	}
}

// TestKafkaToolsSeeAnOrdinaryConsumerGroup: Kafka's own tools show the
// application as a consumer group with its topics, offsets and lag.
func TestKafkaToolsSeeAnOrdinaryConsumerGroup(t *testing.T) {
	brokers := kafkaBrokers(t)
	app := uniqueApp("tools")
	topo, reg := cycleApp(app)
	client := testClient(t, brokers)
	p, err := New(brokers, topo, reg, WithInstanceID("t1"), WithCommitInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := runProcessor(t, p)
	waitFor(t, 60*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	perID := map[string]int{}
	produceSeqs(t, client, app+"-in", 0, 400, 16, perID)
	waitFor(t, 60*time.Second, "400 records done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= 400, fmt.Sprintf("%d done", n)
	})
	// One instance delivers ping's messages to pong locally, so nothing
	// above went through the loop topic; messages sent to addresses (as
	// `stateloop send --to` does) do, and make the group read and commit
	// every loop partition.
	var sent [][2][]byte
	for i := range 16 {
		id := fmt.Sprintf("loop-%d", i)
		env := wire.Envelope{Target: functions.Address{Type: pingFn, ID: id}, Argument: hopType.Of(hop{Seq: 1000 + i})}
		sent = append(sent, [2][]byte{[]byte(id), wire.AppendEnvelope(nil, env)})
	}
	produce(t, client, app+"-loop", sent...)
	waitFor(t, 60*time.Second, "416 records done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= 416, fmt.Sprintf("%d done", n)
	})
	stop()
	// records that arrive while the application is stopped are its lag
	produceSeqs(t, client, app+"-in", 400, 700, 16, perID)

	tool := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("../scripts/kafka.sh", append([]string{"run-class"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	const groups, topics = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "org.apache.kafka.tools.TopicCommand"
	server := "--bootstrap-server=" + strings.Join(brokers, ",")

	if list := tool(groups, server, "--list"); !slices.Contains(strings.Fields(list), app) {
		t.Errorf("kafka-consumer-groups --list does not show group %s:\n%s", app, list)
	}
	lag := map[string]int64{}
	rows := map[string]int{}
	describe := tool(groups, server, "--describe", "--group", app)
	for _, line := range strings.Split(describe, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != app {
			continue
		}
		rows[f[1]]++
		if n, err := strconv.ParseInt(f[5], 10, 64); err == nil {
			lag[f[1]] += n
		}
	}
	if rows[app+"-in"] != 4 || rows[app+"-loop"] != 4 {
		t.Errorf("kafka-consumer-groups --describe shows partitions %v, want 4 of %s-in and 4 of %s-loop:\n%s", rows, app, app, describe)
	}
	// The loop topic is written in transactions: each partition ends with
	// a commit marker, which takes an offset that the tool counts as lag.
	if lag[app+"-in"] != 300 || lag[app+"-loop"] > 4 {
		t.Errorf("kafka-consumer-groups --describe shows lag %v, want 300 on %s-in (produced while stopped) and at most one commit marker per partition on %s-loop:\n%s", lag, app, app, describe)
	}

	listed := strings.Fields(tool(topics, server, "--list"))
	for _, want := range []string{app + "-in", app + "-done", string(topo.LoopTopic()), string(topo.DLQTopic()),
		string(topo.TableTopic(pingFn)), string(topo.TableTopic(pongFn))} {
		if !slices.Contains(listed, want) {
			t.Errorf("kafka-topics --list does not show %s", want)
		}
	}
}

// TestKafkaDelayedMessagesSurviveKill9OfRuntime: 100,000 delayed messages
// (delays up to 3 s, one in ten cancelled) on Apache Kafka, the runtime
// process killed with SIGKILL twice while they wait and restarted on its
// data directory: each arrives once, none early, no cancelled one.
func TestKafkaDelayedMessagesSurviveKill9OfRuntime(t *testing.T) {
	t.Setenv("STATELOOP_TEST_APP_KIND", "timers")
	brokers := kafkaBrokers(t)
	app := uniqueApp("timers-kill9")
	client := testClient(t, brokers)
	dir := t.TempDir()
	plan := newTimerPlan(100_000, 3*time.Second, uint64(time.Now().UnixNano()))
	proc := startKafkaApp(t, app, "k1", dir)
	defer func() { _ = proc.cmd.Process.Kill(); _ = proc.cmd.Wait() }()
	third := len(plan.cmds) / 3
	for k := 0; k < 2; k++ {
		plan.produce(t, client, app+"-in", k*third, (k+1)*third, 64)
		time.Sleep(time.Second)
		proc.kill(t)
		t.Logf("kill %d after producing %d commands", k+1, (k+1)*third)
		proc = startKafkaApp(t, app, "k1", dir)
	}
	plan.produce(t, client, app+"-in", 2*third, len(plan.cmds), 64)
	plan.check(t, client, app+"-fired", 180*time.Second, func() string { return "" })
}

// TestKafkaExpiredStateIsCompactedAway: on Apache Kafka, once the sweep
// has written the tombstone of an address whose state expired, log
// compaction removes its old values from the table topic. (The topic is
// set to roll segments and compact at once; CI's broker runs its cleaner
// every 500 ms, log.cleaner.backoff.ms.)
func TestKafkaExpiredStateIsCompactedAway(t *testing.T) {
	brokers := kafkaBrokers(t)
	app := uniqueApp("compact")
	topo, reg := sessionApp(app)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	p, err := New(brokers, topo, reg, WithClock(clock.Now), WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 60*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	client := testClient(t, brokers)
	table := string(topo.TableTopic(sessionFn))
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	config := map[string]*string{}
	for k, v := range map[string]string{"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.001",
		"delete.retention.ms": "100", "min.compaction.lag.ms": "0"} {
		config[k] = &v
	}
	if err := admin.AlterConfig(sarama.TopicResource, table, config, false); err != nil {
		t.Fatal(err)
	}
	visit := func(id string, n int) {
		t.Helper()
		b, err := functions.StringType.Codec().Encode("ann")
		if err != nil {
			t.Fatal(err)
		}
		before := len(readTopic(t, client, app+"-out"))
		for i := 0; i < n; i++ {
			produce(t, client, app+"-in", [2][]byte{[]byte(id), b})
		}
		waitFor(t, 30*time.Second, "visits", func() (bool, string) {
			got := len(readTopic(t, client, app+"-out"))
			return got >= before+n, fmt.Sprintf("%d egress records", got)
		})
	}
	valuesOf := func(id string) int {
		n := 0
		for _, r := range readTopic(t, client, table) {
			if r.Key == id && r.Value != nil {
				n++
			}
		}
		return n
	}
	for i := 0; i < 5; i++ {
		visit("k1", 1) // one commit, one table record each
	}
	if n := valuesOf("k1"); n < 2 {
		t.Fatalf("table holds %d values of k1, want several before compaction", n)
	}
	clock.Advance(2 * time.Hour) // everything of k1 expired
	waitFor(t, 30*time.Second, "the sweep's tombstone", func() (bool, string) {
		recs := readTopic(t, client, table)
		last := recs[len(recs)-1]
		return last.Key == "k1" && last.Value == nil, fmt.Sprintf("last table record %q", last.Key)
	})
	// more writes to k1's partition roll the segment that holds its
	// records, so the cleaner can compact it
	other := "k2"
	for i := 2; partitionFor(other, 4) != partitionFor("k1", 4); i++ {
		other = "k" + strconv.Itoa(i)
	}
	waitFor(t, 120*time.Second, "k1's values compacted away", func() (bool, string) {
		visit(other, 1)
		time.Sleep(500 * time.Millisecond)
		n := valuesOf("k1")
		return n == 0, fmt.Sprintf("%d values of k1 left in %s", n, table)
	})
}

//go:build integration

package processor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// The test in this file runs on a cluster of three Kafka brokers that
// scripts/kafka.sh started (`scripts/kafka.sh start --nodes 3`, replication
// factor 3, min.insync.replicas 2): KAFKA_CLUSTER_BROKERS lists them, and
// KAFKA_CLUSTER_DIR (or KAFKA_DIR) is the cluster's directory, so that the
// test can kill and restart its nodes through the script. scripts/test.sh
// runs it in a step of its own.

const clusterAppEnv = "STATELOOP_TEST_CLUSTER_APP"

// clusterSession is the group session timeout of the cluster test's
// instances (the cluster runs with group.min.session.timeout.ms=500).
const clusterSession = 3 * time.Second

// clusterTxnTimeout is their transaction timeout: how long a frozen
// instance's open transaction holds up the partitions it had.
const clusterTxnTimeout = 10 * time.Second

func init() {
	processRoles = append(processRoles, struct {
		env string
		run func() int
	}{clusterAppEnv, runClusterMember})
}

// runClusterMember runs one instance of the cycle application named by
// STATELOOP_TEST_CLUSTER_APP on STATELOOP_TEST_BROKERS as instance
// STATELOOP_TEST_INSTANCE with local state in STATELOOP_TEST_DATA_DIR, with
// the default replication of created topics (3 and min.insync.replicas 2
// on the cluster), until SIGTERM; it prints READY once it owns recovered
// partitions.
func runClusterMember() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	topo, reg := cycleApp(os.Getenv(clusterAppEnv))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).
		With("instance", os.Getenv("STATELOOP_TEST_INSTANCE"))
	p, err := New(strings.Split(os.Getenv("STATELOOP_TEST_BROKERS"), ","), topo, reg,
		WithInstanceID(os.Getenv("STATELOOP_TEST_INSTANCE")), WithDataDir(os.Getenv("STATELOOP_TEST_DATA_DIR")),
		WithSessionTimeout(clusterSession), WithTransactionTimeout(clusterTxnTimeout), WithLogger(logger))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster member:", err)
		return 1
	}
	return serveProcess(ctx, "cluster member", p)
}

// kafkaCluster is the three-broker cluster of the test.
type kafkaCluster struct {
	t       *testing.T
	brokers []string
	dir     string
}

func clusterFromEnv(t *testing.T) *kafkaCluster {
	t.Helper()
	brokers := strings.Split(os.Getenv("KAFKA_CLUSTER_BROKERS"), ",")
	dir := os.Getenv("KAFKA_CLUSTER_DIR")
	if dir == "" {
		dir = os.Getenv("KAFKA_DIR")
	}
	if len(brokers) < 3 || dir == "" {
		t.Fatal("this test needs a cluster of three brokers: run `KAFKA_DIR=/tmp/stateloop-cluster scripts/kafka.sh start --nodes 3` " +
			"and export KAFKA_CLUSTER_BROKERS (the KAFKA_BROKERS= it prints) and KAFKA_CLUSTER_DIR=/tmp/stateloop-cluster")
	}
	return &kafkaCluster{t: t, brokers: brokers, dir: dir}
}

// script runs scripts/kafka.sh on the cluster.
func (c *kafkaCluster) script(args ...string) {
	c.t.Helper()
	cmd := exec.Command("../scripts/kafka.sh", args...)
	cmd.Env = append(os.Environ(), "KAFKA_DIR="+c.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("scripts/kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// clusterMember is one instance of the test, a child process.
type clusterMember struct {
	name string
	dir  string
	proc *appProcess
}

func (m *clusterMember) env(brokers []string, app string) []string {
	return []string{clusterAppEnv + "=" + app, "STATELOOP_TEST_BROKERS=" + strings.Join(brokers, ","),
		"STATELOOP_TEST_INSTANCE=" + m.name, "STATELOOP_TEST_DATA_DIR=" + m.dir}
}

// hwmWatch samples the high water marks of a topic's partitions every
// 100 ms and keeps, per partition, when a sample saw one move.
type hwmWatch struct {
	mu    sync.Mutex
	moves map[int32][]time.Time
}

func watchHWM(ctx context.Context, brokers []string, topic string, parts int32) *hwmWatch {
	w := &hwmWatch{moves: map[int32][]time.Time{}}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Net.DialTimeout = 500 * time.Millisecond
	sc.Net.ReadTimeout = 2 * time.Second
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 50 * time.Millisecond
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return w
	}
	last := map[int32]int64{}
	go func() {
		defer client.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for p := range parts {
				hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
				if err != nil {
					continue
				}
				if hwm > last[p] {
					last[p] = hwm
					w.mu.Lock()
					w.moves[p] = append(w.moves[p], time.Now())
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

// longestPause returns the longest time any partition did not move within
// [from, to), counting from from, and the partition.
func (w *hwmWatch) longestPause(from, to time.Time) (time.Duration, int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var worst time.Duration
	var worstPart int32
	for p, moves := range w.moves {
		prev := from
		for _, m := range moves {
			if m.Before(from) {
				continue
			}
			if !m.Before(to) {
				break
			}
			if d := m.Sub(prev); d > worst {
				worst, worstPart = d, p
			}
			prev = m
		}
		if d := to.Sub(prev); d > worst {
			worst, worstPart = d, p
		}
	}
	return worst, worstPart
}

// movedSince reports whether every partition moved after t.
func (w *hwmWatch) movedSince(t time.Time, parts int32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range parts {
		ms := w.moves[p]
		if len(ms) == 0 || !ms[len(ms)-1].After(t) {
			return false
		}
	}
	return true
}

// TestThreeBrokerClusterKeepsExactlyOnceThroughBrokerAndInstanceFaults
// streams 100,000 records (500 a second until the faults are over, then
// the rest at once) through the cycle application (two function
// types, five invocations per record) on three instances on the
// three-broker cluster, and, one after the other while the stream goes
// on: (a) kills the broker that leads loop-topic partitions with SIGKILL
// and restarts it, (b) kills an instance with SIGKILL and restarts it, (c)
// freezes an instance with SIGSTOP past its session timeout until the
// others took its partitions, then resumes it (it must be fenced). Every
// record's effects must then be in the tables exactly once and its egress
// record on the read_committed egress exactly once. The longest pause of
// any partition (of the ping table: its owner's progress) and of any
// egress partition after each fault is logged.
func TestThreeBrokerClusterKeepsExactlyOnceThroughBrokerAndInstanceFaults(t *testing.T) {
	c := clusterFromEnv(t)
	total := 100_000
	if s := os.Getenv("STATELOOP_CLUSTER_MESSAGES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			t.Fatalf("STATELOOP_CLUSTER_MESSAGES=%q: want a count of at least 1000", s)
		}
		total = n
	}
	rate := 500 // records per second while the faults go on
	if s := os.Getenv("STATELOOP_CLUSTER_RATE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			t.Fatalf("STATELOOP_CLUSTER_RATE=%q: want records per second, at least 100", s)
		}
		rate = n
	}
	const ids = 64
	app := uniqueApp("cluster")
	topo, _ := cycleApp(app)
	parts := topo.PartitionCount()
	client := testClient(t, c.brokers)
	t0 := time.Now()
	elapsed := func() string { return time.Since(t0).Round(100 * time.Millisecond).String() }

	members := make([]*clusterMember, 3)
	for i := range members {
		members[i] = &clusterMember{name: fmt.Sprintf("c%d", i+1), dir: filepath.Join(t.TempDir(), "data")}
	}
	start := func(m *clusterMember) {
		m.proc = launchAppProcess(t, m.env(c.brokers, app)...)
	}
	t.Cleanup(func() {
		for _, m := range members {
			if m.proc != nil {
				_ = m.proc.cmd.Process.Signal(syscall.SIGCONT)
				_ = m.proc.cmd.Process.Kill()
				_ = m.proc.cmd.Wait()
			}
		}
	})
	for _, m := range members {
		start(m)
	}
	for _, m := range members {
		m.proc.waitReady(t, 90*time.Second)
	}
	t.Logf("%s: three instances ready", elapsed())
	checkClusterReplication(t, c.brokers, string(topo.LoopTopic()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A partition of the ping table moves only while the instance that
	// owns the partition works (every invocation sets its address's count,
	// and the table is partitioned as the addresses). The egress
	// partitions get records from every instance.
	watch := watchHWM(ctx, c.brokers, string(topo.TableTopic(pingFn)), parts)
	egress := watchHWM(ctx, c.brokers, app+"-done", parts)

	// The stream, at a steady rate, with an idempotent producer that
	// retries through the loss of a leader.
	perID := map[string]int{}
	for seq := range total {
		perID["id"+strconv.Itoa(seq%ids)]++
	}
	var produced atomic.Int64
	var unpaced atomic.Bool
	streamed := make(chan error, 1)
	go func() { streamed <- streamRecords(ctx, c.brokers, app+"-in", total, ids, rate, &produced, &unpaced) }()

	progress := func() string {
		return fmt.Sprintf("%d produced", produced.Load())
	}
	// waitFlowing waits until every partition moved after since, or the
	// stream is over (then the partitions stop when their work is done;
	// the end checks that every record was).
	waitFlowing := func(what string, since time.Time) time.Duration {
		t.Helper()
		waitFor(t, 120*time.Second, what, func() (bool, string) {
			return watch.movedSince(since, parts) || produced.Load() == int64(total), progress()
		})
		return time.Since(since)
	}
	type fault struct {
		name        string
		at, settled time.Time
		note        string
	}
	var faults []fault

	time.Sleep(8 * time.Second)
	waitFlowing("the stream flowing through every partition", t0)

	// (a) the broker that leads loop partitions
	leader, err := client.Leader(string(topo.LoopTopic()), 0)
	if err != nil {
		t.Fatal(err)
	}
	node := leader.ID()
	at := time.Now()
	c.script("kill-node", strconv.Itoa(int(node)))
	t.Logf("%s: (a) killed broker node %d (leader of %s/0) with SIGKILL; %s", elapsed(), node, topo.LoopTopic(), progress())
	time.Sleep(5 * time.Second)
	c.script("start-node", strconv.Itoa(int(node)))
	restarted := time.Since(at)
	flow := waitFlowing("every partition flowing after the broker restart", time.Now())
	faults = append(faults, fault{name: fmt.Sprintf("(a) SIGKILL of broker %d, restarted 5 s later", node), at: at, settled: time.Now(),
		note: fmt.Sprintf("node serving again %.1fs after the kill", restarted.Seconds())})
	t.Logf("%s: (a) node %d back after %.1fs, every partition flowing %.1fs later; %s", elapsed(), node, restarted.Seconds(), flow.Seconds(), progress())
	time.Sleep(3 * time.Second)

	// (b) an instance, SIGKILL, restarted at once on its data dir
	victim := members[1]
	at = time.Now()
	victim.proc.kill(t)
	start(victim)
	victim.proc.waitReady(t, 90*time.Second)
	ready := time.Since(at)
	flow = waitFlowing("every partition flowing after the instance restart", at)
	time.Sleep(3 * time.Second)
	faults = append(faults, fault{name: "(b) SIGKILL of instance " + victim.name + ", restarted at once", at: at, settled: time.Now(),
		note: fmt.Sprintf("restarted instance ready after %.1fs, every partition moved by %.1fs", ready.Seconds(), flow.Seconds())})
	t.Logf("%s: (b) killed and restarted instance %s: ready after %.1fs; %s", elapsed(), victim.name, ready.Seconds(), progress())

	// (c) an instance frozen past its session timeout
	zombie := members[2]
	at = time.Now()
	if err := zombie.proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenFor := clusterSession + clusterTxnTimeout + 2*time.Second
	time.Sleep(frozenFor)
	if err := zombie.proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFlowing("every partition flowing after the freeze", at)
	time.Sleep(3 * time.Second)
	faults = append(faults, fault{name: fmt.Sprintf("(c) SIGSTOP of instance %s for %v (session %v, transaction timeout %v), then SIGCONT",
		zombie.name, frozenFor, clusterSession, clusterTxnTimeout), at: at, settled: time.Now()})
	t.Logf("%s: (c) froze instance %s for %v and resumed it; %s", elapsed(), zombie.name, frozenFor, progress())

	// the rest of the stream as fast as it goes
	unpaced.Store(true)
	if err := <-streamed; err != nil {
		t.Fatalf("producing the stream: %v", err)
	}
	t.Logf("%s: all %d records produced", elapsed(), total)
	waitFor(t, 300*time.Second, "every record done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total, fmt.Sprintf("%d of %d done", n, total)
	})
	t.Logf("%s: every record done", elapsed())
	for _, f := range faults {
		pause, part := watch.longestPause(f.at, f.settled)
		epause, epart := egress.longestPause(f.at, f.settled)
		note := ""
		if f.note != "" {
			note = "; " + f.note
		}
		t.Logf("%s: longest pause of a partition %.1fs (partition %d), of an egress partition %.1fs (partition %d)%s",
			f.name, pause.Seconds(), part, epause.Seconds(), epart, note)
	}
	// the resumed zombie gets fenced at its next commit; give it the time
	time.Sleep(3 * time.Second)
	checkCycleExact(t, client, topo, perID)
	t.Logf("%s: counts exact: %d records, %d invocations, egress exactly once (read_committed)", elapsed(), total, 5*total)
}

// streamRecords produces records 0..total-1 (keys cycling over ids) at
// rate records per second until unpaced is set, then as fast as it can,
// with an idempotent producer that retries for a minute: a leader that
// dies costs a pause, not a record twice.
func streamRecords(ctx context.Context, brokers []string, topic string, total, ids, rate int, produced *atomic.Int64, unpaced *atomic.Bool) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	sc.Producer.Flush.Messages = 100
	sc.Producer.Retry.Max = 240
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	sc.Metadata.Retry.Max = 240
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	sp, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		return err
	}
	defer sp.Close()
	// 100 records a call while paced, 1,000 when not
	const paced = 100
	interval := time.Duration(paced) * time.Second / time.Duration(rate)
	next := time.Now()
	for seq := 0; seq < total; {
		batch := paced
		if unpaced.Load() {
			batch = 10 * paced
		}
		var msgs []*sarama.ProducerMessage
		for s := seq; s < min(seq+batch, total); s++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("id" + strconv.Itoa(s%ids)),
				Value: sarama.StringEncoder(strconv.Itoa(s))})
		}
		if err := sp.SendMessages(msgs); err != nil {
			return fmt.Errorf("records %d to %d: %w", seq, seq+len(msgs)-1, err)
		}
		seq += len(msgs)
		produced.Store(int64(seq))
		next = next.Add(interval)
		if unpaced.Load() {
			next = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
	return nil
}

// checkClusterReplication checks that the processor created the loop
// topic with three replicas and min.insync.replicas 2, its defaults on
// three brokers.
func checkClusterReplication(t *testing.T, brokers []string, topic string) {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(testClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	mds, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(mds) != 1 {
		t.Fatalf("describe %s: %v", topic, err)
	}
	for _, p := range mds[0].Partitions {
		if len(p.Replicas) != 3 {
			t.Errorf("%s/%d has replicas %v, want 3 of them", topic, p.ID, p.Replicas)
		}
	}
	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}}, sarama.DescribeConfigsOptions{})
	if err != nil || len(res) != 1 {
		t.Fatalf("describe the configs of %s: %v", topic, err)
	}
	minISR := "none"
	for _, e := range res[0].Configs {
		if e.Name == "min.insync.replicas" {
			minISR = e.Value
		}
	}
	if minISR != "2" {
		t.Errorf("%s has min.insync.replicas %s, want 2", topic, minISR)
	}
}

//go:build unix

package embedded

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// helperEnv makes the test binary act as a stateloop-like parent process:
// it starts a child broker on the data dir in the variable, prints
// "BROKER <addr> <child pid>", then commits transactions in a loop,
// printing "COMMITTED <i>" after each, until it is killed.
const helperEnv = "EMBEDDED_TEST_PARENT_DATA_DIR"

const killTxnID = "kill-txn"

func TestMain(m *testing.M) {
	ServeIfChild()
	if dir, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(runParentHelper(dir))
	}
	// Under -race every process sleeps a second before it exits; spare
	// the broker children (GORACE is read at start-up, so this process
	// keeps its own setting).
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

func runParentHelper(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2, Logger: testLogger()})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Printf("BROKER %s %d\n", b.Addr(), b.cmd.Process.Pid)
	if err := createTopics(b.Addr(), map[string]int32{"out": 2, "in": 1}); err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	p, err := txnProducer(b.Addr(), killTxnID)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	for i := 0; ; i++ {
		if err := commitKillTxn(p, i); err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
		fmt.Printf("COMMITTED %d\n", i)
	}
}

// commitKillTxn commits transaction i: value i on out/0 and out/1 and the
// offset i+1 of in/0 for group kill-g.
func commitKillTxn(p sarama.SyncProducer, i int) error {
	if err := p.BeginTxn(); err != nil {
		return err
	}
	v := sarama.StringEncoder(strconv.Itoa(i))
	if err := p.SendMessages([]*sarama.ProducerMessage{
		{Topic: "out", Partition: 0, Value: v},
		{Topic: "out", Partition: 1, Value: v},
	}); err != nil {
		return err
	}
	if err := p.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{
		"in": {{Partition: 0, Offset: int64(i + 1)}},
	}, "kill-g"); err != nil {
		return err
	}
	return p.CommitTxn()
}

func testLogger() *slog.Logger {
	if os.Getenv("EMBEDDED_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_0_0_0
	c.ClientID = "embedded-test"
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	c.Net.DialTimeout = 5 * time.Second
	return c
}

func txnProducer(addr, txnID string) (sarama.SyncProducer, error) {
	c := saramaConfig()
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Transaction.ID = txnID
	c.Producer.Transaction.Timeout = 10 * time.Second
	c.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Retry.Backoff = 50 * time.Millisecond
	c.Net.MaxOpenRequests = 1
	return sarama.NewSyncProducer([]string{addr}, c)
}

func createTopics(addr string, topics map[string]int32) error {
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	for name, n := range topics {
		err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: n, ReplicationFactor: 1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating %s: %w", name, err)
		}
	}
	return nil
}

// consumeCommitted reads a partition read_committed from the start. It
// returns once it has want values, or, with want < 0, once nothing came for
// idle.
func consumeCommitted(addr, topic string, partition int32, want int, idle time.Duration) ([]string, error) {
	return consume(addr, topic, partition, want, idle, sarama.ReadCommitted)
}

func consume(addr, topic string, partition int32, want int, idle time.Duration, isolation sarama.IsolationLevel) ([]string, error) {
	c := saramaConfig()
	c.Consumer.IsolationLevel = isolation
	c.Consumer.Return.Errors = true
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	consumer, err := sarama.NewConsumer([]string{addr}, c)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var vals []string
	deadline := time.After(20 * time.Second)
	idleT := time.NewTimer(idle)
	defer idleT.Stop()
	for {
		if want >= 0 && len(vals) >= want {
			return vals, nil
		}
		select {
		case m := <-pc.Messages():
			vals = append(vals, string(m.Value))
			idleT.Reset(idle)
		case err := <-pc.Errors():
			return vals, err
		case <-idleT.C:
			if want < 0 {
				return vals, nil
			}
			idleT.Reset(idle)
		case <-deadline:
			return vals, fmt.Errorf("%s/%d: got %d records, want %d", topic, partition, len(vals), want)
		}
	}
}

func committedOffset(addr, group, topic string, partition int32) (int64, error) {
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		return 0, err
	}
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		return 0, err
	}
	blk := resp.GetBlock(topic, partition)
	if blk == nil {
		return 0, fmt.Errorf("no offset for %s/%s/%d", group, topic, partition)
	}
	if blk.Err != sarama.ErrNoError {
		return 0, blk.Err
	}
	return blk.Offset, nil
}

func start(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestInProcess(t *testing.T) {
	b := start(t, Config{Listen: "localhost:0", Partitions: 3, InProcess: true})
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr = %q", b.Addr())
	}
	client, err := sarama.NewClient([]string{b.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions("auto-created")
	client.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Errorf("auto-created topic has %d partitions, want 3", len(parts))
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-b.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := b.Close(); err != nil || b.Err() != nil {
		t.Fatalf("second Close = %v, Err = %v", err, b.Err())
	}
	if _, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		t.Error("broker still accepts connections after Close")
	}
}

// TestChildPersistsAcrossRestart produces transactionally with sarama to a
// child broker, closes it, starts another on the same data dir and reads
// the committed records, not the aborted ones, and the committed offsets.
func TestChildPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 4})
	if err := createTopics(b.Addr(), map[string]int32{"in": 1}); err != nil {
		t.Fatal(err)
	}
	p, err := txnProducer(b.Addr(), "persist-txn")
	if err != nil {
		t.Fatal(err)
	}
	const (
		txns   = 20
		perTxn = 500
		parts  = 4 // the auto-created topic gets Config.Partitions
	)
	pad := strings.Repeat("x", 100)
	send := func(i int, prefix string) {
		t.Helper()
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		msgs := make([]*sarama.ProducerMessage, perTxn)
		for j := range msgs {
			msgs[j] = &sarama.ProducerMessage{
				Topic:     "persist",
				Partition: int32(j % parts),
				Value:     sarama.StringEncoder(fmt.Sprintf("%s-%03d-%03d-%s", prefix, i, j, pad)),
			}
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}
	for i := range txns {
		send(i, "c")
		if err := p.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{
			"in": {{Partition: 0, Offset: int64(i + 1)}},
		}, "persist-g"); err != nil {
			t.Fatal(err)
		}
		if err := p.CommitTxn(); err != nil {
			t.Fatal(err)
		}
		if i == txns/2 {
			send(i, "aborted")
			if err := p.AbortTxn(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("graceful close of a child broker holding %d committed and %d aborted records (~%d KiB) took %v",
		txns*perTxn, perTxn, (txns+1)*perTxn*(len(pad)+20)/1024, time.Since(began))

	began = time.Now()
	b2 := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 4})
	t.Logf("restart on the same data dir took %v", time.Since(began))
	for part := range int32(parts) {
		vals, err := consumeCommitted(b2.Addr(), "persist", part, txns*perTxn/parts, 0)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range vals {
			i, j := k/(perTxn/parts), (k%(perTxn/parts))*parts+int(part)
			if want := fmt.Sprintf("c-%03d-%03d-%s", i, j, pad); v != want {
				t.Fatalf("persist/%d record %d = %.20q, want %.20q", part, k, v, want)
			}
		}
	}
	off, err := committedOffset(b2.Addr(), "persist-g", "in", 0)
	if err != nil {
		t.Fatal(err)
	}
	if off != txns {
		t.Errorf("committed offset of persist-g in/0 = %d, want %d", off, txns)
	}
}

// TestKillParent kill -9s a process that owns a child broker, in the middle
// of its transactions, and checks that the child shuts down cleanly,
// releases the data dir, and that every committed transaction is there,
// whole, with its offset commit.
func TestKillParent(t *testing.T) {
	reaping := becomeSubreaper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var (
		childPID      int
		lastCommitted = -1
	)
	timeout := time.After(30 * time.Second)
	for lastCommitted < 30 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("parent helper exited")
			}
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "BROKER":
				childPID, _ = strconv.Atoi(f[2])
			case len(f) == 2 && f[0] == "COMMITTED":
				lastCommitted, _ = strconv.Atoi(f[1])
			default:
				t.Fatalf("parent helper: %s", l)
			}
		case <-timeout:
			t.Fatalf("parent helper committed %d transactions in 30s", lastCommitted+1)
		}
	}
	if childPID == 0 {
		t.Fatal("no child pid")
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for l := range lines { // until EOF: only the helper holds its stdout
		if f := strings.Fields(l); len(f) == 2 && f[0] == "COMMITTED" {
			lastCommitted, _ = strconv.Atoi(f[1])
		}
	}
	_ = cmd.Wait()

	status, err := waitGone(childPID, reaping, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("child broker %d exited %v after its parent was killed (%s); %d transactions were committed", childPID, time.Since(killed), status, lastCommitted+1)
	if reaping && status != "exit status 0" {
		t.Errorf("child broker ended with %s, want exit status 0", status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	b, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 2, Logger: testLogger(), lockWait: 3 * time.Second})
	if err != nil {
		t.Fatalf("restart on the data dir of the killed parent: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	t.Logf("restart took %v", time.Since(began))

	// Like a restarted stateloop: re-initialising the transactional id
	// aborts the transaction the killed parent left open.
	p, err := txnProducer(b.Addr(), killTxnID)
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Close()

	var got [2][]string
	for part := range int32(2) {
		got[part], err = consumeCommitted(b.Addr(), "out", part, -1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got[0]) != len(got[1]) {
		t.Fatalf("out/0 has %d transactions, out/1 has %d: a transaction was torn apart", len(got[0]), len(got[1]))
	}
	n := len(got[0])
	if n < lastCommitted+1 || n > lastCommitted+2 {
		t.Fatalf("found %d transactions, the parent had committed %d (or %d, if it was killed before printing)", n, lastCommitted+1, lastCommitted+2)
	}
	for part := range 2 {
		for i, v := range got[part] {
			if v != strconv.Itoa(i) {
				t.Fatalf("out/%d record %d = %q, want %d", part, i, v, i)
			}
		}
	}
	off, err := committedOffset(b.Addr(), "kill-g", "in", 0)
	if err != nil {
		t.Fatal(err)
	}
	if off != int64(n) {
		t.Fatalf("committed offset of kill-g = %d with %d transactions on out: offset commit and records disagree", off, n)
	}
	all, err := consume(b.Addr(), "out", 0, -1, 500*time.Millisecond, sarama.ReadUncommitted)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all %d committed transactions found whole after kill -9 and restart, offset commit %d; out/0 holds %d aborted records of the transaction the kill interrupted",
		n, off, len(all)-n)
}

// waitGone waits until pid has exited and, if this process reaps it,
// returns its exit status.
func waitGone(pid int, reaping bool, timeout time.Duration) (string, error) {
	if reaping {
		type res struct {
			ws  syscall.WaitStatus
			err error
		}
		ch := make(chan res, 1)
		go func() {
			var ws syscall.WaitStatus
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			ch <- res{ws, err}
		}()
		select {
		case r := <-ch:
			if r.err == nil {
				if r.ws.Signaled() {
					return "signal " + r.ws.Signal().String(), nil
				}
				return "exit status " + strconv.Itoa(r.ws.ExitStatus()), nil
			}
			if !errors.Is(r.err, syscall.ECHILD) {
				return "", r.err
			}
		case <-time.After(timeout):
			return "", fmt.Errorf("child broker %d still running %v after its parent was killed", pid, timeout)
		}
	}
	deadline := time.Now().Add(timeout)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("child broker %d still running %v after its parent was killed", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "gone", nil
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, inProcess := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b, err := Start(ctx, Config{Listen: ln.Addr().String(), InProcess: inProcess})
		cancel()
		if err == nil {
			b.Close()
			t.Fatalf("InProcess=%v: Start on a used port succeeded", inProcess)
		}
		want := fmt.Sprintf("embedded: port %d is in use: pass --listen 127.0.0.1:0 or another port, or --brokers to use a running Kafka", port)
		if !errors.Is(err, ErrPortInUse) || !errors.Is(err, syscall.EADDRINUSE) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("InProcess=%v: err = %v", inProcess, err)
		}
	}
}

func TestListenNotLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "10.1.2.3:9092", "example.com:9092", "127.0.0.1:99999", "127.0.0.1", "127.0.0.1:x"} {
		b, err := Start(context.Background(), Config{Listen: listen})
		if err == nil {
			b.Close()
			t.Errorf("Listen %q: Start succeeded", listen)
			continue
		}
		if !strings.HasPrefix(err.Error(), "embedded: ") {
			t.Errorf("Listen %q: err = %v", listen, err)
		}
	}
	_, err := Start(context.Background(), Config{Listen: "10.0.0.1:9092"})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("err = %v", err)
	}
}

// TestDataDirInUse: a second broker on a data dir waits for the first
// one, fails clearly when it does not go away, and starts when it does.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	holder := start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, InProcess: true})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	_, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: dir, lockWait: 300 * time.Millisecond})
	want := fmt.Sprintf("embedded: data dir %s is used by another running stateloop (pid %d)", dir, os.Getpid())
	if !errors.Is(err, ErrDataDirInUse) || !strings.HasPrefix(fmt.Sprint(err), want) {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("gave up after %v, want >= 300ms", took)
	}

	started := make(chan error, 1)
	var b *Broker
	go func() {
		var err error
		b, err = Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: dir, lockWait: 20 * time.Second})
		started <- err
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-started:
		t.Fatalf("second broker started while the first holds the data dir: %v", err)
	default:
	}
	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatalf("second broker after the first closed: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStartCanceled(t *testing.T) {
	dir := t.TempDir()
	start(t, Config{Listen: "127.0.0.1:0", DataDir: dir, InProcess: true})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: dir, lockWait: 20 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Start returned %v after its context ended", took)
	}
}

func TestChildDies(t *testing.T) {
	b := start(t, Config{Listen: "127.0.0.1:0"})
	if err := syscall.Kill(b.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the child died")
	}
	err := b.Err()
	if err == nil || !strings.Contains(err.Error(), "stopped unexpectedly") {
		t.Fatalf("Err = %v", err)
	}
	if cerr := b.Close(); cerr == nil || cerr.Error() != err.Error() {
		t.Errorf("Close = %v, want %v", cerr, err)
	}
}

func TestLogForwarder(t *testing.T) {
	var sb strings.Builder
	f := newLogForwarder(slog.New(slog.NewTextHandler(&sb, &slog.HandlerOptions{Level: slog.LevelDebug})))
	_, _ = io.WriteString(f, `{"time":"x","level":"WARN","msg":"careful","n":1,"broker_pid":7}`+"\npanic: boom\n")
	_, _ = io.WriteString(f, `{"level":"INFO","msg":"embedded broker stopping","reason":"got signal`)
	_, _ = io.WriteString(f, ` terminated"}`)
	f.flush()
	out := sb.String()
	for _, want := range []string{"level=WARN msg=careful component=embedded-broker broker_pid=7 n=1", `msg="embedded broker output" line="panic: boom"`, "reason=\"got signal terminated\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	if got, want := f.tailText(), "; last output: careful n=1 | panic: boom"; got != want {
		t.Errorf("tailText = %q, want %q", got, want)
	}
	if got := f.lastReason(); got != "got signal terminated" {
		t.Errorf("lastReason = %q", got)
	}
}

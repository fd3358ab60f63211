package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/opstest"
	"github.com/stateloop/stateloop/internal/opstest/opsapp"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor"
)

// The replay tests kill, with SIGKILL, the replay command (the stateloop
// binary) or the runtime (this test binary re-executed as the opstest
// application, opsAppEnv) while a replay of thousands of dead letters is
// being delivered, run the replay again, and check that every dead letter
// reached its address exactly once.

// opsAppEnv makes this test binary the opstest application: it runs
// processor (only) on the brokers given in the variable, until killed.
const opsAppEnv = "STATELOOP_TEST_OPS_APP"

// invokeDelay slows the application down in the replay tests, so that
// a kill lands while a chunk of replays is being delivered: written to
// the loop topic, some delivered and some not.
const invokeDelay = time.Millisecond

// firstChunkDelay slows the application down while the first replay
// command runs: at invokeDelay an idle machine delivered the whole first
// chunk (500) before the kill landed, and the second run then had no
// waiting replays to answer as duplicates.
const firstChunkDelay = 40 * time.Millisecond

// runOpsApp is the application process: STATELOOP_TEST_OPS_APP is
// "<brokers>|<app>|<data dir>|<broken file>".
func runOpsApp() int {
	f := strings.Split(os.Getenv(opsAppEnv), "|")
	if len(f) != 4 {
		fmt.Fprintln(os.Stderr, "ops app: want", opsAppEnv, "= brokers|app|data dir|broken file")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	topo, reg := opstest.Build(f[1], opstest.BrokenWhileFileExists(f[3], invokeDelay))
	p, err := processor.New(strings.Split(f[0], ","), topo, reg, processor.WithCommitInterval(20*time.Millisecond),
		processor.WithDataDir(f[2]), processor.WithInstanceID("ops-app"), processor.WithRetries(0, time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ops app:", err)
		return 1
	}
	go func() {
		for !p.Stats().Ready {
			time.Sleep(20 * time.Millisecond)
		}
		fmt.Println("READY")
	}()
	if err := p.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ops app:", err)
		return 1
	}
	return 0
}

// child is a process of a test that prints READY when it is.
type child struct {
	cmd   *exec.Cmd
	ready chan struct{}
	out   *kafkatest.SyncBuffer
	done  chan struct{}
}

func startChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, ready: make(chan struct{}), out: &kafkatest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-c.done })
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		var once sync.Once
		for sc.Scan() {
			c.out.Write([]byte(sc.Text() + "\n"))
			if sc.Text() == "READY" {
				once.Do(func() { close(c.ready) })
			}
		}
	}()
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
	_ = c.cmd.Wait()
}

// startOpsAppProcess runs the opstest application in a child process.
func startOpsAppProcess(t *testing.T, brokers, app, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), opsAppEnv+"="+strings.Join([]string{brokers, app, filepath.Join(dir, "data"), filepath.Join(dir, "broken")}, "|"))
	c := startChild(t, cmd)
	select {
	case <-c.ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("the application process is not ready after 60s:\n%s", c.out)
	}
	return c
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// stateloopBinary builds the stateloop binary once for the tests that
// run it; TestMain removes it.
func stateloopBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the stateloop binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	binaryOnce.Do(func() {
		var dir string
		if dir, binaryErr = os.MkdirTemp("", "stateloop-bin-"); binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(dir, "stateloop")
		if out, err := exec.Command(goTool, "build", "-o", binaryPath, ".").CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// deadLetterPlan dead-letters n messages of the opstest application, half
// from the loop topic and half from its ingress topic, spread over ids
// ids; seq numbers are 1 to n.
func deadLetterPlan(t *testing.T, client sarama.Client, app string, n, ids int) {
	t.Helper()
	sp, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var msgs []*sarama.ProducerMessage
	for seq := 1; seq <= n; seq++ {
		id := fmt.Sprintf("id-%d", seq%ids)
		m := opstest.IncMsg{Seq: seq}
		if seq%2 == 0 {
			env := wire.Envelope{Target: opstest.Address(id), Argument: opstest.Message(m)}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: app + "-loop", Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(wire.AppendEnvelope(nil, env))})
		} else {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: app + "-in", Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(opstest.Encode(m))})
		}
	}
	if err := sp.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// countEmitted returns how many messages of each seq were counted.
func countEmitted(t *testing.T, client sarama.Client, app string) map[int]int {
	t.Helper()
	got := map[int]int{}
	for _, es := range opstest.ReadEmitted(t, client, app) {
		for _, e := range es {
			got[e.Seq]++
		}
	}
	return got
}

// waitEmittedSeqs waits until at least n distinct messages were counted.
func waitEmittedSeqs(t *testing.T, client sarama.Client, app string, n int, timeout time.Duration) map[int]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := countEmitted(t, client, app)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages counted after %v, want %d", len(got), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOnce checks that messages 1 to n were counted once each, and that
// every dead letter has one replay marker.
func checkOnce(t *testing.T, client sarama.Client, app string, n int) {
	t.Helper()
	waitEmittedSeqs(t, client, app, n, 2*time.Minute)
	time.Sleep(500 * time.Millisecond) // a duplicate would come by now
	got := countEmitted(t, client, app)
	var wrong []string
	for seq := 1; seq <= n; seq++ {
		if got[seq] != 1 {
			wrong = append(wrong, fmt.Sprintf("%d counted %d times", seq, got[seq]))
		}
	}
	if len(got) != n || len(wrong) > 0 {
		t.Errorf("%d messages counted, want %d once each; %d wrong, e.g. %v", len(got), n, len(wrong), wrong[:min(len(wrong), 10)])
	}
	markers, dls := map[string]int{}, 0
	for _, r := range kafkatest.Records(t, client, app+"-dlq") {
		if of, ok := r.Headers[wire.HeaderReplayOf]; ok {
			markers[of]++
		} else {
			dls++
		}
	}
	twice := 0
	for _, c := range markers {
		if c != 1 {
			twice++
		}
	}
	if dls != n || len(markers) != n || twice > 0 {
		t.Errorf("%d dead letters, %d of them with replay markers, %d with more than one; want %d, each with one", dls, len(markers), twice, n)
	}
}

// killAfter is how many replays a test waits to see counted before it
// kills a process: some delivered, most of the first chunk (500) of
// replays not yet.
const killAfter = 50

// slowDelay slows the application down after the replay command was
// killed, so that the replays it wrote and the application has not
// delivered yet are still waiting when the second command writes them
// again: the second ones must then be answered as duplicates.
const slowDelay = 300 * time.Millisecond

// TestReplayExactlyOnceAcrossKill9OfTheReplayCommand dead-letters 3,000
// messages, starts `stateloop dlq replay --all` and kills it with SIGKILL
// while the application delivers the first chunk of replays it wrote
// (after the first, before the last), then runs the replay again while
// the rest of that chunk is still waiting to be delivered: the second run
// skips those replayed before, writes the others again (the waiting ones
// are duplicates, answered as such), and each dead letter is delivered
// once.
func TestReplayExactlyOnceAcrossKill9OfTheReplayCommand(t *testing.T) {
	bin := stateloopBinary(t)
	checkReplayAcrossKill9OfTheReplayCommand(t, bin, kafkatest.StartKfake(t), "killcli", true)
}

// checkReplayAcrossKill9OfTheReplayCommand is
// TestReplayExactlyOnceAcrossKill9OfTheReplayCommand on brokers, for
// application app (a new one), with the stateloop binary bin.
//
// midChunk requires that the kill landed while replays of the first chunk
// were still waiting (the second run then answers some as duplicates); on
// Apache Kafka the first chunk was delivered whole before the kill in 1 of
// 3 CI runs, so there only exactly-once is required and the rest logged.
func checkReplayAcrossKill9OfTheReplayCommand(t *testing.T, bin string, brokers []string, app string, midChunk bool) {
	const n = 3000
	a := opsapp.Start(t, brokers, app)
	a.Broken.Store(true)
	deadLetterPlan(t, a.Client, app, n, 97)
	a.WaitDeadLetters(t, n)
	a.Broken.Store(false)
	a.Delay.Store(int64(firstChunkDelay))

	replay := func() *exec.Cmd {
		return exec.Command(bin, "dlq", "replay", "--app", app, "--all", "--brokers", strings.Join(brokers, ","), "--timeout", "60s")
	}
	first := startChild(t, replay())
	got := waitEmittedSeqs(t, a.Client, app, killAfter, 2*time.Minute)
	first.kill(t)
	a.Delay.Store(int64(slowDelay))
	killedAt := len(countEmitted(t, a.Client, app))
	t.Logf("the replay command was killed when %d of %d replays were counted (%d at the kill signal); it had printed %d lines",
		killedAt, n, len(got), strings.Count(first.out.String(), "\n"))
	if killedAt >= n {
		t.Fatalf("the replay was done before the kill (%d of %d counted): the test did not kill it mid-way", killedAt, n)
	}

	second := startChild(t, replay())
	// once the second run has its first answers (its first chunk, with
	// the duplicates), the application may go fast again
	first1 := regexp.MustCompile(`(?m)^\d+/\d+ `)
	deadline := time.Now().Add(2 * time.Minute)
	for !first1.MatchString(second.out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the second replay printed no outcome in 2 minutes:\n%s", lastLines(second.out.String(), 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Delay.Store(int64(invokeDelay))
	select {
	case <-second.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the second replay did not end in 3 minutes:\n%s", lastLines(second.out.String(), 5))
	}
	if err := second.cmd.Wait(); err != nil {
		t.Fatalf("the second replay: %v\n%s", err, lastLines(second.out.String(), 5))
	}
	summary := lastLines(second.out.String(), 1)
	t.Logf("the second replay: %s", summary)
	m := regexp.MustCompile(`(\d+) duplicate`).FindStringSubmatch(summary)
	if !midChunk && m == nil {
		t.Logf("the kill landed after the first chunk was delivered: no duplicates to answer; exactly-once is checked below")
	} else if !strings.Contains(summary, "skipped") || !strings.Contains(summary, "replayed") || m == nil {
		t.Errorf("the second replay's summary %q: want some skipped (delivered from the first run), some duplicates (written by the first run, waiting), and the rest replayed now", summary)
	}
	checkOnce(t, a.Client, app, n)
}

// TestReplayExactlyOnceAcrossKill9OfTheRuntime dead-letters 3,000
// messages of the application running in a child process, starts a
// replay of all of them, and kills the application with SIGKILL while it
// delivers them; it starts it again, runs the replay again, and checks
// that each dead letter was delivered once.
func TestReplayExactlyOnceAcrossKill9OfTheRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the application in a child process and kills it")
	}
	checkReplayAcrossKill9OfTheRuntime(t, kafkatest.StartKfake(t), "killrt")
}

// checkReplayAcrossKill9OfTheRuntime is
// TestReplayExactlyOnceAcrossKill9OfTheRuntime on brokers, for application
// app (a new one).
func checkReplayAcrossKill9OfTheRuntime(t *testing.T, brokers []string, appName string) {
	const n = 3000
	b := strings.Join(brokers, ",")
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	app := startOpsAppProcess(t, b, appName, dir)
	client := kafkatest.Client(t, brokers)
	deadLetterPlan(t, client, appName, n, 97)
	waitDeadLetterRecords(t, client, appName, n)
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}

	// the first replay, in this process: it keeps waiting while the
	// application is down
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		done <- cli(ctx, nil, "dlq", "replay", "--app", appName, "--all", "--brokers", b, "--timeout", "20s")
	}()
	waitEmittedSeqs(t, client, appName, killAfter, 2*time.Minute)
	app.kill(t)
	killedAt := len(countEmitted(t, client, appName))
	t.Logf("the application was killed when %d of %d replays were counted", killedAt, n)
	if killedAt >= n {
		t.Fatalf("the replay was done before the kill (%d of %d counted): the test did not kill the application mid-way", killedAt, n)
	}
	startOpsAppProcess(t, b, appName, dir)
	r := <-done
	t.Logf("the first replay ended with %v: %s", r.err, lastLines(r.out, 1))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	second := cli(ctx, nil, "dlq", "replay", "--app", appName, "--all", "--brokers", b, "--timeout", "60s")
	if second.err != nil {
		t.Fatalf("the second replay: %v\n%s", second.err, lastLines(second.out, 5))
	}
	t.Logf("the second replay: %s", lastLines(second.out, 1))
	checkOnce(t, client, appName, n)
}

// waitDeadLetterRecords waits for n dead letters (not replay markers).
func waitDeadLetterRecords(t *testing.T, client sarama.Client, app string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := 0
		for _, r := range kafkatest.Records(t, client, app+"-dlq") {
			if _, marker := r.Headers[wire.HeaderReplayOf]; !marker {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters after 2 minutes, want %d", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

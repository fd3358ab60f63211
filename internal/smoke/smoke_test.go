package smoke

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stateloop/stateloop/internal/kafkatest"
)

// The runs of this file start worker processes: this test binary,
// re-executed with testWorkerEnv set, serves one worker.

const (
	testWorkerEnv = "STATELOOP_SMOKE_TEST_WORKER"
	// testDuplicateEnv breaks the worker's function on purpose: every n-th
	// increment counts twice.
	testDuplicateEnv = "STATELOOP_SMOKE_TEST_DUPLICATE_EVERY"
	// testDuplicateDelayedEnv breaks it another way: every n-th delayed
	// message that leads to an increment is delivered twice, the second
	// time late.
	testDuplicateDelayedEnv = "STATELOOP_SMOKE_TEST_DUPLICATE_DELAYED_EVERY"
)

func TestMain(m *testing.M) {
	if os.Getenv(testWorkerEnv) != "" {
		os.Exit(testWorker())
	}
	// Under -race every process sleeps a second before it exits; spare the
	// worker processes (GORACE is read at start-up).
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// testWorker is the main function of a worker process: the worker's
// arguments follow "--".
func testWorker() int {
	args := os.Args[1:]
	if i := slices.Index(args, "--"); i >= 0 {
		args = args[i+1:]
	}
	var f faults
	f.duplicateEvery, _ = strconv.ParseInt(os.Getenv(testDuplicateEnv), 10, 64)
	f.duplicateDelayedEvery, _ = strconv.ParseInt(os.Getenv(testDuplicateDelayedEnv), 10, 64)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return serveWorker(ctx, args, os.Stdin, os.Stdout, os.Stderr, func(c *WorkerConfig) { c.faults = f })
}

// testStart starts workers as this test binary, with env added to the
// environment.
func testStart(env ...string) StartFunc {
	return func(cfg WorkerConfig) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, cfg.Args()...)...)
		cmd.Env = append(append(os.Environ(), testWorkerEnv+"=1"), env...)
		return cmd, nil
	}
}

// testLog is an io.Writer that writes each line to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testConfig is a short run on brokers, or on an in-process broker
// started for the test if there are none.
func testConfig(t *testing.T, brokers ...string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = brokers
	if len(brokers) == 0 {
		cfg.Brokers = kafkatest.StartKfake(t)
	}
	cfg.Partitions = 4
	cfg.Messages = 3000
	cfg.Rate = 1000
	cfg.Generator.IDs = 32
	cfg.Workers = 2
	cfg.Kills = 2
	cfg.Seed = 42
	cfg.Timeout = 80 * time.Second
	cfg.VerifyInterval = 500 * time.Millisecond
	cfg.SessionTimeout = time.Second
	cfg.CommitInterval = 50 * time.Millisecond
	cfg.MaxDelay = time.Second
	cfg.DataDir = t.TempDir()
	cfg.StartWorker = testStart()
	cfg.Progress = testLog{t}
	cfg.WorkerLog = testLog{t}
	// STATELOOP_SMOKE_TEST_LOG=debug (or info) shows the workers' logs in
	// the test log, to see partition moves and recoveries
	if l := os.Getenv("STATELOOP_SMOKE_TEST_LOG"); l != "" {
		_ = cfg.WorkerLogLevel.UnmarshalText([]byte(l))
	}
	return cfg
}

func runSmoke(t *testing.T, cfg Config) (Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	t.Logf("summary:\n%s", out.String())
	return res, out.String(), err
}

// TestRunPassesAcrossKills is the short smoke run: 3,000 commands over 32
// ids, delayed messages and cancellations among them, 2 workers, a random
// one killed with SIGKILL twice at random moments; every id must report
// exactly its count, and again after the wait for delayed messages.
func TestRunPassesAcrossKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes for a smoke run")
	}
	t.Parallel()
	cfg := testConfig(t)
	res, out, err := runSmoke(t, cfg)
	if err != nil {
		t.Fatalf("smoke run failed: %v", err)
	}
	if !res.Passed || res.Verified != 32 || res.Acked != 3000 || res.Produced != 3000 {
		t.Errorf("got %+v, want passed with 32 ids verified and 3000 commands acknowledged", res)
	}
	if len(res.Kills) != 2 {
		t.Errorf("got %d kills, want 2", len(res.Kills))
	}
	if res.Increments < 3000 {
		t.Errorf("got %d increments expected, want at least one per command", res.Increments)
	}
	if !res.Delayed || res.Longest.Delayed == 0 || res.Settle == 0 || res.Confirmed != 32 {
		t.Errorf("got delayed %v, longest chain %+v, settle %v, %d confirmed; want delayed messages on the way to increments, a wait and 32 confirmed",
			res.Delayed, res.Longest, res.Settle, res.Confirmed)
	}
	for _, want := range []string{"stateloop-smoke: PASS", "seed 42", "2 killed with SIGKILL", "32 of 32 ids", "delayed messages: up to 1s each",
		"then 32 of 32 confirmed it"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

// TestRunKillAnytimeOnEmbeddedBroker is issue 10's smoke run that never
// converged on the embedded broker: workers killed at any moment, also
// while they join the group, left members in the group that never expired
// (kfake) and partitions that nobody consumed. It must pass as on Kafka.
func TestRunKillAnytimeOnEmbeddedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes for a smoke run")
	}
	t.Parallel()
	cfg := testConfig(t)
	cfg.Brokers, cfg.InProcess = nil, true // the embedded broker, with its fixes of kfake
	cfg.Workers, cfg.Kills, cfg.Seed = 3, 16, 0
	cfg.MaxDelay = 300 * time.Millisecond
	// each kill costs the group about a session timeout (1s); a stalled
	// group costs half a minute (a request timeout) or never recovers
	cfg.Timeout = 30 * time.Second
	runKillAnytime(t, cfg)
}

// runKillAnytime runs cfg with KillAnytime; it must pass with every kill
// done and every id verified.
func runKillAnytime(t *testing.T, cfg Config) {
	t.Helper()
	cfg.KillAnytime = true
	res, _, err := runSmoke(t, cfg)
	if err != nil {
		t.Fatalf("smoke run failed: %v", err)
	}
	if len(res.Kills) != cfg.Kills || res.Verified != cfg.Generator.IDs {
		t.Errorf("got %d kills and %d ids verified, want %d and %d", len(res.Kills), res.Verified, cfg.Kills, cfg.Generator.IDs)
	}
}

// TestRunCatchesDuplicates: a worker whose function counts every 40th
// increment twice must make the run fail with the over-count.
func TestRunCatchesDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes for a smoke run")
	}
	t.Parallel()
	cfg := testConfig(t)
	cfg.Messages, cfg.Rate, cfg.Kills = 500, 0, 0
	cfg.StartWorker = testStart(testDuplicateEnv + "=40")
	res, out, err := runSmoke(t, cfg)
	var dup *DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("got error %v, want a *DuplicateError", err)
	}
	if dup.Actual <= dup.Expected {
		t.Errorf("duplicate error %+v: actual not above expected", dup)
	}
	if res.Passed {
		t.Errorf("result says passed")
	}
	want := "smoke: duplicate: id " + strconv.Itoa(int(dup.ID)) + " reported count " + strconv.FormatInt(dup.Actual, 10)
	if !strings.Contains(err.Error(), want) || !strings.Contains(out, "stateloop-smoke: FAIL") {
		t.Errorf("error %q / summary:\n%s\nwant %q and FAIL", err, out, want)
	}
}

// TestRunCatchesDuplicatedDelayedMessages: a worker whose function sends
// every 5th delayed message that leads to an increment twice, the copy
// with the longest delay (a delayed message delivered twice, late), must
// make the run fail with the over-count.
func TestRunCatchesDuplicatedDelayedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes for a smoke run")
	}
	t.Parallel()
	cfg := testConfig(t)
	cfg.Messages, cfg.Rate, cfg.Kills = 500, 0, 0
	cfg.StartWorker = testStart(testDuplicateDelayedEnv + "=5")
	res, out, err := runSmoke(t, cfg)
	var dup *DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("got error %v, want a *DuplicateError", err)
	}
	if dup.Actual <= dup.Expected || res.Passed || !strings.Contains(out, "stateloop-smoke: FAIL") {
		t.Errorf("duplicate error %+v, passed %v, summary:\n%s\nwant actual above expected and FAIL", dup, res.Passed, out)
	}
}

// TestRunCatchesLosses: the driver counts a command that it never
// produces; the ids it increments never converge, and the run fails naming
// them.
func TestRunCatchesLosses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes for a smoke run")
	}
	t.Parallel()
	cfg := testConfig(t)
	cfg.Messages, cfg.Rate, cfg.Kills = 500, 0, 0
	cfg.Timeout = 15 * time.Second
	cfg.App = "smoke-loss" // a new broker for each test
	// the command skipped and the ids it increments
	gen, err := NewGenerator(cfg.Generator, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	skip, lost := -1, map[int32]bool{}
	for seq := 0; skip < 0; seq++ {
		sc := gen.Next()
		if seq >= 100 {
			Increments(sc, func(id int32) { lost[id] = true })
			if len(lost) > 0 {
				skip = seq
			}
		}
	}
	cfg.skipProduce = func(seq int) bool { return seq == skip }
	_, _, err = runSmoke(t, cfg)
	var loss *LossError
	if !errors.As(err, &loss) {
		t.Fatalf("got error %v, want a *LossError", err)
	}
	got := map[int32]bool{}
	for _, m := range loss.Missing {
		got[m.ID] = true
		if m.Reported && m.Actual >= m.Expected {
			t.Errorf("missing %v: not below its expected count", m)
		}
	}
	for id := range lost {
		if !got[id] {
			t.Errorf("id %d lost a command but is not reported: %v", id, err)
		}
		if !strings.Contains(err.Error(), "id "+strconv.Itoa(int(id))+": ") {
			t.Errorf("error %q does not name id %d", err, id)
		}
	}
	if len(got) != len(lost) {
		t.Errorf("got %d ids reported missing, want %d: %v", len(got), len(lost), err)
	}
	// the diagnosis tells a loss from a stuck group: every loop partition
	// was consumed
	if len(loss.Partitions) != 8 {
		t.Errorf("got %d partitions in the diagnosis, want 4 of the loop and 4 of the commands topic", len(loss.Partitions))
	}
	for _, p := range loss.Partitions {
		if p.Topic == "smoke-loss-loop" && p.Pending != 0 {
			t.Errorf("%v: want every record consumed", p)
		}
	}
}

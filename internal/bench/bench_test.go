package bench

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestNum(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 43210: "43,210", 100000: "100,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(d, 50); got != 50*time.Millisecond {
		t.Errorf("p50 = %v, want 50ms", got)
	}
	if got := percentile(d, 99); got != 99*time.Millisecond {
		t.Errorf("p99 = %v, want 99ms", got)
	}
	if got := percentile(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %v, want 1ms", got)
	}
}

func testReader(counted bool) *reader {
	r := &reader{topic: "out", counted: counted, ids: map[string]*idState{}}
	for i := range r.phases {
		r.phases[i].done = make(chan struct{})
	}
	return r
}

func output(phase byte, seq int, key string, count int64) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{Topic: "out", Key: []byte(key), Value: outputValue(inputValue(phase, uint64(seq), time.Now().UnixNano()), count)}
}

func TestVerifyExact(t *testing.T) {
	r := testReader(true)
	for ph := range numPhases {
		r.expect(ph, 4)
	}
	counts := map[string]int64{}
	for ph := range numPhases {
		for seq := range 4 {
			key := idKey(seq, 3)
			counts[key]++
			r.handle(output(byte(ph), seq, key, counts[key]), time.Now())
		}
	}
	select {
	case <-r.phases[phasePaced].done:
	default:
		t.Error("paced phase not done")
	}
	checks, err := r.verify("runtime", 12)
	if err != nil {
		t.Fatal(err)
	}
	if want := "final counts of 3 ids add up to 12"; !strings.Contains(strings.Join(checks, "\n"), want) {
		t.Errorf("checks %q lack %q", checks, want)
	}
}

func TestVerifyFindsDuplicatesAndLosses(t *testing.T) {
	r := testReader(true)
	r.expect(phaseWarmup, 0)
	r.expect(phaseLoad, 3)
	r.expect(phasePaced, 0)
	r.handle(output(phaseLoad, 0, "a", 1), time.Now())
	r.handle(output(phaseLoad, 0, "a", 2), time.Now()) // a duplicate, counted twice
	r.handle(output(phaseLoad, 1, "b", 1), time.Now()) // seq 2 is lost
	r.handle(output(phaseLoad, 7, "c", 1), time.Now()) // never written
	_, err := r.verify("runtime", 3)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"1 missing", "1 duplicate output records", "1 output records for records that were never written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestVerifyFindsWrongCounts(t *testing.T) {
	r := testReader(true)
	r.expect(phaseWarmup, 0)
	r.expect(phaseLoad, 2)
	r.expect(phasePaced, 0)
	r.handle(output(phaseLoad, 0, "a", 1), time.Now())
	r.handle(output(phaseLoad, 1, "a", 1), time.Now()) // the count did not advance
	_, err := r.verify("runtime", 2)
	if err == nil || !strings.Contains(err.Error(), "not 1, 2, ... n") {
		t.Fatalf("got %v, want an error about the counts", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Sides: []string{SideRuntime, SideRemote, SideChain, SideRaw}, Threads: []int{1, 2}, CPUProfile: "x", ProfileSide: SideChain}).Validate(); err != nil {
		t.Errorf("four sides, two thread counts, profile of chain: %v", err)
	}
	bad := Config{Messages: -1, Sides: []string{"runtime", "nope", "remote", "remote"}, CPUProfile: "x", ProfileSide: "raw",
		Threads: []int{2, 0, 2, 257}, ChainLength: 1, Work: -time.Second, Rounds: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"messages -1", `side "nope"`, `side "remote" named twice`, `profile side "raw"`,
		"threads 0: want 1 to 256", "threads 257: want 1 to 256", "threads 2 named twice", "chain length 1: want 2 to 64", "work -1s: must not be negative",
		"rounds -1: want 1 to 100"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestTimersRunOneThread(t *testing.T) {
	err := Config{Timers: true, Threads: []int{1, 2}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "the delayed-messages bench runs one thread") {
		t.Errorf("got %v, want an error about the threads of the delayed-messages bench", err)
	}
}

func TestRunsOfTheSides(t *testing.T) {
	type run = sideRun
	for _, tc := range []struct {
		cfg  Config
		want []sideRun
	}{
		{DefaultConfig(), []run{{SideRuntime, "runtime", 1}, {SideRaw, "raw", 0}}},
		{Config{Sides: []string{SideRuntime, SideRemote, SideChain, SideRaw}, Threads: []int{2, 1}}, []run{
			{SideRuntime, "runtime (2 threads)", 2}, {SideRuntime, "runtime (1 thread)", 1},
			{SideRemote, "remote", 2}, {SideChain, "chain", 2}, {SideRaw, "raw", 0},
		}},
	} {
		if got := tc.cfg.withDefaults().runs(); !slices.Equal(got, tc.want) {
			t.Errorf("runs of %v with threads %v:\n got %v\nwant %v", tc.cfg.Sides, tc.cfg.Threads, got, tc.want)
		}
	}
}

// TestThreadsAndChain runs the runtime side with 1 and with 2 stream
// threads and the chain side on a small bench: every side must give
// exactly one output record per input record and exact counts (Run fails
// otherwise), the thread counts must be compared, and the chain's
// messages between functions must all be delivered in their sender's
// transaction, none through the loop topic.
func TestThreadsAndChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and three processors for a few seconds each")
	}
	cfg := DefaultConfig()
	cfg.InProcess = true
	cfg.Sides = []string{SideRuntime, SideChain}
	cfg.Threads = []int{1, 2}
	cfg.Messages, cfg.IDs, cfg.Warmup = 2000, 50, 100
	cfg.Rate, cfg.PacedDuration = 1000, time.Second
	cfg.Progress = 500 * time.Millisecond
	var out strings.Builder
	res, err := Run(t.Context(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	if len(res.RuntimeThreads) != 2 || res.RuntimeThreads[0].Threads != 1 || res.RuntimeThreads[1].Threads != 2 || res.Runtime != res.RuntimeThreads[0] {
		t.Fatalf("runtime results %+v: want one with 1 thread (also Runtime), then one with 2", res.RuntimeThreads)
	}
	want := res.RuntimeThreads[1].Throughput.PerSecond / res.RuntimeThreads[0].Throughput.PerSecond
	if res.ThreadsRatio != want {
		t.Errorf("threads ratio %v, want 2 threads / 1 thread = %v", res.ThreadsRatio, want)
	}
	c := res.Chain
	if c == nil {
		t.Fatalf("no chain result\noutput:\n%s", out.String())
	}
	const inputs = 100 + 2000 + 1000
	if c.Outputs != inputs {
		t.Errorf("chain: %d outputs, want %d", c.Outputs, inputs)
	}
	for _, p := range []struct {
		name string
		ph   Phase
	}{{"throughput", c.Throughput}, {"latency", c.Paced}} {
		// 4 functions: 3 messages between them per input record
		if got := p.ph.LocalPerMessage(); got != 3 {
			t.Errorf("chain %s phase: %v local deliveries per message, want 3", p.name, got)
		}
		for _, o := range p.ph.Offsets {
			if o.Role == "loop" && o.Delta != 0 {
				t.Errorf("chain %s phase: %d records written to the loop topic, want none", p.name, o.Delta)
			}
		}
	}
	for _, want := range []string{
		"chain (4 functions): 3,100 output records for 3,100 input records, one for each",
		"chain (4 functions): final counts of 50 ids add up to 3,100, each id counted 1, 2, ... n",
		"runtime (2 threads): final counts of 50 ids add up to 3,100",
		"ratio runtime 2 threads / 1 thread messages/s: ",
		"chain latency p50: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}

// smallRemoteConfig is a bench of the remote side only that takes a few
// seconds: 100 warm-up, 2,000 pre-loaded and 1,000 paced records.
func smallRemoteConfig() Config {
	cfg := DefaultConfig()
	cfg.InProcess = true // the test binary cannot be the broker's child
	cfg.Sides = []string{SideRemote}
	cfg.Messages, cfg.IDs, cfg.Warmup = 2000, 50, 100
	cfg.Rate, cfg.PacedDuration = 1000, time.Second
	cfg.Progress = 500 * time.Millisecond
	return cfg
}

// TestRemoteSide runs the remote side on a small bench: the SDK function
// served over HTTP must give exactly one output record per input record
// and exact counts (Run fails otherwise), and the function server must
// have seen the calls.
func TestRemoteSide(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker, a processor and an HTTP function server for a few seconds")
	}
	var out strings.Builder
	res, err := Run(t.Context(), smallRemoteConfig(), &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	r := res.Remote
	if r == nil {
		t.Fatalf("no remote result\noutput:\n%s", out.String())
	}
	const inputs = 100 + 2000 + 1000
	if r.Inputs != inputs || r.Outputs != inputs {
		t.Errorf("got %d inputs and %d outputs, want %d of each", r.Inputs, r.Outputs, inputs)
	}
	checks := strings.Join(r.Checks, "\n")
	for _, want := range []string{
		"3,100 output records for 3,100 input records, one for each",
		"final counts of 50 ids add up to 3,100, each id counted 1, 2, ... n",
	} {
		if !strings.Contains(checks, want) {
			t.Errorf("checks %q lack %q", r.Checks, want)
		}
	}
	for _, p := range []struct {
		name string
		ph   Phase
	}{{"throughput", r.Throughput}, {"latency", r.Paced}} {
		h := p.ph.HTTP
		if h == nil {
			t.Errorf("%s phase: no HTTP figures", p.name)
			continue
		}
		// every message is one call; a call is made again only if a
		// transaction was replayed, which nothing provokes here
		if h.Calls < int64(p.ph.Messages) {
			t.Errorf("%s phase: the function was called %d times for %d messages", p.name, h.Calls, p.ph.Messages)
		}
		if h.Requests < 1 || h.Requests > h.Calls {
			t.Errorf("%s phase: %d HTTP requests for %d calls, want 1 to %d", p.name, h.Requests, h.Calls, h.Calls)
		}
	}
	if h := r.HTTP; h == nil || h.Connections < 1 || h.Calls < inputs {
		t.Errorf("function server totals %+v: want a connection and at least %d calls", h, inputs)
	}
	for _, want := range []string{"remote (HTTP)", "HTTP requests/message", "its CPU time is in the remote side's CPU/message"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}

// TestRemoteSideChecksCounts makes the remote function count wrong (it
// skips 3): the bench must see it and fail, so TestRemoteSide's pass
// means the remote side's counts were checked.
func TestRemoteSideChecksCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker, a processor and an HTTP function server for a few seconds")
	}
	cfg := smallRemoteConfig()
	cfg.remoteFault = func(n int64) int64 {
		if n == 3 { // stored, so the next count is 5
			return 4
		}
		return n
	}
	var out strings.Builder
	_, err := Run(t.Context(), cfg, &out)
	if err == nil {
		t.Fatalf("Run: no error for a function that counts 1, 2, 4, 5, ...\noutput:\n%s", out.String())
	}
	for _, want := range []string{"bench: remote: 50 ids have counts that are not 1, 2, ... n", "the final counts of the 50 ids add up to 3150, want 3100"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestCalibrateWork checks that the rounds calibrated for a CPU time take
// about that much CPU time (a wide margin: it is one measurement on a
// shared machine).
func TestCalibrateWork(t *testing.T) {
	if calibrateWork(0) != 0 {
		t.Error("work 0: want no rounds")
	}
	const d = 5 * time.Millisecond
	rounds := calibrateWork(d)
	c0 := processCPU()
	for range 10 {
		burn(rounds)
	}
	took := (processCPU() - c0) / 10
	if took < d/4 || took > 4*d {
		t.Errorf("%d rounds calibrated for %v took %v of CPU time", rounds, d, took)
	}
}

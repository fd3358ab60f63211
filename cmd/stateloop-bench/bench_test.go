package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBench runs a tiny bench and checks that it prints every figure and
// that every side wrote exactly one output record per input record, the
// runtime and the chain with exact counts: the bench fails otherwise, so
// this is also an exactly-once test of the runtime under load. The
// runtime side runs with 1 and with 2 stream threads.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and four pipelines for a few seconds")
	}
	out := runBench(t, "--in-process", "-n", "2000", "--ids", "50", "--warmup", "100",
		"--rate", "1000", "--duration", "1s", "--progress", "200ms", "--threads", "1,2", "--chain")
	// 100 warm-up + 2,000 pre-loaded + 1,000 paced records
	checkContains(t, out,
		"runtime (1 thread): 2,000/2,000 messages",
		"runtime (2 threads): 2,000/2,000 messages",
		"chain: 2,000/2,000 messages",
		"raw: 2,000/2,000 messages",
		"commit interval: 100ms",
		"stream threads of the runtime: 1, 2 (the runtime side runs once with each; the remote and chain sides with 1)",
		"runtime (1 thread): 3,100 output records for 3,100 input records, one for each",
		"runtime (1 thread): final counts of 50 ids add up to 3,100, each id counted 1, 2, ... n",
		"runtime (2 threads): final counts of 50 ids add up to 3,100, each id counted 1, 2, ... n",
		"chain (4 functions): final counts of 50 ids add up to 3,100, each id counted 1, 2, ... n",
		"raw sarama: 3,100 output records for 3,100 input records, one for each",
	)
	checkMatches(t, out,
		`(?m)^  messages/s +[0-9,]+ +[0-9,]+ +[0-9,]+ +[0-9,]+$`,
		`(?m)^ratio runtime \(1 thread\)/raw messages/s: [0-9.]+ +target >= 0\.80: (PASS|MISS)$`,
		`(?m)^ratio runtime 2 threads / 1 thread messages/s: [0-9.]+ +target >= 1\.40: (PASS|MISS)$`,
		`(?m)^  latency p50 +[0-9.]+ms +[0-9.]+ms +[0-9.]+ms +[0-9.]+ms$`,
		`(?m)^runtime latency p99: [0-9.]+ms +target <= 300\.0ms \(3 x commit interval 100ms\): (PASS|MISS)$`,
		`(?m)^chain latency p50: [0-9.]+ms +target <= 150\.0ms \(1\.5 x commit interval 100ms\): (PASS|MISS)$`,
		`(?m)^  CPU/message, this process +[0-9.]+µs +[0-9.]+µs +[0-9.]+µs +[0-9.]+µs$`,
		`(?m)^  CPUs busy: this process / broker / others( +[0-9.]+ / - / [0-9.]+){4}$`,
		`(?m)^  log entries written/message +[0-9.]+ \(loop [0-9.]+ \+ changelog [0-9.]+ \+ inbox [0-9.]+ \+ egress [0-9.]+\) .* [0-9.]+ \(loop 0\.00 \+ changelogs [0-9.]+ \+ inbox [0-9.]+ \+ egress [0-9.]+\) +[0-9.]+$`,
		`(?m)^  local deliveries/message +0\.00 +0\.00 +3\.00 +-$`,
		`(?m)^  commit, mean / longest( +[0-9.]+ms / [0-9.]+ms){4}$`,
		`(?m)^  load average, side start -> end( +[0-9.]+ -> [0-9.]+){4}$`,
	)
}

// TestBenchRounds runs a tiny bench of three rounds and checks that each
// round has topics of its own (its exactly-once checks count only its own
// records) and that the summary judges the targets on the medians.
func TestBenchRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and two pipelines three times")
	}
	out := runBench(t, "--in-process", "-n", "500", "--ids", "20", "--warmup", "50",
		"--rate", "500", "--duration", "200ms", "--progress", "200ms", "--rounds", "3")
	// 50 warm-up + 500 pre-loaded + 100 paced records in each round
	if got := strings.Count(out, "runtime: 650 output records for 650 input records, one for each"); got != 3 {
		t.Errorf("%d rounds with the runtime's 650 records, want 3", got)
	}
	if got := strings.Count(out, "raw sarama: 650 output records for 650 input records, one for each"); got != 3 {
		t.Errorf("%d rounds with the raw loop's 650 records, want 3", got)
	}
	checkContains(t, out, "ROUND 1 of 3", "ROUND 3 of 3", "SUMMARY of 3 rounds (the sides ran in turn: runtime, raw sarama; then again)")
	checkMatches(t, out,
		`(?m)^ +round +runtime msg/s +raw sarama msg/s +runtime/raw +runtime p99 +others' CPUs busy +load start -> end$`,
		`(?m)^ +3 +[0-9,]+ +[0-9,]+ +[0-9.]+ +[0-9.]+ms +[0-9.]+ +[0-9.]+ -> [0-9.]+$`,
		`(?m)^ +median +[0-9,]+ +[0-9,]+ +[0-9.]+ +[0-9.]+ms +[0-9.]+ *$`,
		`(?m)^  ratio runtime/raw messages/s: [0-9.]+ +target >= 0\.80: (PASS|MISS)$`,
		`(?m)^  runtime latency p99: [0-9.]+ms +target <= 300\.0ms \(3 x commit interval\): (PASS|MISS)$`,
	)
}

// TestBenchRemote runs a tiny bench of the runtime and the remote side
// (the counter written with the StateFun Go SDK, over HTTP) and checks the
// remote figures and the exactly-once checks of both.
func TestBenchRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker, two pipelines and an HTTP function server for a few seconds")
	}
	out := runBench(t, "--remote", "--side", "runtime", "--in-process", "-n", "2000", "--ids", "50", "--warmup", "100",
		"--rate", "1000", "--duration", "1s", "--progress", "200ms")
	checkContains(t, out,
		"runtime: 2,000/2,000 messages",
		"remote: 2,000/2,000 messages",
		"remote (HTTP): 3,100 output records for 3,100 input records, one for each",
		"remote (HTTP): final counts of 50 ids add up to 3,100, each id counted 1, 2, ... n",
		"runtime: final counts of 50 ids add up to 3,100, each id counted 1, 2, ... n",
		"its CPU time is in the remote side's CPU/message, this process",
	)
	if strings.Contains(out, "raw sarama") {
		t.Errorf("the raw side ran without being asked for")
	}
	checkMatches(t, out,
		`(?m)^  messages/s +[0-9,]+ +[0-9,]+$`,
		`(?m)^ratio remote/embedded messages/s: [0-9.]+ +target >= 0\.50: (PASS|MISS)$`,
		`(?m)^remote HTTP requests/message: [0-9]\.[0-9]{3} +target <= 0\.05: (PASS|MISS)$`,
		`(?m)^  latency p99 +[0-9.]+ms +[0-9.]+ms$`,
		`(?m)^remote latency p99: [0-9.]+ms +runtime's target <= 300\.0ms: (PASS|MISS)$`,
		`(?m)^  HTTP requests/message +- +[0-9]\.[0-9]{3}$`,
		`(?m)^  calls/HTTP request \(batch\) +- +[0-9]+\.[0-9]$`,
		`(?m)^Function server, all phases of the remote side: [0-9,]+ HTTP requests on [0-9,]+ connections \(kept alive\) for [0-9,]+ calls of 3,100 input records$`,
	)
}

// TestBenchTimers runs a tiny delayed-messages bench: every delayed and
// plain message must arrive exactly once and none before its due time (the
// bench fails otherwise), and every figure must be printed.
func TestBenchTimers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and a processor for several seconds")
	}
	out := runBench(t, "--timers", "--in-process", "--ids", "50", "--warmup", "100",
		"--timers-stored", "2000", "--timers-burst", "1000", "--timers-rate", "500", "--timers-duration", "1s",
		"--timers-max-delay", "500ms", "--progress", "200ms")
	// 200 warm-up (100 delayed), 1,000 burst, 1,000 + 1,000 plain, 500 paced
	checkContains(t, out,
		"timers burst: 1,000/1,000 messages",
		"3,700 output records for 3,700 messages sent, one for each",
		"1,600 delayed messages delivered, none before its due time",
		"the timers topic holds 2,000 committed records for the 2,000 stored timers, one each, no tombstone",
	)
	checkMatches(t, out,
		`(?m)^  timers +2,000 +1,000$`,
		`(?m)^  timers per GiB of heap: all, 2nd half +\S.* +\S.*$`,
		// a store can shrink between readings when leveldb compacts
		`(?m)^  local store on disk per timer +-?[0-9]+ B +-?[0-9]+ B$`,
		// a fire transaction that aborts is fired again: at least 1,000
		`(?m)^burst: first egress record [0-9.]+ms after the due time; .*; [0-9,]+ timers fired$`,
		`(?m)^  messages/s +[0-9,]+ +[0-9,]+ +[0-9,]+$`,
		`(?m)^ratio fired/plain \(ingress\) messages/s: [0-9.]+; fired/plain \(ctx.Send\): [0-9.]+$`,
		`(?m)^  egress record read \(read_committed\), all +500 +[0-9.]+ms +[0-9.]+ms +[0-9.]+ms$`,
		`(?m)^  sink invoked, all +500 +[0-9.]+ms +[0-9.]+ms +[0-9.]+ms$`,
		`(?m)^sink invoked p99, delay >= 200ms: [0-9.]+ms .*: (PASS|MISS)$`,
	)
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"--side", "both-ways"},
		{"--commit-interval", "-1s"},
		{"--brokers", "nohostport"},
		{"--cpuprofile", "x.out", "--side", "raw"},
		{"--cpuprofile", "x.out", "--profile-side", "remote"},
		{"--side", "remote", "--profile-side", "nope", "--cpuprofile", "x.out"},
		{"--timers", "--side", "raw"},
		{"--timers", "--remote"},
		{"--timers", "--timers-burst", "0"},
		{"--timers", "--timers-max-delay", "0s"},
		{"--timers", "--cpuprofile", "x.out", "--profile-side", "raw"},
		{"--memprofile", "x.out"},
		{"--side", "runtime,nope"},
		{"--threads", "0"},
		{"--threads", "1,1"},
		{"--chain-length", "1"},
		{"--timers", "--threads", "2"},
		{"--timers", "--chain"},
		{"--work", "-1us"},
		{"--timers", "--work", "1us"},
		{"--rounds", "0"},
		{"--timers", "--rounds", "3"},
		{"--recovery", "--side", "raw"},
		{"--recovery", "--timers"},
		{"--recovery", "--rounds", "3"},
		{"--recovery", "--recovery-addresses", "0"},
		{"--recovery", "--session-timeout", "500ms"},
		{"--recovery", "--recovery-steady", "1s"},
		{"--session-timeout", "6s"},
		{"--transaction-timeout", "6s"},
	} {
		r := cli(context.Background(), args...)
		if r.Err == nil {
			t.Errorf("stateloop-bench %s: no error", strings.Join(args, " "))
		} else if !strings.HasPrefix(r.Err.Error(), "stateloop-bench: ") {
			t.Errorf("stateloop-bench %s: error %q does not start with stateloop-bench:", strings.Join(args, " "), r.Err)
		}
	}
}

// runBench runs `stateloop-bench` with args and returns what it printed;
// a failed run fails the test.
func runBench(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := cli(ctx, args...)
	if r.Err != nil {
		t.Fatalf("stateloop-bench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Err, r.Out, r.ErrOut)
	}
	return r.Out
}

// checkContains fails the test for each of wants that out lacks.
func checkContains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// checkMatches fails the test for each pattern out does not match, and
// then shows the output.
func checkMatches(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, re := range patterns {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s", re)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{0.9, 0.5, 0.7}, 0.7},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

// round builds the result of one round of runtime (1 and 2 threads),
// remote, chain and raw with the given messages/s, as Run scores it.
func round(cfg Config, one, two, remote, chain, raw float64, requests int64, p50 time.Duration) Result {
	side := func(name, label string, threads int, perSecond float64) *SideResult {
		return &SideResult{Name: name, Label: label, Threads: threads, LoadBefore: 1, LoadAfter: 2,
			Throughput: Phase{Messages: 1000, Elapsed: time.Second, PerSecond: perSecond, CPU: time.Second, BrokerCPU: -1, MachineCPU: 2 * time.Second},
			Paced:      Phase{Messages: 1000, Elapsed: time.Second, P50: p50, P99: 2 * p50, CPU: time.Second, BrokerCPU: -1, MachineCPU: 2 * time.Second}}
	}
	r := Result{Config: cfg}
	r.Runtime = side(SideRuntime, "runtime (1 thread)", 1, one)
	r.RuntimeThreads = []*SideResult{r.Runtime, side(SideRuntime, "runtime (2 threads)", 2, two)}
	r.Remote = side(SideRemote, "remote", 1, remote)
	r.Remote.Throughput.HTTP = &HTTPFigures{Requests: requests}
	r.Chain = side(SideChain, "chain", 1, chain)
	r.Raw = side(SideRaw, "raw", 0, raw)
	r.Ratio, r.ThreadsRatio, r.RemoteRatio, r.RemoteRawRatio = one/raw, two/one, remote/one, remote/raw
	return r
}

// TestMediansOfRounds checks that the targets of a run of several rounds
// are judged on the medians of the rounds' own ratios, not on a ratio of
// medians or on one round.
func TestMediansOfRounds(t *testing.T) {
	cfg := Config{Sides: []string{SideRuntime, SideRemote, SideChain, SideRaw}, Threads: []int{1, 2}, Rounds: 3}.withDefaults()
	res := Result{Config: cfg, Broker: "test", Rounds: []Result{
		// runtime/raw 0.90 (the median; the ratio of the medians of messages/s would be 85/100),
		// 2 threads/1 1.67, remote/embedded 0.44, requests/message 0.004
		round(cfg, 90, 150, 40, 30, 100, 4, 120*time.Millisecond),
		// 1.00, 1.20, 0.60, 0.090
		round(cfg, 50, 60, 30, 30, 50, 90, 200*time.Millisecond),
		// 0.71, 1.53, 0.53, 0.020
		round(cfg, 85, 130, 45, 30, 120, 20, 140*time.Millisecond),
	}}
	res.medians()
	m := res.Medians
	near := func(name string, got, want float64) {
		t.Helper()
		if got < want-1e-9 || got > want+1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("runtime/raw", m.Ratio, 0.90)
	near("2 threads/1", m.ThreadsRatio, 130.0/85)
	near("remote/embedded", m.RemoteRatio, 45.0/85)
	near("remote requests/message", m.RemoteRequests, 0.02)
	near("others busy", m.OthersBusy, 1)
	if m.ChainP50 != 140*time.Millisecond || m.RuntimeP99 != 280*time.Millisecond {
		t.Errorf("chain p50 %v, runtime p99 %v, want 140ms, 280ms", m.ChainP50, m.RuntimeP99)
	}
	if want := []string{"runtime (1 thread)", "runtime (2 threads)", "remote (HTTP)", "chain (4 functions)", "raw sarama"}; strings.Join(m.Labels, "|") != strings.Join(want, "|") {
		t.Errorf("labels %q, want %q", m.Labels, want)
	}
	near("raw msg/s", m.PerSecond[4], 100)
	if !res.RatioOK || !res.ThreadsOK || !res.RemoteRatioOK || !res.RemoteRequestsOK || !res.ChainLatencyOK || !res.LatencyOK {
		t.Errorf("targets on the medians: ratio %v threads %v remote %v requests %v chain %v latency %v, want all met",
			res.RatioOK, res.ThreadsOK, res.RemoteRatioOK, res.RemoteRequestsOK, res.ChainLatencyOK, res.LatencyOK)
	}
	var out bytes.Buffer
	reportRounds(&out, res)
	for _, want := range []string{"SUMMARY of 3 rounds", "median", "ratio runtime (1 thread)/raw messages/s: 0.90   target >= 0.80: PASS",
		"chain latency p50: 140.0ms   target <= 150.0ms (1.5 x commit interval): PASS", "remote HTTP requests/message: 0.020"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}

	// one bad round more tips the medians
	res.Rounds = append(res.Rounds, round(cfg, 40, 40, 10, 30, 100, 500, time.Second), round(cfg, 45, 45, 10, 30, 100, 500, time.Second))
	res.medians()
	if res.RatioOK || res.ThreadsOK || res.RemoteRatioOK || res.RemoteRequestsOK || res.ChainLatencyOK {
		t.Errorf("targets met on the medians of mostly bad rounds: %+v", res.Medians)
	}
}

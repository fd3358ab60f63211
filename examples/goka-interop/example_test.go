package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/internal/kafkatest"
)

// TestGokaInterop runs the demo against an in-process broker and checks
// the three paths with exact values: the Goka emitter's messages reached
// the counter (the totals add up), the Goka processor read every egress
// record once and in order, and the Goka view read the final totals.
func TestGokaInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	brokers := kafkatest.StartKfake(t)
	out := &kafkatest.SyncBuffer{}

	res, err := run(ctx, Config{Brokers: brokers, CommitInterval: 20 * time.Millisecond}, out)
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out)
	}
	want := Result{
		Egress: map[string][]int64{"alice": {1, 3, 6}, "bob": {10, 20}, "carol": {5}},
		Totals: map[string]int64{"alice": 6, "bob": 20, "carol": 5},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	wantOut := `stateloop application goka-interop ready: function example/counter, state in goka-interop-example_.counter-table, messages on goka-interop-loop
goka emitter -> example/counter/alice: +1
goka emitter -> example/counter/bob: +10
goka emitter -> example/counter/alice: +2
goka emitter -> example/counter/carol: +5
goka emitter -> example/counter/bob: +10
goka emitter -> example/counter/alice: +3
goka processor goka-interop-reader <- goka-interop-totals: alice 1 3 6
goka processor goka-interop-reader <- goka-interop-totals: bob 10 20
goka processor goka-interop-reader <- goka-interop-totals: carol 5
goka view of goka-interop-example_.counter-table: alice 6, bob 20, carol 5
`
	if diff := cmp.Diff(wantOut, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	// a second run on the same broker: the state carries on, and the
	// reader group reads only the new egress records
	out2 := &kafkatest.SyncBuffer{}
	res, err = run(ctx, Config{Brokers: brokers, CommitInterval: 20 * time.Millisecond, Deposits: []Deposit{{"bob", 1}, {"dave", 4}}}, out2)
	if err != nil {
		t.Fatalf("second run: %v\noutput:\n%s", err, out2)
	}
	want = Result{
		Egress: map[string][]int64{"bob": {21}, "dave": {4}},
		Totals: map[string]int64{"bob": 21, "dave": 4},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("second result (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(out2.String(), "goka view of goka-interop-example_.counter-table: bob 21, dave 4\n") {
		t.Errorf("second run output:\n%s", out2)
	}
}

func TestFlags(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := execute(context.Background(), []string{"--help"}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Errorf("--help: exit code %d", code)
	}
	if !strings.Contains(stderr.String(), "--brokers") {
		t.Errorf("--help output lacks --brokers:\n%s", stderr.String())
	}
	if code := execute(context.Background(), []string{"--nope"}, func(string) string { return "" }, &stdout, &stderr); code != 2 {
		t.Errorf("--nope: exit code %d, want 2", code)
	}
}

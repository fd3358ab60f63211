package smoke

import (
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
)

func addr(id int) functions.Address {
	return functions.Address{Type: FunctionType, ID: strconv.Itoa(id)}
}

// TestInterpreterReachesTheTrackedCounts runs generated commands through
// the function in memory: every id's count must be what the tracker
// expects, and Verify reports it.
func TestInterpreterReachesTheTrackedCounts(t *testing.T) {
	t.Parallel()
	cfg := DefaultGeneratorConfig()
	cfg.IDs = 20
	g, err := NewGenerator(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	h := functionstest.New(Registry())
	tr := NewTracker(cfg.IDs)
	for range 1000 {
		sc := g.Next()
		tr.Track(sc)
		if err := h.Run(addr(int(sc.Target)), SourceCommandType.Of(sc), 10000); err != nil {
			t.Fatal(err)
		}
	}
	discards := len(h.Egress())
	if discards == 0 {
		t.Errorf("no record on the discard egress")
	}
	for _, e := range h.Egress() {
		if e.Egress != DiscardEgress {
			t.Fatalf("egress record to %s before any Verify", e.Egress)
		}
	}
	h.Reset()
	for id := range cfg.IDs {
		got, _ := functionstest.StateOf(h, addr(id), Count)
		if got != tr.Expected(id) {
			t.Errorf("id %d: count %d, tracker expects %d", id, got, tr.Expected(id))
		}
		verify := SourceCommand{Target: int32(id), Commands: Commands{Verify{Expected: tr.Expected(id)}}}
		if _, err := h.Invoke(addr(id), SourceCommandType.Of(verify)); err != nil {
			t.Fatal(err)
		}
	}
	egress := h.Egress()
	if len(egress) != cfg.IDs {
		t.Fatalf("%d verification results for %d ids", len(egress), cfg.IDs)
	}
	for id, e := range egress {
		rec, err := functions.KafkaRecordType.As(e.Message)
		if err != nil {
			t.Fatal(err)
		}
		res, err := UnmarshalVerificationResult(rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		want := VerificationResult{ID: int32(id), Expected: tr.Expected(id), Actual: tr.Expected(id)}
		if e.Egress != VerificationEgress || rec.Key != strconv.Itoa(id) || res != want {
			t.Errorf("verification record %s key %q %+v, want %s key %d %+v", e.Egress, rec.Key, res, VerificationEgress, id, want)
		}
	}
}

func TestInterpreterRunsEachCommand(t *testing.T) {
	t.Parallel()
	h := functionstest.New(Registry())
	res, err := h.Invoke(addr(1), CommandsType.Of(Commands{
		Increment{}, nil, Increment{},
		Send{Target: 2, Commands: Commands{Increment{}}},
		SendEgress{},
		Verify{Expected: 5},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := functionstest.StateOf(h, addr(1), Count); n != 2 {
		t.Errorf("count %d, want 2", n)
	}
	if len(res.Messages) != 1 || res.Messages[0].To != addr(2) || !CommandsType.Is(res.Messages[0].Message) {
		t.Fatalf("messages %+v, want one Commands message to id 2", res.Messages)
	}
	sent, _ := CommandsType.As(res.Messages[0].Message)
	if d := cmp.Diff(Commands{Increment{}}, sent); d != "" {
		t.Errorf("sent commands (-want +got):\n%s", d)
	}
	if len(res.Egress) != 2 || res.Egress[0].Egress != DiscardEgress || res.Egress[1].Egress != VerificationEgress {
		t.Fatalf("egress %+v, want discard then verification", res.Egress)
	}
	rec, _ := functions.KafkaRecordType.As(res.Egress[1].Message)
	if got, _ := UnmarshalVerificationResult(rec.Value); got != (VerificationResult{ID: 1, Expected: 5, Actual: 2}) {
		t.Errorf("verification result %+v", got)
	}
}

// TestInterpreterRejectsUnsupportedCommands: delayed messages and async
// operations fail the invocation permanently (to the dead-letter topic),
// with no effect.
func TestInterpreterRejectsUnsupportedCommands(t *testing.T) {
	t.Parallel()
	for _, c := range []Command{SendAfter{Target: 1}, CancelSendAfter{Target: 1, CancellationToken: "t"}, AsyncOperation{}} {
		h := functionstest.New(Registry())
		_, err := h.Invoke(addr(1), CommandsType.Of(Commands{Increment{}, c}))
		if err == nil || !functions.IsPermanent(err) {
			t.Errorf("%T: got %v, want a permanent error", c, err)
		}
		if _, ok := functionstest.StateOf(h, addr(1), Count); ok {
			t.Errorf("%T: the failed invocation changed the state", c)
		}
	}
	h := functionstest.New(Registry())
	_, err := h.Invoke(functions.Address{Type: FunctionType, ID: "x"}, CommandsType.Of(Commands{Verify{}}))
	if !functions.IsPermanent(err) {
		t.Errorf("verify at a non-numeric id: got %v, want a permanent error", err)
	}
	var inv *functions.InvocationError
	if !errors.As(err, &inv) {
		t.Errorf("got %T, want an *InvocationError", err)
	}
}

// TestDuplicateFaultCountsTwice pins down the test fault that
// TestRunCatchesDuplicates relies on.
func TestDuplicateFaultCountsTwice(t *testing.T) {
	t.Parallel()
	h := functionstest.New(newRegistry(3))
	for range 6 {
		if _, err := h.Invoke(addr(0), CommandsType.Of(Commands{Increment{}})); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := functionstest.StateOf(h, addr(0), Count); n != 8 {
		t.Errorf("count %d after 6 increments with every 3rd doubled, want 8", n)
	}
}

func TestWorkerArgsRoundTrip(t *testing.T) {
	t.Parallel()
	want := WorkerConfig{Brokers: []string{"a:1", "b:2"}, App: "smoke-x", Partitions: 6, Instance: "w2", DataDir: "/tmp/d w",
		SessionTimeout: 1500e6, CommitInterval: 50e6, LogLevel: -4}
	got, err := ParseWorkerArgs(want.Args())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(WorkerConfig{})); d != "" {
		t.Errorf("worker config (-want +got):\n%s", d)
	}
	for _, args := range [][]string{{"--app=x", "--instance=w1"}, {"--brokers=a:1"}, {"--brokers=a:1", "--app=x", "--instance=w1", "extra"}, {"--nope"}} {
		if _, err := ParseWorkerArgs(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := DefaultConfig()
	valid.StartWorker = testStart()
	if err := valid.Validate(); err != nil {
		t.Fatalf("default config with a start function: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no start function", func(c *Config) { c.StartWorker = nil }},
		{"no messages", func(c *Config) { c.Messages = 0 }},
		{"no workers", func(c *Config) { c.Workers = 0 }},
		{"negative kills", func(c *Config) { c.Kills = -1 }},
		{"negative rate", func(c *Config) { c.Rate = -1 }},
		{"no timeout", func(c *Config) { c.Timeout = 0 }},
		{"short session timeout", func(c *Config) { c.SessionTimeout = 100e6 }},
		{"bad app", func(c *Config) { c.App = "smoke test" }},
		{"delayed messages", func(c *Config) { c.Generator.SendAfter = true }},
		{"no ids", func(c *Config) { c.Generator.IDs = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			if err := cfg.Validate(); err == nil {
				t.Errorf("no error")
			}
		})
	}
}

package smoke

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
)

func addr(id int) functions.Address {
	return functions.Address{Type: FunctionType, ID: strconv.Itoa(id)}
}

// TestInterpreterReachesTheTrackedCounts runs generated commands, delayed
// messages and cancellations among them, through the function in memory:
// every id's count must be what the tracker expects, and Verify reports it.
func TestInterpreterReachesTheTrackedCounts(t *testing.T) {
	t.Parallel()
	cfg := DefaultGeneratorConfig()
	cfg.IDs = 20
	g, err := NewGenerator(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	const maxDelay = 2 * time.Second
	h := functionstest.New(Registry(maxDelay))
	tr := NewTracker(cfg.IDs)
	var egress []functions.EgressMessage
	for range 1000 {
		sc := g.Next()
		tr.Track(sc)
		if err := h.Run(addr(int(sc.Target)), SourceCommandType.Of(sc), 10000); err != nil {
			t.Fatal(err)
		}
	}
	// deliver the delayed messages, and the messages they send, until
	// none waits
	advances := 0
	for len(h.Pending()) > 0 {
		advances++
		egress = append(egress, h.Egress()...)
		h.Reset()
		if err := h.Advance(maxDelay); err != nil {
			t.Fatal(err)
		}
		sent := h.Sent()
		egress = append(egress, h.Egress()...)
		h.Reset()
		for _, m := range sent {
			if err := h.Run(m.To, m.Message, 10000); err != nil {
				t.Fatal(err)
			}
		}
	}
	egress = append(egress, h.Egress()...)
	if advances == 0 || tr.Longest().Delayed == 0 {
		t.Errorf("no delayed message leading to an increment in 1000 commands")
	}
	if len(egress) == 0 {
		t.Errorf("no record on the discard egress")
	}
	for _, e := range egress {
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
	egress = h.Egress()
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
	h := functionstest.New(Registry(time.Second))
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

// TestInterpreterSendsDelayedMessages: a SendAfter becomes a delayed
// message from the function to its target with a delay from 0 to the
// maximum; a SendAfter with a token followed by its CancelSendAfter (the
// generator's cancellation pair) leaves nothing waiting.
func TestInterpreterSendsDelayedMessages(t *testing.T) {
	t.Parallel()
	const maxDelay = 2 * time.Second
	h := functionstest.New(Registry(maxDelay))
	inner := Commands{Increment{}, Send{Target: 3, Commands: Commands{Increment{}}}}
	var delays []time.Duration
	for range 50 {
		res, err := h.Invoke(addr(1), CommandsType.Of(Commands{SendAfter{Target: 2, Commands: inner}}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Delayed) != 1 || res.Delayed[0].To != addr(2) || res.Delayed[0].Token != "" || res.Delayed[0].Cancel {
			t.Fatalf("delayed %+v, want one message to id 2 without a token", res.Delayed)
		}
		d := res.Delayed[0]
		if d.Delay < 0 || d.Delay > maxDelay {
			t.Errorf("delay %v, want 0 to %v", d.Delay, maxDelay)
		}
		delays = append(delays, d.Delay)
		sent, _ := CommandsType.As(d.Message)
		if diff := cmp.Diff(inner, sent); diff != "" {
			t.Errorf("delayed commands (-want +got):\n%s", diff)
		}
	}
	if slices.Min(delays) == slices.Max(delays) {
		t.Errorf("50 delays all %v, want random ones", delays[0])
	}
	for _, p := range h.Pending() {
		if p.From != addr(1) {
			t.Errorf("pending message from %v, want from id 1", p.From)
		}
	}
	if err := h.Advance(maxDelay); err != nil {
		t.Fatal(err)
	}
	if n, _ := functionstest.StateOf(h, addr(2), Count); n != 50 {
		t.Errorf("id 2 counts %d after the delay, want 50", n)
	}
	if len(h.Sent()) != 50 || h.Sent()[0].To != addr(3) {
		t.Errorf("id 2 sent %d messages, want 50 to id 3", len(h.Sent()))
	}

	// the cancellation pair, and a cancellation without a token
	h = functionstest.New(Registry(maxDelay))
	res, err := h.Invoke(addr(1), CommandsType.Of(Commands{
		SendAfter{Target: 2, CancellationToken: "t"},
		CancelSendAfter{Target: 2, CancellationToken: "t"},
		CancelSendAfter{Target: 2},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Delayed) != 2 || res.Delayed[0].To != addr(2) || res.Delayed[0].Token != "t" || res.Delayed[0].Cancel ||
		res.Delayed[1].Token != "t" || !res.Delayed[1].Cancel {
		t.Errorf("delayed %+v, want the message with token t, then its cancellation", res.Delayed)
	}
	if p := h.Pending(); len(p) != 0 {
		t.Errorf("%d delayed messages wait after the cancellation, want none", len(p))
	}
}

// TestInterpreterRejectsUnsupportedCommands: async operations fail the
// invocation permanently (to the dead-letter topic), with no effect.
func TestInterpreterRejectsUnsupportedCommands(t *testing.T) {
	t.Parallel()
	h := functionstest.New(Registry(0))
	_, err := h.Invoke(addr(1), CommandsType.Of(Commands{Increment{}, AsyncOperation{}}))
	if err == nil || !functions.IsPermanent(err) {
		t.Errorf("async operation: got %v, want a permanent error", err)
	}
	if _, ok := functionstest.StateOf(h, addr(1), Count); ok {
		t.Errorf("the failed invocation changed the state")
	}
	_, err = h.Invoke(functions.Address{Type: FunctionType, ID: "x"}, CommandsType.Of(Commands{Verify{}}))
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
	h := functionstest.New(newRegistry(0, faults{duplicateEvery: 3}))
	for range 6 {
		if _, err := h.Invoke(addr(0), CommandsType.Of(Commands{Increment{}})); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := functionstest.StateOf(h, addr(0), Count); n != 8 {
		t.Errorf("count %d after 6 increments with every 3rd doubled, want 8", n)
	}
}

// TestDuplicateDelayedFaultDeliversTwiceLate pins down the test fault that
// TestRunCatchesDuplicatedDelayedMessages relies on: every n-th SendAfter
// that leads to an increment is sent a second time with the longest delay;
// SendAfters that lead to none do not count.
func TestDuplicateDelayedFaultDeliversTwiceLate(t *testing.T) {
	t.Parallel()
	const maxDelay = time.Second
	h := functionstest.New(newRegistry(maxDelay, faults{duplicateDelayedEvery: 2}))
	for range 4 {
		if _, err := h.Invoke(addr(0), CommandsType.Of(Commands{
			SendAfter{Target: 1, Commands: Commands{SendEgress{}}},
			SendAfter{Target: 1, Commands: Commands{Increment{}}},
		})); err != nil {
			t.Fatal(err)
		}
	}
	pending := h.Pending()
	if len(pending) != 10 {
		t.Fatalf("%d delayed messages, want 8 and 2 copies", len(pending))
	}
	if last := pending[len(pending)-1]; !last.Due.Equal(functionstest.Epoch.Add(maxDelay)) {
		t.Errorf("a copy is due at %v, want the longest delay", last.Due)
	}
	if err := h.Advance(maxDelay); err != nil {
		t.Fatal(err)
	}
	if n, _ := functionstest.StateOf(h, addr(1), Count); n != 6 {
		t.Errorf("count %d after 4 delayed increments with every 2nd delivered twice, want 6", n)
	}
}

func TestWorkerArgsRoundTrip(t *testing.T) {
	t.Parallel()
	want := WorkerConfig{Brokers: []string{"a:1", "b:2"}, App: "smoke-x", Partitions: 6, Instance: "w2", DataDir: "/tmp/d w",
		SessionTimeout: 1500e6, CommitInterval: 50e6, LogLevel: -4, MaxDelay: 2500 * time.Millisecond}
	got, err := ParseWorkerArgs(want.Args())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(WorkerConfig{}, faults{})); d != "" {
		t.Errorf("worker config (-want +got):\n%s", d)
	}
	for _, args := range [][]string{{"--app=x", "--instance=w1"}, {"--brokers=a:1"}, {"--brokers=a:1", "--app=x", "--instance=w1", "extra"}, {"--nope"},
		{"--brokers=a:1", "--app=x", "--instance=w1", "--max-delay=-1s"}} {
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
	if !valid.Generator.SendAfter || !valid.Generator.SendAfterWithCancellation || valid.MaxDelay != 2*time.Second {
		t.Errorf("default generator %+v, max delay %v: want delayed messages and cancellation on, up to 2s", valid.Generator, valid.MaxDelay)
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
		{"async operations", func(c *Config) { c.Generator.AsyncOperations = true }},
		{"negative max delay", func(c *Config) { c.MaxDelay = -time.Second }},
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

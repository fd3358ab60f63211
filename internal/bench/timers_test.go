package bench

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// smallTimersConfig is a delayed-messages bench of a few seconds: 100
// warm-up messages of each kind, 2,000 stored and 2,000 burst timers, and
// 500 paced delayed messages with delays up to 500ms.
func smallTimersConfig() Config {
	cfg := DefaultConfig()
	cfg.InProcess = true // the test binary cannot be the broker's child
	cfg.Timers = true
	cfg.IDs, cfg.Warmup = 50, 100
	cfg.TimersStored, cfg.TimersBurst = 2000, 2000
	cfg.TimersRate, cfg.TimersDuration, cfg.TimersMaxDelay = 500, time.Second, 500*time.Millisecond
	cfg.Progress = 500 * time.Millisecond
	return cfg
}

// TestTimers runs a small delayed-messages bench: every delayed and plain
// message must arrive exactly once and none early (Run fails otherwise),
// and every figure must be there.
func TestTimers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and a processor for several seconds")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	res, err := Run(ctx, smallTimersConfig(), &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	tr := res.Timers
	if tr == nil {
		t.Fatalf("no timers result\noutput:\n%s", out.String())
	}
	checks := strings.Join(tr.Checks, "\n")
	// 200 warm-up (100 delayed), 2,000 burst, 2,000 + 2,000 plain, 500 paced
	for _, want := range []string{
		"6,700 output records for 6,700 messages sent, one for each",
		"2,600 delayed messages delivered, none before its due time",
		"the timers topic holds 2,000 committed records for the 2,000 stored timers",
	} {
		if !strings.Contains(checks, want) {
			t.Errorf("checks %q lack %q", tr.Checks, want)
		}
	}
	// a fire transaction that aborts is fired again, so at least 2,000
	if tr.TimersFired < 2000 {
		t.Errorf("the processor fired %d timers in the burst, want at least 2000", tr.TimersFired)
	}
	for _, p := range []struct {
		name string
		ph   Phase
	}{{"fire", tr.Fire}, {"plain", tr.Plain}, {"send", tr.Send}, {"paced", tr.Paced}} {
		if p.ph.PerSecond <= 0 || p.ph.Elapsed <= 0 {
			t.Errorf("%s: %+v: no rate", p.name, p.ph)
		}
	}
	if tr.FireRatio <= 0 || tr.FireSendRatio <= 0 {
		t.Errorf("ratios %v and %v, want > 0", tr.FireRatio, tr.FireSendRatio)
	}
	if tr.Stored.Timers != 2000 || tr.Stored.After.Inuse == 0 || tr.Stored.DiskAfter <= 0 {
		t.Errorf("stored memory figures %+v: want 2000 timers, a heap reading and a store on disk", tr.Stored)
	}
	if l := tr.Lateness; l.Egress.N != 500 || l.Egress.P50 <= 0 || l.Egress.Max < l.Egress.P99 || l.Delivery.P50 <= 0 || l.Long == 0 || l.LongEgress.N != l.Long {
		t.Errorf("lateness %+v", l)
	}
	for _, want := range []string{"Pending timers", "timers per GiB of heap", "local store on disk per timer", "ratio fired/plain (ingress) messages/s", "in commit intervals", "sink invoked p99, delay >= 200ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", out.String())
	}
}

// TestTimersCatchEarlyMessages makes the sink's clock run 5s behind, so
// that every delayed message seems to reach it before its due time: the
// bench must see it and fail, so TestTimers' pass means the "never early"
// check ran end to end.
func TestTimersCatchEarlyMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and a processor for several seconds")
	}
	cfg := smallTimersConfig()
	cfg.TimersStored, cfg.TimersBurst, cfg.TimersDuration = 200, 200, 200*time.Millisecond
	cfg.timersSinkSkew = 5 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	_, err := Run(ctx, cfg, &out)
	if err == nil {
		t.Fatalf("Run: no error for a sink that sees every message 5s early\noutput:\n%s", out.String())
	}
	for _, want := range []string{"warm-up phase: 100 messages arrived before their due time", "burst phase: 200 messages arrived before their due time"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func timerOutput(phase byte, seq uint64, due, invoked time.Time) *sarama.ConsumerMessage {
	var d int64
	if !due.IsZero() {
		d = due.UnixNano()
	}
	v := binary.BigEndian.AppendUint64(timerMessage(phase, seq, d, d-int64(time.Second)), uint64(invoked.UnixNano()))
	return &sarama.ConsumerMessage{Topic: "out", Key: []byte("id-0"), Value: v}
}

// TestTimerReaderFindsEarlyLostAndDuplicateMessages feeds the reader a
// message delivered before its due time, a duplicate, a lost message and
// a stored timer that fired: verify must report each.
func TestTimerReaderFindsEarlyLostAndDuplicateMessages(t *testing.T) {
	r := newTimerReaderState("out", 200*time.Millisecond)
	for ph := range numTimerPhases {
		r.expect(ph, 0, false)
	}
	r.phases[tphPaced] = timerPhaseState{done: make(chan struct{})}
	r.expect(tphPaced, 3, true)
	now := time.Now()
	due := now.Add(-time.Second)
	r.handle(timerOutput(tphPaced, 0, due, due.Add(time.Millisecond)), now)          // on time
	r.handle(timerOutput(tphPaced, 0, due, due.Add(time.Millisecond)), now)          // twice
	r.handle(timerOutput(tphPaced, 1, now.Add(time.Second), now), now)               // early
	r.handle(timerOutput(tphStored, 7, now.Add(time.Hour), now.Add(time.Hour)), now) // a stored timer arrived
	_, err := r.verify()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"paced phase: 2 of 3 messages arrived (1 missing)",
		"paced phase: 1 messages arrived twice or more",
		"paced phase: 1 messages arrived before their due time",
		"stored timers phase: 1 messages due in an hour or more arrived during the bench",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestTimerReaderExact(t *testing.T) {
	r := newTimerReaderState("out", 200*time.Millisecond)
	for ph := range numTimerPhases {
		r.expect(ph, 0, false)
	}
	r.phases[tphBurst] = timerPhaseState{done: make(chan struct{})}
	r.expect(tphBurst, 2, true)
	now := time.Now()
	due := now.Add(-100 * time.Millisecond)
	r.handle(timerOutput(tphBurst, 1, due, due.Add(10*time.Millisecond)), now)
	r.handle(timerOutput(tphBurst, 0, due, due.Add(30*time.Millisecond)), now)
	select {
	case <-r.phases[tphBurst].done:
	default:
		t.Error("burst phase not done")
	}
	checks, err := r.verify()
	if err != nil {
		t.Fatal(err)
	}
	if want := "2 delayed messages delivered, none before its due time"; !strings.Contains(strings.Join(checks, "\n"), want) {
		t.Errorf("checks %q lack %q", checks, want)
	}
	l := r.lateness(tphBurst)
	if l.Egress.P50 != 100*time.Millisecond || l.Delivery.Max != 30*time.Millisecond || l.Delivery.P50 != 10*time.Millisecond || l.Long != 2 {
		t.Errorf("lateness %+v", l)
	}
}

func TestCeilMillis(t *testing.T) {
	for in, want := range map[int64]int64{0: 0, 1: 1e6, 1e6: 1e6, 1e6 + 1: 2e6, 5_999_999: 6e6} {
		if got := ceilMillis(in); got != want {
			t.Errorf("ceilMillis(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestTimersConfigValidate(t *testing.T) {
	good := Config{Timers: true, CPUProfile: "x", ProfileSide: ProfileSchedule}
	if err := good.Validate(); err != nil {
		t.Errorf("timers, profile of scheduling: %v", err)
	}
	if got := (Config{Timers: true}).withDefaults().ProfileSide; got != ProfileFire {
		t.Errorf("default profile side with timers = %q, want %q", got, ProfileFire)
	}
	bad := Config{Timers: true, TimersBurst: -1, TimersMaxDelay: time.Microsecond, CPUProfile: "x", ProfileSide: SideRaw}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"burst timers -1", "timers max delay 1µs: at least 1ms", `profile side "raw": with timers`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

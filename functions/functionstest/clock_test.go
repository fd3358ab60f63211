package functionstest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/functionstest"
)

// The rolling counter of StateFun's fraud example: each report counts for
// 30 days, by a delayed message to itself that takes it back.
var (
	reportsType = functions.TypeName("test/reports")
	reported    = functions.NewState("reports", functions.IntType)
	ops         = functions.StringType
)

func rollingCounter() *functions.Registry {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: reportsType, State: []functions.StateSpec{reported}, Egresses: []functions.TypeName{"test/out"},
		Function: functions.Router(functions.Handle(ops, func(ctx functions.Context, op string) error {
			n, _ := reported.Get(ctx)
			switch {
			case op == "report":
				reported.Set(ctx, n+1)
				ctx.SendAfter(30*24*time.Hour, ctx.Self(), ops.Of("expire"))
			case op == "expire":
				reported.Set(ctx, n-1)
			case strings.HasPrefix(op, "remind "):
				// one reminder per address: a new one replaces the old
				ctx.SendAfterWithToken(time.Hour, "reminder", ctx.Self(), ops.Of("ping "+strings.TrimPrefix(op, "remind ")))
			case op == "forget":
				ctx.CancelDelayed("reminder")
			case strings.HasPrefix(op, "ping "):
				ctx.SendEgress("test/out", functions.KafkaMessage("pings", ctx.Self().ID, []byte(op)))
			}
			return nil
		}))})
	return reg
}

func TestAdvanceDeliversDelayedMessagesWhenDue(t *testing.T) {
	h := functionstest.New(rollingCounter())
	acct := functions.Address{Type: reportsType, ID: "acct-1"}
	if _, err := h.Invoke(acct, ops.Of("report")); err != nil {
		t.Fatal(err)
	}
	if err := h.Advance(10 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Invoke(acct, ops.Of("report")); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want int32) {
		t.Helper()
		if n, _ := functionstest.StateOf(h, acct, reported); n != want {
			t.Errorf("%s: %d reports, want %d", when, n, want)
		}
	}
	check("day 10", 2)
	if err := h.Advance(20*24*time.Hour - time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	check("just before day 30", 2)
	if err := h.Advance(time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	check("day 30", 1)
	if got := h.Pending(); len(got) != 1 || !got[0].Due.Equal(functionstest.Epoch.Add(40*24*time.Hour)) || got[0].From != acct {
		t.Errorf("pending = %+v, want the second report's expiry at day 40, from %s", got, acct)
	}
	if err := h.Advance(365 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	check("a year later", 0)
	if want := functionstest.Epoch.Add(395 * 24 * time.Hour); !h.Now().Equal(want) {
		t.Errorf("Now() = %v, want %v", h.Now(), want)
	}
}

func TestCancellationTokensBelongToTheSender(t *testing.T) {
	h := functionstest.New(rollingCounter())
	a := functions.Address{Type: reportsType, ID: "a"}
	b := functions.Address{Type: reportsType, ID: "b"}
	for _, step := range []struct {
		to functions.Address
		op string
	}{{a, "remind first"}, {a, "remind second"}, {b, "remind other"}, {b, "forget"}, {b, "forget"}} {
		if _, err := h.Invoke(step.to, ops.Of(step.op)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Advance(2 * time.Hour); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range h.Egress() {
		rec, err := functions.KafkaRecordType.As(e.Message)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec.Key+": "+string(rec.Value))
	}
	// a's second reminder replaced its first; b cancelled its own (and
	// cancelling again did nothing)
	if strings.Join(got, "; ") != "a: ping second" {
		t.Errorf("egress = %q, want only a's second reminder", got)
	}
}

func TestAdvanceRefusesToGoBack(t *testing.T) {
	h := functionstest.New(rollingCounter())
	if err := h.Advance(-time.Second); err == nil {
		t.Error("Advance(-1s) = nil, want an error")
	}
	if !h.Now().Equal(functionstest.Epoch) {
		t.Errorf("Now() = %v after a refused Advance, want Epoch", h.Now())
	}
}

// A session whose visit count expires 5 minutes after its last write and
// whose last visitor expires an hour after the last call.
var (
	sessionType   = functions.TypeName("test/session")
	sessionVisits = functions.NewState("visits", functions.IntType).ExpireAfterWrite(5 * time.Minute)
	lastVisitor   = functions.NewState("last", functions.StringType).ExpireAfterCall(time.Hour)
)

func sessions() *functions.Registry {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: sessionType, State: []functions.StateSpec{sessionVisits, lastVisitor},
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, name string) error {
			if name == "look" {
				return nil
			}
			n, _ := sessionVisits.Get(ctx)
			sessionVisits.Set(ctx, n+1)
			lastVisitor.Set(ctx, name)
			return nil
		}))})
	return reg
}

func TestStateExpiresOnTheFakeClock(t *testing.T) {
	h := functionstest.New(sessions())
	s := functions.Address{Type: sessionType, ID: "s1"}
	step := func(advance time.Duration, msg string, wantVisits int32, wantLast string) {
		t.Helper()
		if err := h.Advance(advance); err != nil {
			t.Fatal(err)
		}
		if msg != "" {
			if _, err := h.Invoke(s, functions.StringType.Of(msg)); err != nil {
				t.Fatal(err)
			}
		}
		n, _ := functionstest.StateOf(h, s, sessionVisits)
		last, _ := functionstest.StateOf(h, s, lastVisitor)
		if n != wantVisits || last != wantLast {
			t.Errorf("at %v: sessionVisits %d last %q, want %d %q", h.Now().Sub(functionstest.Epoch), n, last, wantVisits, wantLast)
		}
	}
	step(0, "ann", 1, "ann")
	step(4*time.Minute, "", 1, "ann")
	step(time.Minute, "", 0, "ann")        // 5 min after the write
	step(50*time.Minute, "look", 0, "ann") // a call keeps last alive
	step(59*time.Minute, "", 0, "ann")     // 59 min after that call
	step(time.Minute, "", 0, "")           // an hour after it
	step(0, "bob", 1, "bob")               // a fresh start
}

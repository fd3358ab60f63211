package smoke

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// fakeApp answers the driver's Verify commands in memory, with the count
// that count returns for an id at the time since the start; it stands for
// the producer, the workers and the reader of the verification egress.
type fakeApp struct {
	sarama.AsyncProducer // only Input is used
	input                chan *sarama.ProducerMessage
	rd                   *reader
	done                 chan struct{}
	wg                   sync.WaitGroup
}

func startFakeApp(t *testing.T, count func(id int32, since time.Duration) int64) *fakeApp {
	f := &fakeApp{
		input: make(chan *sarama.ProducerMessage),
		rd:    &reader{results: make(chan VerificationResult, 1024), errs: make(chan error, 1)},
		done:  make(chan struct{}),
	}
	start := time.Now()
	f.wg.Go(func() {
		for {
			select {
			case <-f.done:
				return
			case m := <-f.input:
				b, _ := m.Value.Encode()
				sc, err := UnmarshalSourceCommand(b)
				if err != nil {
					t.Error(err)
					return
				}
				v := sc.Commands[0].(Verify)
				res := VerificationResult{ID: sc.Target, Expected: v.Expected, Actual: count(sc.Target, time.Since(start))}
				select {
				case f.rd.results <- res:
				case <-f.done:
					return
				}
			}
		}
	})
	t.Cleanup(func() {
		close(f.done)
		f.wg.Wait()
	})
	return f
}

func (f *fakeApp) Input() chan<- *sarama.ProducerMessage { return f.input }

// verifyRun is a run in its verification phase: ids 0 to 3 expect one
// increment each, id 0 through a delayed message when delayed is set.
func verifyRun(delayed bool) *run {
	cfg := DefaultConfig()
	cfg.App = "smoke-verify"
	cfg.Generator.IDs = 4
	cfg.MaxDelay = 300 * time.Millisecond
	cfg.CommitInterval = 50 * time.Millisecond
	cfg.VerifyInterval = 100 * time.Millisecond
	cfg.Timeout = time.Minute
	r := &run{cfg: cfg, out: io.Discard, start: time.Now(), exited: make(chan error), tracker: NewTracker(4)}
	first := Command(Send{Target: 0, Commands: Commands{Increment{}}})
	if delayed {
		first = SendAfter{Target: 0, Commands: Commands{Increment{}}}
	}
	r.tracker.Track(SourceCommand{Target: 1, Commands: Commands{first, Increment{}, Send{Target: 2, Commands: Commands{Increment{}}}}})
	r.tracker.Track(SourceCommand{Target: 3, Commands: Commands{Increment{}}})
	return r
}

// settleOf is the wait of verifyRun(true): one delayed message of 300ms
// plus the check interval, two commit intervals of 50ms for its one hop.
const settleOf = 410 * time.Millisecond

func TestSettleTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		longest Chain
		want    time.Duration
	}{
		{"no delayed messages", Chain{Messages: 9}, 0},
		{"one", Chain{Messages: 1, Delayed: 1}, settleOf},
		{"chains", Chain{Messages: 7, Delayed: 3}, 3*310*time.Millisecond + 7*100*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := settleTime(tc.longest, 300*time.Millisecond, 50*time.Millisecond); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestVerifyPassesAtOnceWithoutDelayedMessages: upstream's rule, when no
// delayed message leads to an increment: pass when every id has its count.
func TestVerifyPassesAtOnceWithoutDelayedMessages(t *testing.T) {
	t.Parallel()
	r := verifyRun(false)
	f := startFakeApp(t, func(id int32, _ time.Duration) int64 { return r.tracker.Expected(int(id)) })
	if err := r.verify(context.Background(), f, f.rd, nil); err != nil {
		t.Fatal(err)
	}
	if r.res.Rounds != 1 || r.res.Settle != 0 || r.res.AllMatched != 0 || r.verified != 4 {
		t.Errorf("got %d rounds, settle %v, all matched at %v, %d verified; want 1 round, no wait, 4 verified",
			r.res.Rounds, r.res.Settle, r.res.AllMatched, r.verified)
	}
}

// TestVerifyWaitsForDelayedMessagesThenConfirms: with a delayed message on
// the way to an increment, every id must report its count again after the
// wait.
func TestVerifyWaitsForDelayedMessagesThenConfirms(t *testing.T) {
	t.Parallel()
	r := verifyRun(true)
	f := startFakeApp(t, func(id int32, _ time.Duration) int64 { return r.tracker.Expected(int(id)) })
	t0 := time.Now()
	if err := r.verify(context.Background(), f, f.rd, nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took < settleOf {
		t.Errorf("passed after %v, before the wait of %v", took, settleOf)
	}
	if r.res.Settle != settleOf || r.res.Longest != (Chain{Messages: 1, Delayed: 1}) || r.res.AllMatched == 0 || r.confirmed != 4 {
		t.Errorf("got settle %v, longest %+v, all matched at %v, %d confirmed; want %v, 1 delayed message, 4 confirmed",
			r.res.Settle, r.res.Longest, r.res.AllMatched, r.confirmed, settleOf)
	}
}

// TestVerifyCatchesALateDuplicate: every id has its count at once, then a
// delayed message delivered twice raises one 200ms later. Upstream's rule
// would have passed the run; the wait for delayed messages catches it.
func TestVerifyCatchesALateDuplicate(t *testing.T) {
	t.Parallel()
	r := verifyRun(true)
	f := startFakeApp(t, func(id int32, since time.Duration) int64 {
		n := r.tracker.Expected(int(id))
		if id == 2 && since > 200*time.Millisecond {
			n++
		}
		return n
	})
	err := r.verify(context.Background(), f, f.rd, nil)
	var dup *DuplicateError
	if !errors.As(err, &dup) || dup.ID != 2 || !dup.AfterAllMatched {
		t.Fatalf("got %v, want a late duplicate of id 2", err)
	}
}

// TestVerifyWaitsForDelayedMessagesBeforeALoss: with the timeout already
// passed, a count that a delayed message completes 300ms into the
// verification is not a loss, and a count that never gets there is one
// only after the wait.
func TestVerifyWaitsForDelayedMessagesBeforeALoss(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		late time.Duration // when id 0 gets its count
	}{
		{"late", 300 * time.Millisecond},
		{"never", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := verifyRun(true)
			r.cfg.Timeout = time.Millisecond
			f := startFakeApp(t, func(id int32, since time.Duration) int64 {
				n := r.tracker.Expected(int(id))
				if id == 0 && since < tc.late {
					n--
				}
				return n
			})
			t0 := time.Now()
			err := r.verify(context.Background(), f, f.rd, nil)
			took := time.Since(t0)
			if tc.late < time.Hour {
				if err != nil {
					t.Fatalf("got %v, want a pass", err)
				}
				return
			}
			var loss *LossError
			if !errors.As(err, &loss) || len(loss.Missing) != 1 || loss.Missing[0].ID != 0 {
				t.Fatalf("got %v, want a loss of id 0", err)
			}
			if want := settleOf + r.cfg.VerifyInterval; took < want {
				t.Errorf("loss reported after %v, before the wait of %v", took, want)
			}
		})
	}
}

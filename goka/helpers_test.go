package gokainterop_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

var (
	counterFn  = functions.TypeName("test/counter")
	totalState = functions.NewState("total", functions.LongType)
	totalsOut  = functions.TypeName("test/totals")
)

// edgeID is an id whose FNV-1a hash is 0x80000000: a goka view with the
// default hasher cannot find it when the partition count is not a power
// of two.
const edgeID = "id-qbbmmd"

// counterApp adds the longs sent to each id and writes every new total,
// keyed by the id, to the egress topic <app>-totals.
func counterApp(app string, partitions int32) (topology.Topology, *functions.Registry) {
	totals := topology.Topic(app + "-totals")
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: counterFn,
		Function: functions.Router(functions.Handle(functions.LongType, func(ctx functions.Context, n int64) error {
			total, _ := totalState.Get(ctx)
			total += n
			totalState.Set(ctx, total)
			ctx.SendEgress(totalsOut, functions.KafkaMessage(string(totals), ctx.Self().ID, []byte(strconv.FormatInt(total, 10))))
			return nil
		})),
		State:    []functions.StateSpec{totalState},
		Egresses: []functions.TypeName{totalsOut},
	})
	topo := topology.Topology{
		App:        app,
		Partitions: partitions,
		Functions:  []functions.TypeName{counterFn},
		Egresses:   []topology.Egress{{ID: totalsOut, Topics: []topology.Topic{totals}}},
	}
	return topo, reg
}

// startApp runs a stateloop processor until the test ends and waits until
// it is ready (its topics exist).
func startApp(t testing.TB, brokers []string, topo topology.Topology, reg *functions.Registry, opts ...processor.Option) *processor.Processor {
	t.Helper()
	opts = append([]processor.Option{processor.WithCommitInterval(20 * time.Millisecond)}, opts...)
	p, err := processor.New(brokers, topo, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("processor run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 15*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprintf("%+v", s) })
	return p
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
}

// run runs a goka view or processor until the test ends.
func run(t testing.TB, what string, r func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r(ctx); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop", what)
		}
	})
}

// waitReady waits until ready is closed, at most timeout.
func waitReady(t testing.TB, what string, ready <-chan struct{}, timeout time.Duration) {
	t.Helper()
	select {
	case <-ready:
	case <-time.After(timeout):
		t.Fatalf("%s not running after %v", what, timeout)
	}
}

// gokaLogger sends goka's log to the test log while the test runs.
type gokaLogger struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newGokaLogger(t testing.TB) *gokaLogger {
	l := &gokaLogger{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	return l
}

func (l *gokaLogger) log(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done && testing.Verbose() {
		l.t.Log("goka: " + strings.TrimRight(s, "\n"))
	}
}

func (l *gokaLogger) Print(v ...any)                 { l.log(fmt.Sprint(v...)) }
func (l *gokaLogger) Println(v ...any)               { l.log(fmt.Sprintln(v...)) }
func (l *gokaLogger) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }

var _ goka.Logger = (*gokaLogger)(nil)

package gokainterop_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"github.com/lovoo/goka"
	gokacodec "github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	gokainterop "github.com/stateloop/stateloop/goka"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
)

// seen records what a goka processor's callback got, per key.
type seen struct {
	mu   sync.Mutex
	vals map[string][]string
}

func (s *seen) add(key, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string][]string{}
	}
	s.vals[key] = append(s.vals[key], v)
}

func (s *seen) snapshot() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for k, v := range s.vals {
		out[k] = slices.Clone(v)
	}
	return out
}

// oldest is goka's default configuration for Kafka 3.0, reading a new
// group's input streams from their start.
func oldest() *sarama.Config {
	c := goka.DefaultConfig()
	c.Version = sarama.V3_0_0_0
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

// TestProcessorReadsEgress: a goka processor built with ProcessorOptions
// reads an egress topic whose log has aborted transactions and sees every
// committed record once, in order; a stock goka processor on the same
// topic also sees the records of the aborted transactions. Then a goka
// processor with ProcessorOptions looks the function's table up, finds the
// committed totals, and sends messages to the function with goka.Output
// and MessageCodec.
func TestProcessorReadsEgress(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo, reg := counterApp("egress", 4)
	totals := goka.Stream(topo.Egresses[0].Topics[0])
	var commits atomic.Int64
	p := startApp(t, brokers, topo, reg, processor.WithFaults(&processor.Faults{BeforeCommit: func() error {
		if commits.Add(1)%3 == 0 {
			return errors.New("injected commit failure")
		}
		return nil
	}}))

	// counts is what the read_committed reader keeps in its group table:
	// the number of totals of each id
	counts := &seen{}
	reader := func(group string, persist bool, opts ...goka.ProcessorOption) *seen {
		s := &seen{}
		edges := []goka.Edge{goka.Input(totals, gokainterop.Codec(codec.Text()), func(ctx goka.Context, msg any) {
			s.add(ctx.Key(), msg.(string))
			if persist {
				n, _ := ctx.Value().(int64)
				ctx.SetValue(n + 1)
				counts.add(ctx.Key(), strconv.FormatInt(n+1, 10))
			}
		})}
		if persist {
			edges = append(edges, goka.Persist(new(gokacodec.Int64)))
		}
		proc, err := goka.NewProcessor(brokers, goka.DefineGroup(goka.Group(group), edges...),
			append(opts, goka.WithStorageBuilder(storage.MemoryBuilder()), goka.WithLogger(newGokaLogger(t)))...)
		if err != nil {
			t.Fatal(err)
		}
		run(t, group, proc.Run)
		return s
	}
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication, tm.Stream.Replication = 1, 1 // one broker
	committed := reader("committed-reader", true,
		gokainterop.ProcessorOptions(gokainterop.WithSaramaConfig(oldest()), gokainterop.WithTopicManagerConfig(tm))...)
	stock := reader("stock-reader", false, goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(oldest())))

	em, err := gokainterop.NewEmitter(brokers, topo, goka.WithEmitterLogger(newGokaLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"alice", "bob", "carol", "dave", "erin"}
	const rounds = 10
	for range rounds { // a round at a time, to spread them over transactions
		errs := make(chan error, len(ids))
		for _, id := range ids {
			pr, err := gokainterop.Emit(em, functions.Address{Type: counterFn, ID: id}, functions.LongType.Of(1))
			if err != nil {
				t.Fatal(err)
			}
			pr.Then(func(err error) { errs <- err })
		}
		for range ids {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, id := range ids {
		for n := 1; n <= rounds; n++ {
			want[id] = append(want[id], strconv.Itoa(n))
		}
	}
	waitFor(t, 20*time.Second, "the read_committed goka processor to see every total", func() (bool, string) {
		got := committed.snapshot()
		return cmp.Equal(got, want), fmt.Sprintf("%v, processor %+v", got, p.Stats())
	})
	s := p.Stats()
	if s.Aborts == 0 {
		t.Fatalf("no aborted transaction: %+v", s)
	}
	waitFor(t, 20*time.Second, "the stock goka processor to see the last totals", func() (bool, string) {
		got := stock.snapshot()
		for _, id := range ids {
			if v := got[id]; len(v) == 0 || v[len(v)-1] != strconv.Itoa(rounds) {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
	extra := 0
	for id, vals := range stock.snapshot() {
		extra += len(vals) - len(want[id])
	}
	if extra <= 0 {
		t.Errorf("the stock goka processor saw no record of the %d aborted transactions", s.Aborts)
	} else {
		t.Logf("%d aborted transactions: the stock goka processor saw %d records of them, the read_committed one none", s.Aborts, extra)
	}
	// the read_committed processor saw nothing more meanwhile, and counted
	// in its group table
	if got := committed.snapshot(); !cmp.Equal(got, want) {
		t.Errorf("read_committed goka processor saw %v, want %v", got, want)
	}
	if got := len(counts.snapshot()); got != len(ids) {
		t.Errorf("group table counts for %d ids, want %d", got, len(ids))
	}
	for id, c := range counts.snapshot() {
		if got, want := c[len(c)-1], strconv.Itoa(rounds); got != want {
			t.Errorf("group table count of %s = %s, want %s", id, got, want)
		}
	}

	// a goka processor looks up the function's table
	probe := goka.Stream("egress-probe")
	pe, err := goka.NewEmitter(brokers, probe, new(gokacodec.String), goka.WithEmitterLogger(newGokaLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := pe.EmitSync(id, "probe"); err != nil {
			t.Fatal(err)
		}
	}
	if err := pe.Finish(); err != nil {
		t.Fatal(err)
	}
	looked := &seen{}
	table := gokainterop.Table(topo, counterFn)
	loop := gokainterop.LoopStream(topo)
	gg := goka.DefineGroup("lookup",
		goka.Input(probe, new(gokacodec.String), func(ctx goka.Context, _ any) {
			st, _ := ctx.Lookup(table, ctx.Key()).(gokainterop.State)
			n, ok, err := gokainterop.Value(st, totalState.Name(), totalState.Type())
			looked.add(ctx.Key(), fmt.Sprint(n, ok, err))
			// and a message to the function, from a goka processor
			ctx.Emit(loop, ctx.Key(), gokainterop.Message{To: functions.Address{Type: counterFn, ID: ctx.Key()}, Argument: functions.LongType.Of(100)})
		}),
		goka.Lookup(table, gokainterop.StateCodec{}),
		goka.Output(loop, gokainterop.MessageCodec{}))
	proc, err := goka.NewProcessor(brokers, gg, append(gokainterop.ProcessorOptions(gokainterop.WithSaramaConfig(oldest())),
		goka.WithStorageBuilder(storage.MemoryBuilder()), goka.WithLogger(newGokaLogger(t)))...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "lookup processor", proc.Run)
	wantLookups := map[string][]string{}
	for _, id := range ids {
		wantLookups[id] = []string{fmt.Sprint(rounds, true, nil)}
	}
	waitFor(t, 20*time.Second, "the lookups", func() (bool, string) {
		got := looked.snapshot()
		return cmp.Equal(got, wantLookups), fmt.Sprint(got)
	})
	for _, id := range ids {
		want[id] = append(want[id], strconv.Itoa(rounds+100))
	}
	waitFor(t, 20*time.Second, "the messages the goka processor sent to be counted", func() (bool, string) {
		got := committed.snapshot()
		return cmp.Equal(got, want), fmt.Sprintf("%v, processor %+v", got, p.Stats())
	})
}

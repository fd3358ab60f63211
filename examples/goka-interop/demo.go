package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	gokainterop "github.com/stateloop/stateloop/goka"
	"github.com/stateloop/stateloop/processor"
)

// ReaderGroup is the Goka group of the processor that reads TotalsTopic.
const ReaderGroup goka.Group = "goka-interop-reader"

// Deposit is one message the Goka emitter sends: Amount to the counter
// with id ID.
type Deposit struct {
	ID     string
	Amount int64
}

// Deposits are the messages the program sends.
var Deposits = []Deposit{
	{"alice", 1}, {"bob", 10}, {"alice", 2}, {"carol", 5}, {"bob", 10}, {"alice", 3},
}

// Config of a run.
type Config struct {
	// Brokers are the Kafka bootstrap brokers.
	Brokers []string
	// Deposits are sent in this order; nil means the package's Deposits.
	Deposits []Deposit
	// CommitInterval of the stateloop application; 0 means its default.
	CommitInterval time.Duration
	// Logger receives goka's log; nil discards it.
	Logger goka.Logger
}

// Result is what the Goka side saw.
type Result struct {
	// Egress holds the totals the Goka processor read from TotalsTopic,
	// by id, in the order of the records.
	Egress map[string][]int64
	// Totals holds the totals the Goka view read from the counter's table.
	Totals map[string]int64
}

type egressRecord struct {
	id    string
	total int64
}

// run runs the stateloop application, sends the deposits with a Goka
// emitter, reads the egress records with a Goka processor and the totals
// with a Goka view, and prints what happens to out. It stops everything
// before it returns.
func run(ctx context.Context, cfg Config, out io.Writer) (res Result, err error) {
	deposits := cfg.Deposits
	if deposits == nil {
		deposits = Deposits
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discard{}
	}
	topo, reg := Topology(), Registry()

	// 1. the stateloop application: it creates its topics, so it starts
	// first
	var opts []processor.Option
	if cfg.CommitInterval > 0 {
		opts = append(opts, processor.WithCommitInterval(cfg.CommitInterval))
	}
	p, err := processor.New(cfg.Brokers, topo, reg, opts...)
	if err != nil {
		return Result{}, err
	}
	app := background(ctx, p.Run)
	defer func() { err = errors.Join(err, app.stop("stateloop application")) }()
	if err := waitUntil(ctx, func() bool { return p.Stats().Ready || app.ended() }); err != nil {
		return Result{}, fmt.Errorf("wait for the stateloop application: %w", err)
	}
	if app.ended() {
		return Result{}, errors.New("the stateloop application stopped") // stop adds its error
	}
	fmt.Fprintf(out, "stateloop application %s ready: function %s, state in %s, messages on %s\n",
		App, CounterType, gokainterop.Table(topo, CounterType), gokainterop.LoopStream(topo))

	// 2. a Goka processor reads the egress topic, read_committed
	records := make(chan egressRecord, 256)
	gg := goka.DefineGroup(ReaderGroup,
		goka.Input(goka.Stream(TotalsTopic), gokainterop.Codec(codec.Text()), func(gctx goka.Context, msg any) {
			n, err := strconv.ParseInt(msg.(string), 10, 64)
			if err != nil {
				gctx.Fail(fmt.Errorf("total of %s: %w", gctx.Key(), err))
			}
			select {
			case records <- egressRecord{gctx.Key(), n}:
			case <-gctx.Context().Done():
			}
		}))
	sc := goka.DefaultConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest // a new group reads the topic from its start
	reader, err := goka.NewProcessor(cfg.Brokers, gg,
		append(gokainterop.ProcessorOptions(gokainterop.WithSaramaConfig(sc)), goka.WithLogger(logger))...)
	if err != nil {
		return Result{}, fmt.Errorf("goka processor: %w", err)
	}
	readerJob := background(ctx, reader.Run)
	defer func() { err = errors.Join(err, readerJob.stop("goka processor")) }()

	// 3. a Goka emitter sends the deposits to the counter's addresses,
	// key = id
	em, err := gokainterop.NewEmitter(cfg.Brokers, topo, goka.WithEmitterLogger(logger))
	if err != nil {
		return Result{}, fmt.Errorf("goka emitter: %w", err)
	}
	done := make(chan error, len(deposits))
	for _, d := range deposits {
		pr, err := gokainterop.Emit(em, functions.Address{Type: CounterType, ID: d.ID}, Amount.Of(d.Amount))
		if err != nil {
			return Result{}, errors.Join(err, em.Finish())
		}
		pr.Then(func(err error) { done <- err })
		fmt.Fprintf(out, "goka emitter -> %s/%s: +%d\n", CounterType, d.ID, d.Amount)
	}
	var emitErrs []error
	for range deposits {
		emitErrs = append(emitErrs, <-done)
	}
	if err := errors.Join(append(emitErrs, em.Finish())...); err != nil {
		return Result{}, fmt.Errorf("goka emitter: %w", err)
	}

	// 4. every deposit makes one egress record
	res.Egress = map[string][]int64{}
	for range deposits {
		select {
		case r := <-records:
			res.Egress[r.id] = append(res.Egress[r.id], r.total)
		case <-readerJob.done:
			return res, errors.New("the goka processor stopped") // stop adds its error
		case <-ctx.Done():
			return res, fmt.Errorf("wait for the egress records: %w", ctx.Err())
		}
	}
	ids := slices.Sorted(maps.Keys(res.Egress))
	for _, id := range ids {
		fmt.Fprintf(out, "goka processor %s <- %s: %s %s\n", ReaderGroup, TotalsTopic, id, join(res.Egress[id]))
	}

	// 5. a Goka view reads the counter's table; it may be a commit
	// behind the egress records at first
	view, err := gokainterop.NewView(cfg.Brokers, topo, CounterType,
		goka.WithViewStorageBuilder(storage.MemoryBuilder()), goka.WithViewLogger(logger))
	if err != nil {
		return res, fmt.Errorf("goka view: %w", err)
	}
	viewJob := background(ctx, view.Run)
	defer func() { err = errors.Join(err, viewJob.stop("goka view")) }()
	select {
	case <-view.WaitRunning():
	case <-viewJob.done:
		return res, errors.New("the goka view stopped") // stop adds its error
	case <-ctx.Done():
		return res, fmt.Errorf("wait for the goka view to recover: %w", ctx.Err())
	}
	var getErr error
	err = waitUntil(ctx, func() bool {
		res.Totals = map[string]int64{}
		for _, id := range ids {
			n, ok, err := gokainterop.Get(view, id, Total)
			if err != nil {
				getErr = err
				return true
			}
			if ok {
				res.Totals[id] = n
			}
			if egress := res.Egress[id]; n != egress[len(egress)-1] {
				return false
			}
		}
		return true
	})
	if err = errors.Join(getErr, err); err != nil {
		return res, fmt.Errorf("goka view: %w", err)
	}
	var totals []string
	for _, id := range ids {
		totals = append(totals, fmt.Sprintf("%s %d", id, res.Totals[id]))
	}
	fmt.Fprintf(out, "goka view of %s: %s\n", view.Topic(), strings.Join(totals, ", "))
	return res, nil
}

// job is a Run method running in the background.
type job struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// background runs r until stop is called.
func background(ctx context.Context, r func(context.Context) error) *job {
	ctx, cancel := context.WithCancel(ctx)
	j := &job{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		j.err = r(ctx)
	}()
	return j
}

// ended reports whether r has returned.
func (j *job) ended() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// stop stops r and returns its error.
func (j *job) stop(what string) error {
	j.cancel()
	<-j.done
	if j.err != nil && !errors.Is(j.err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, j.err)
	}
	return nil
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func join(ns []int64) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, " ")
}

// discard is a goka.Logger that drops everything.
type discard struct{}

func (discard) Print(...any)          {}
func (discard) Println(...any)        {}
func (discard) Printf(string, ...any) {}

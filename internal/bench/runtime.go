package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

// side is one of the two things the bench measures.
type side interface {
	// topics are the input and output topics.
	topics() (in, out string)
	// start returns once the side consumes.
	start(ctx context.Context) error
	// stop commits, leaves the group and returns.
	stop() error
	// commits is the number of transactions committed so far.
	commits() int64
	// written lists the topics the side writes, for their offsets.
	written() []TopicOffsets
	// failed reports that the side stopped by itself.
	failed() <-chan error
}

// The counter application.
const (
	// CounterType is the function type of the runtime side.
	CounterType functions.TypeName = "bench/counter"
	// OutEgress is its egress.
	OutEgress functions.TypeName = "bench/out"
)

var (
	// tickType is the type of the ingress records: the input value.
	tickType = functions.NewType("bench/tick", codec.Bytes())
	// countState is the count of an id.
	countState = functions.NewState("count", functions.LongType)
)

// CounterApp returns the application of the runtime side: the ingress
// topic in routes each record to bench/counter/<key>, which adds one to
// its count and writes one record to topic out with key = id and value =
// the input value followed by the count (8 bytes, big endian). Each
// invocation first does work rounds of hashing (see calibrateWork).
func CounterApp(app, in, out string, partitions int32, work int) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     CounterType,
		Function: counting(work, writeOutput),
		State:    []functions.StateSpec{countState},
		Egresses: []functions.TypeName{OutEgress},
	})
	topo := topology.Topology{
		App:        app,
		Partitions: partitions,
		Functions:  []functions.TypeName{CounterType},
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(in), ValueType: tickType.Name(), Targets: []functions.TypeName{CounterType}}},
		Egresses:   []topology.Egress{{ID: OutEgress, Topics: []topology.Topic{topology.Topic(out)}}},
	}
	return topo, reg
}

// counting returns a function of bench/tick messages that does work
// rounds of hashing, adds one to the count in its state and then calls
// then with the message's value and the new count.
func counting(work int, then func(ctx functions.Context, v []byte, n int64)) functions.Function {
	return functions.Router(functions.Handle(tickType, func(ctx functions.Context, v []byte) error {
		burn(work)
		n, _ := countState.Get(ctx)
		n++
		countState.Set(ctx, n)
		then(ctx, v, n)
		return nil
	}))
}

// writeOutput writes the output record of an input value v whose count is
// n to the egress bench/out: key = id, value = v followed by n.
func writeOutput(ctx functions.Context, v []byte, n int64) {
	ctx.SendEgress(OutEgress, functions.KafkaMessage("", ctx.Self().ID, outputValue(v, n)))
}

// runtimeSide runs the counter application in a processor; the remote
// side runs it too, with bench/counter served over HTTP.
type runtimeSide struct {
	b       *bench
	label   string // the side's name, in errors
	threads int    // stream threads of the processor
	topo    topology.Topology
	reg     *functions.Registry
	opts    []processor.Option // added to the bench's options
	p       *processor.Processor
	clock   commitClock

	cancel context.CancelFunc
	done   chan struct{}
	err    error
	fail   chan error
}

func newRuntimeSide(b *bench, run sideRun) *runtimeSide {
	app := fmt.Sprintf("bench-%s-t%d", b.runID, run.threads)
	topo, reg := CounterApp(app, app+"-in", app+"-out", b.cfg.Partitions, b.work)
	return &runtimeSide{b: b, label: run.label, threads: run.threads, topo: topo, reg: reg, fail: make(chan error, 1)}
}

func (s *runtimeSide) topics() (string, string) {
	return string(s.topo.Ingresses[0].Topic), string(s.topo.Egresses[0].Topics[0])
}

func (s *runtimeSide) start(ctx context.Context) error {
	cfg := s.b.cfg
	opts := append([]processor.Option{
		processor.WithCommitInterval(cfg.CommitInterval),
		processor.WithCommitCount(cfg.CommitCount),
		processor.WithLogger(cfg.Logger),
		processor.WithThreads(s.threads),
		processor.WithMetrics(&s.clock),
	}, s.opts...)
	p, err := processor.New(s.b.brokers, s.topo, s.reg, opts...)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", s.label, err)
	}
	s.p = p
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		s.err = p.Run(runCtx)
		if runCtx.Err() == nil {
			err := s.err
			if err == nil {
				err = errors.New("the processor stopped by itself")
			}
			s.fail <- err
		}
	}()
	deadline := time.After(time.Minute)
	for !p.Stats().Ready {
		select {
		case <-s.done:
			return fmt.Errorf("bench: %s: processor stopped before it was ready: %w", s.label, s.err)
		case <-deadline:
			return fmt.Errorf("bench: %s: the processor was not ready after a minute", s.label)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (s *runtimeSide) stop() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	<-s.done
	s.cancel = nil
	return s.err
}

func (s *runtimeSide) commits() int64 { return s.p.Stats().Commits }

// processorStats returns the processor's counters (see statsSide).
func (s *runtimeSide) processorStats() processor.Stats { return s.p.Stats() }

// commitTimes returns the commit times so far (see statsSide).
func (s *runtimeSide) commitTimes() commitTimes { return s.clock.read() }

func (s *runtimeSide) written() []TopicOffsets {
	_, out := s.topics()
	return []TopicOffsets{
		{Role: "loop", Topic: string(s.topo.LoopTopic())},
		{Role: "changelog", Topic: string(s.topo.TableTopic(CounterType))},
		{Role: "inbox", Topic: string(s.topo.InboxTopic())},
		{Role: "egress", Topic: out},
	}
}

func (s *runtimeSide) failed() <-chan error { return s.fail }

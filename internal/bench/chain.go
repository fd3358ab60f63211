package bench

import (
	"fmt"
	"strconv"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// ChainType returns the function type of the k-th function (from 1) of
// the chain side: bench/chain-k.
func ChainType(k int) functions.TypeName {
	return functions.TypeName("bench/chain-" + strconv.Itoa(k))
}

// ChainApp returns the application of the chain side, length function
// types in a row: the ingress topic in routes each record to
// bench/chain-1/<key>; bench/chain-k adds one to the count in its state
// and sends the record's value to bench/chain-(k+1)/<key>. Every message
// goes to the same id, so to the same partition as its sender: the
// runtime delivers it in the sender's transaction (local delivery). The
// last function writes one record to topic out with key = id and value =
// the input value followed by its count, as the counter does. Each
// invocation first does work rounds of hashing.
func ChainApp(app, in, out string, partitions int32, length, work int) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	topo := topology.Topology{
		App:        app,
		Partitions: partitions,
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(in), ValueType: tickType.Name(), Targets: []functions.TypeName{ChainType(1)}}},
		Egresses:   []topology.Egress{{ID: OutEgress, Topics: []topology.Topic{topology.Topic(out)}}},
	}
	for k := 1; k <= length; k++ {
		spec := functions.Spec{Type: ChainType(k), State: []functions.StateSpec{countState}}
		if k == length {
			spec.Function = counting(work, writeOutput)
			spec.Egresses = []functions.TypeName{OutEgress}
		} else {
			next := ChainType(k + 1)
			spec.Function = counting(work, func(ctx functions.Context, v []byte, _ int64) {
				ctx.Send(functions.Address{Type: next, ID: ctx.Self().ID}, tickType.Of(v))
			})
		}
		reg.MustRegister(spec)
		topo.Functions = append(topo.Functions, spec.Type)
	}
	return topo, reg
}

// chainSide is the runtime side with the chain application.
type chainSide struct {
	*runtimeSide
	length int
}

func newChainSide(b *bench, run sideRun) *chainSide {
	app := "bench-" + b.runID + "-chain"
	topo, reg := ChainApp(app, app+"-in", app+"-out", b.cfg.Partitions, b.cfg.ChainLength, b.work)
	rs := &runtimeSide{b: b, label: run.label, threads: run.threads, topo: topo, reg: reg, fail: make(chan error, 1)}
	return &chainSide{runtimeSide: rs, length: b.cfg.ChainLength}
}

// written lists the loop topic, the changelog of every function of the
// chain (under one role), the inbox topic and the egress topic.
func (s *chainSide) written() []TopicOffsets {
	_, out := s.topics()
	ts := []TopicOffsets{{Role: "loop", Topic: string(s.topo.LoopTopic())}}
	for _, fn := range s.topo.Functions {
		ts = append(ts, TopicOffsets{Role: "changelogs", Topic: string(s.topo.TableTopic(fn))})
	}
	return append(ts, TopicOffsets{Role: "inbox", Topic: string(s.topo.InboxTopic())}, TopicOffsets{Role: "egress", Topic: out})
}

// describeChain names the chain for the report.
func describeChain(length int) string {
	return fmt.Sprintf("%d functions bench/chain-1 ... bench/chain-%d, each sending to the next at the same id", length, length)
}

package processor

import (
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// BenchmarkCycle measures the transaction cycle on the fake broker, per
// ingress record: "counter" invokes unit/counter (state and one egress
// record), "chain" the four functions of the chain application (three
// local hops, state in each, one egress record). A transaction commits
// every 100 records. Its allocations are the figure to watch: features
// that are off (tracing, say) must not add any. "... traced" are the same
// with tracing on, every span sampled and none exported: what the
// processor's spans and trace headers cost.
func BenchmarkCycle(b *testing.B) {
	chainValue, err := chainSeq.Codec().Encode(7)
	if err != nil {
		b.Fatal(err)
	}
	apps := []struct {
		name  string
		app   func() (topology.Topology, *functions.Registry)
		value []byte
	}{
		{"counter", unitCounterApp, str("x")},
		{"chain", func() (topology.Topology, *functions.Registry) { return chainApp("bench") }, chainValue},
	}
	for _, traced := range []bool{false, true} {
		for _, a := range apps {
			name, opts := a.name, []Option(nil)
			if traced {
				name += " traced"
				opts = append(opts, WithTracerProvider(sdktrace.NewTracerProvider()))
			}
			b.Run(name, func(b *testing.B) {
				topo, reg := a.app()
				benchCycle(b, newCycleRig(b, topo, reg, opts...), string(topo.Ingresses[0].Topic), a.value)
			})
		}
	}
}

func benchCycle(b *testing.B, r *cycleRig, topic string, value []byte) {
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = "id" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.ingress(topic, ids[i%len(ids)], value)
		if i%100 == 99 {
			r.commit()
		}
	}
	b.StopTimer()
	if r.s.txn != nil {
		r.commit()
	}
}

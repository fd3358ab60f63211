package processor

import (
	"strconv"
	"testing"
)

// BenchmarkCycle measures the transaction cycle on the fake broker, per
// ingress record: "counter" invokes unit/counter (state and one egress
// record), "chain" the four functions of the chain application (three
// local hops, state in each, one egress record). A transaction commits
// every 100 records. Its allocations are the figure to watch: features
// that are off (tracing, say) must not add any.
func BenchmarkCycle(b *testing.B) {
	b.Run("counter", func(b *testing.B) {
		topo, reg := unitCounterApp()
		benchCycle(b, newCycleRig(b, topo, reg), "unit-in", str("x"))
	})
	b.Run("chain", func(b *testing.B) {
		topo, reg := chainApp("bench")
		v, err := chainSeq.Codec().Encode(7)
		if err != nil {
			b.Fatal(err)
		}
		benchCycle(b, newCycleRig(b, topo, reg), string(topo.Ingresses[0].Topic), v)
	})
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

package processor

import (
	"strconv"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// The chain application: an ingress record (a sequence number, keyed by
// id) goes to chain/a, which sends it to chain/b of the same id, then on
// to chain/c and chain/d, which writes it to <app>-done keyed by the id.
// Every step counts its messages. All four addresses of an id live in one
// partition, so every hop is delivered locally, in the transaction of the
// ingress record.

var (
	chainTypes = []functions.TypeName{"chain/a", "chain/b", "chain/c", "chain/d"}
	chainSeq   = functions.NewType("chain/seq", codec.JSON[int]())
	chainCount = functions.NewState("n", functions.LongType)
	chainOut   = functions.TypeName("chain/done")
)

func chainApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	for i, fn := range chainTypes {
		spec := functions.Spec{Type: fn, State: []functions.StateSpec{chainCount}}
		last := i == len(chainTypes)-1
		var next functions.TypeName
		if !last {
			next = chainTypes[i+1]
		} else {
			spec.Egresses = []functions.TypeName{chainOut}
		}
		spec.Function = functions.Router(functions.Handle(chainSeq, func(ctx functions.Context, seq int) error {
			n, _ := chainCount.Get(ctx)
			chainCount.Set(ctx, n+1)
			if last {
				ctx.SendEgress(chainOut, functions.KafkaMessage("", ctx.Self().ID, []byte(strconv.Itoa(seq))))
				return nil
			}
			ctx.Send(functions.Address{Type: next, ID: ctx.Self().ID}, chainSeq.Of(seq))
			return nil
		}))
		reg.MustRegister(spec)
	}
	topo := topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  chainTypes,
		Ingresses:  []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: chainSeq.Name(), Targets: chainTypes[:1]}},
		Egresses:   []topology.Egress{{ID: chainOut, Topics: []topology.Topic{topology.Topic(app + "-done")}}},
	}
	return topo, reg
}

// checkChainExact checks that every sequence number reached the end of the
// chain exactly once, in order per id, and that every step counted each
// message of every id once.
func checkChainExact(t testing.TB, client sarama.Client, topo topology.Topology, perID map[string]int) {
	t.Helper()
	seen := map[string]int{}
	last := map[string]int{}
	outOfOrder := 0
	for _, r := range readTopic(t, client, string(topo.Egresses[0].Topics[0])) {
		seen[string(r.Value)]++
		seq, _ := strconv.Atoi(string(r.Value))
		if prev, ok := last[r.Key]; ok && seq < prev {
			outOfOrder++
		}
		last[r.Key] = seq
	}
	total, dups, missing := tallySeqs(seen, perID)
	if dups > 0 || missing > 0 || outOfOrder > 0 {
		t.Errorf("end of the chain: %d sequence numbers twice or more, %d missing, %d out of order per id; want each of %d once, in order",
			dups, missing, outOfOrder, total)
	}
	for _, fn := range chainTypes {
		counts := tableCountsOf(t, client, topo, fn, "n")
		for id, n := range perID {
			if counts[id] != int64(n) {
				t.Errorf("%s/%s counted %d messages, want %d", fn, id, counts[id], n)
			}
		}
	}
}

// TestChainOfLocalHopsIsExactAndInOrderAcrossAbortsAndRestarts streams
// 6,000 records through the four-step chain while one commit in six
// aborts and the processor restarts twice: hops are delivered locally
// whenever the gate is open, and the counts, the egress and its order per
// id are exact. How many hops stay local depends on timing (an abort or a
// restart closes the gate until the routed records are read back), so the
// test asks only that local delivery happened; the fake-broker tests in
// cycle_test.go pin down when it must.
func TestChainOfLocalHopsIsExactAndInOrderAcrossAbortsAndRestarts(t *testing.T) {
	brokers, app := testBroker(t, "chain")
	topo, reg := chainApp(app)
	var local int64
	cycleRun(t, brokers, topo, reg, 6000, 32, produceSeqs, checkChainExact, func(s Stats) { local += s.Local })
	if local == 0 {
		t.Errorf("no message was delivered locally; want local delivery for hops while the gate is open")
	}
	t.Logf("%d messages delivered locally", local)
}

// TestChainOfLocalHopsIsExactAcrossKill9 is the crash test with the chain.
func TestChainOfLocalHopsIsExactAcrossKill9(t *testing.T) {
	crashRun(t, "chain", 10000, 6, 1, (*appProcess).kill, produceSeqs, checkChainExact)
}

func TestChainOfLocalHopsIsExactAcrossKill9OfWholeProcessTree(t *testing.T) {
	crashRun(t, "chain", 10000, 6, 1, (*appProcess).killTree, produceSeqs, checkChainExact)
}

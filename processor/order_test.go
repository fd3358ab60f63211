package processor

import (
	"fmt"

	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

var (
	orderFn   = functions.TypeName("test/order")
	seqType   = functions.NewType("test/seq", codec.Text())
	lastSeq   = functions.NewState("last", functions.LongType)
	orderSeen = functions.TypeName("test/seen")
)

// orderApp checks per id that ingress sequence numbers arrive in increasing
// order; it writes "<id> <seq> ok" or "<id> <seq> out-of-order" per record.
func orderApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: orderFn,
		Function: functions.Router(functions.Handle(seqType, func(ctx functions.Context, v string) error {
			// slow enough that loop partitions build a backlog while their
			// ingress records are routed by another instance
			time.Sleep(time.Millisecond)
			seq, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return functions.Permanent(err)
			}
			last, _ := lastSeq.Get(ctx)
			verdict := "ok"
			if seq <= last {
				verdict = "out-of-order"
			}
			lastSeq.Set(ctx, seq)
			ctx.SendEgress(orderSeen, functions.KafkaMessage("", ctx.Self().ID, []byte(fmt.Sprintf("%s %d %s", ctx.Self().ID, seq, verdict))))
			return nil
		})),
		State:    []functions.StateSpec{lastSeq},
		Egresses: []functions.TypeName{orderSeen},
	})
	topo := topology.Topology{
		App: app, Partitions: 4, Functions: []functions.TypeName{orderFn},
		Ingresses: []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: seqType.Name(), Targets: []functions.TypeName{orderFn}}},
		Egresses:  []topology.Egress{{ID: orderSeen, Topics: []topology.Topic{topology.Topic(app + "-seen")}}},
	}
	return topo, reg
}

// TestIngressOrderPerAddressAcrossRebalances streams increasing sequence
// numbers per key while instances join and leave, so that ingress and loop
// partitions change owners and ingress records switch between a hop through
// the loop topic and direct delivery. Every function must see its
// sequence numbers in order, each exactly once.
func TestIngressOrderPerAddressAcrossRebalances(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running rebalance test")
	}
	brokers, app := testBroker(t, "order")
	topo, reg := orderApp(app)
	client := testClient(t, brokers)
	newProc := func(id string) *Processor {
		p, err := New(brokers, topo, reg, WithInstanceID(id), WithCommitInterval(30*time.Millisecond), WithSessionTimeout(2*time.Second), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sp, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	const ids = 16
	seq := 0
	// send a round (one record per id) every 20ms for a while
	send := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			seq++
			var msgs []*sarama.ProducerMessage
			for i := 0; i < ids; i++ {
				id := "id" + strconv.Itoa(i)
				// not co-partitioned with the loop topic (as with a Java
				// producer's murmur2), so ingress and loop partitions of an
				// id can have different owners
				msgs = append(msgs, &sarama.ProducerMessage{Topic: app + "-in", Partition: (partitionFor(id, 4) + 1) % 4,
					Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(strconv.Itoa(seq))})
			}
			if err := sp.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var direct int64
	start := func(id string) func() {
		p := newProc(id)
		stop := runProcessor(t, p)
		waitFor(t, 20*time.Second, "instance "+id+" ready", func() (bool, string) { return p.Stats().Ready, "" })
		return func() { stop(); direct += p.Stats().Direct }
	}
	const phase = 1500 * time.Millisecond
	stopA := start("a")
	send(phase)
	stopB := start("b")
	send(phase)
	stopA()
	send(phase)
	stopC := start("c")
	send(phase)
	stopB()
	send(phase)
	stopD := start("d")
	send(phase)
	stopC()
	want := ids * seq
	waitFor(t, 60*time.Second, "every record seen", func() (bool, string) {
		n := len(readTopic(t, client, app+"-seen"))
		return n >= want, fmt.Sprintf("%d of %d", n, want)
	})
	seen := map[string]int{}
	for _, r := range readTopic(t, client, app+"-seen") {
		v := string(r.Value)
		if strings.HasSuffix(v, "out-of-order") {
			t.Errorf("function saw a sequence number out of order: %s", v)
		}
		seen[strings.TrimSuffix(v, " ok")]++
	}
	if len(seen) != want {
		t.Errorf("got %d distinct (id, seq) pairs, want %d", len(seen), want)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times, want once", k, n)
		}
	}
	stopD()
	if direct == 0 {
		t.Errorf("no ingress record was delivered directly; the test did not exercise the switch")
	}
	t.Logf("%d ingress messages delivered directly of %d", direct, want)
}

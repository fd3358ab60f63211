package processor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// The cycle application: every ingress record starts a hop message with 4
// hops left at test/ping. A function receiving a hop counts it in its
// state; with hops left it passes hops-1 on, to itself when hops is odd and
// to the other function type (same id) when it is even; with none left it
// writes the sequence number to the egress. So each record makes
// ping(4) -> pong(3) -> pong(2) -> ping(1) -> ping(0) -> egress:
// three invocations of ping, two of pong, messages to self and a cycle.

type hop struct {
	Seq  int `json:"seq"`
	Hops int `json:"hops"`
}

var (
	pingFn   = functions.TypeName("test/ping")
	pongFn   = functions.TypeName("test/pong")
	hopType  = functions.NewType("test/hop", codec.JSON[hop]())
	hopCount = functions.NewState("hops", functions.LongType)
	doneOut  = functions.TypeName("test/done")
)

func cycleApp(app string) (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	for _, self := range []functions.TypeName{pingFn, pongFn} {
		other := pongFn
		if self == pongFn {
			other = pingFn
		}
		reg.MustRegister(functions.Spec{
			Type: self,
			Function: functions.Router(functions.Handle(hopType, func(ctx functions.Context, h hop) error {
				n, _ := hopCount.Get(ctx)
				hopCount.Set(ctx, n+1)
				switch {
				case h.Hops == 0:
					ctx.SendEgress(doneOut, functions.KafkaMessage("", strconv.Itoa(h.Seq), []byte(strconv.Itoa(h.Seq))))
				case h.Hops%2 == 1:
					ctx.Send(ctx.Self(), hopType.Of(hop{Seq: h.Seq, Hops: h.Hops - 1}))
				default:
					ctx.Send(functions.Address{Type: other, ID: ctx.Self().ID}, hopType.Of(hop{Seq: h.Seq, Hops: h.Hops - 1}))
				}
				return nil
			})),
			State:    []functions.StateSpec{hopCount},
			Egresses: []functions.TypeName{doneOut},
		})
	}
	topo := topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  []functions.TypeName{pingFn, pongFn},
		Ingresses: []topology.Ingress{{
			Topic:     topology.Topic(app + "-in"),
			ValueType: hopType.Name(),
			Router: func(rec topology.Record) ([]functions.OutgoingMessage, error) {
				seq, err := strconv.Atoi(string(rec.Value))
				if err != nil {
					return nil, err
				}
				return []functions.OutgoingMessage{{To: functions.Address{Type: pingFn, ID: string(rec.Key)}, Message: hopType.Of(hop{Seq: seq, Hops: 4})}}, nil
			},
		}},
		Egresses: []topology.Egress{{ID: doneOut, Topics: []topology.Topic{topology.Topic(app + "-done")}}},
	}
	return topo, reg
}

// tableCounts reads a function type's table and returns the hop count of
// every address.
func tableCounts(t testing.TB, client sarama.Client, topo topology.Topology, fn functions.TypeName) map[string]int64 {
	t.Helper()
	return tableCountsOf(t, client, topo, fn, "hops")
}

// tableCountsOf reads a function type's table and returns the long state
// value name of every address.
func tableCountsOf(t testing.TB, client sarama.Client, topo topology.Topology, fn functions.TypeName, name string) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	for _, r := range readTopic(t, client, string(topo.TableTopic(fn))) {
		if r.Value == nil {
			delete(counts, r.Key)
			continue
		}
		rec, err := wire.DecodeStateRecord(r.Value)
		if err != nil {
			t.Fatalf("table %s key %s: %v", fn, r.Key, err)
		}
		n, err := codec.Int64().Decode(rec[name].Value)
		if err != nil {
			t.Fatalf("table %s key %s: %v", fn, r.Key, err)
		}
		counts[r.Key] = n
	}
	return counts
}

// checkCycleExact checks that every record's effects happened exactly once:
// each sequence number on the egress once, and exact hop counts per id.
func checkCycleExact(t testing.TB, client sarama.Client, topo topology.Topology, perID map[string]int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range readTopic(t, client, string(topo.Egresses[0].Topics[0])) {
		seen[string(r.Value)]++
	}
	total, dups, missing := tallySeqs(seen, perID)
	if dups > 0 || missing > 0 || len(seen) != total {
		t.Errorf("egress: %d sequence numbers twice or more, %d missing, %d distinct; want each of %d exactly once", dups, missing, len(seen), total)
	}
	ping, pong := tableCounts(t, client, topo, pingFn), tableCounts(t, client, topo, pongFn)
	for id, n := range perID {
		if ping[id] != int64(3*n) || pong[id] != int64(2*n) {
			t.Errorf("id %s: ping counted %d hops, pong %d; want %d and %d", id, ping[id], pong[id], 3*n, 2*n)
		}
	}
}

// tallySeqs returns the number of records produced (perID), and how many
// of their sequence numbers seen counts twice or more, and not at all.
func tallySeqs(seen map[string]int, perID map[string]int) (total, dups, missing int) {
	for _, n := range perID {
		total += n
	}
	for seq := 0; seq < total; seq++ {
		switch c := seen[strconv.Itoa(seq)]; {
		case c == 0:
			missing++
		case c > 1:
			dups++
		}
	}
	return total, dups, missing
}

// egressDistinct counts distinct sequence numbers on the egress.
func egressDistinct(t testing.TB, client sarama.Client, topic string) int {
	seen := map[string]bool{}
	for _, r := range readTopic(t, client, topic) {
		seen[string(r.Value)] = true
	}
	return len(seen)
}

// produceSeqs writes records seq from..to-1 with keys cycling over ids.
func produceSeqs(t testing.TB, client sarama.Client, topic string, from, to, ids int, perID map[string]int) {
	t.Helper()
	var recs [][2][]byte
	for seq := from; seq < to; seq++ {
		id := "id" + strconv.Itoa(seq%ids)
		perID[id]++
		recs = append(recs, [2][]byte{[]byte(id), []byte(strconv.Itoa(seq))})
		if len(recs) == 500 {
			produce(t, client, topic, recs...)
			recs = nil
		}
	}
	if len(recs) > 0 {
		produce(t, client, topic, recs...)
	}
}

// TestExactlyOnceAcrossAbortsAndRestarts pushes 10,000 records through the
// cycle application while transactions are aborted on purpose (one commit
// in six fails, after its records were produced, so the broker aborts real
// transactions) and the processor is stopped and restarted on its reused
// local state. At the end every effect must have happened exactly once.
func TestExactlyOnceAcrossAbortsAndRestarts(t *testing.T) {
	brokers, app := testBroker(t, "eos")
	exactlyOnceScenario(t, brokers, app, false)
}

// TestExactlyOnceAcrossAbortsAndRestartsWithFourThreads is the same with
// four stream threads: four group members in the one process, each with
// its own producer and transactions, sharing the data directory.
func TestExactlyOnceAcrossAbortsAndRestartsWithFourThreads(t *testing.T) {
	brokers, app := testBroker(t, "eos4")
	topo, reg := cycleApp(app)
	cycleScenario(t, brokers, topo, reg, false, WithThreads(4))
}

// exactlyOnceScenario runs the cycle application through injected aborts
// and restarts, and, with fencing, also fences the running producer twice
// with a new producer of the same transactional id (as a restarted twin
// would).
func exactlyOnceScenario(t *testing.T, brokers []string, app string, fencing bool) {
	topo, reg := cycleApp(app)
	cycleScenario(t, brokers, topo, reg, fencing)
}

// cycleScenario is exactlyOnceScenario for a given build of the cycle
// application, with more processor options.
func cycleScenario(t *testing.T, brokers []string, topo topology.Topology, reg *functions.Registry, fencing bool, opts ...Option) {
	runScenario(t, brokers, topo, reg, runSpec{total: 10000, ids: 64, produce: produceSeqs, check: checkCycleExact, fencing: fencing}, opts...)
}

// runSpec is what runScenario streams through an application and checks.
type runSpec struct {
	total, ids int
	// produce writes the input records from..to-1, counting them per id
	produce func(t testing.TB, client sarama.Client, topic string, from, to, ids int, perID map[string]int)
	// check counts the effects once everything is processed
	check   func(t testing.TB, client sarama.Client, topo topology.Topology, perID map[string]int)
	fencing bool
	// stats, if set, gets each processor's stats when it is stopped
	stats func(Stats)
}

// cycleRun streams total records through an application with runScenario.
func cycleRun(t *testing.T, brokers []string, topo topology.Topology, reg *functions.Registry, total, ids int,
	produce func(testing.TB, sarama.Client, string, int, int, int, map[string]int),
	check func(testing.TB, sarama.Client, topology.Topology, map[string]int), stats func(Stats), opts ...Option) {
	runScenario(t, brokers, topo, reg, runSpec{total: total, ids: ids, produce: produce, check: check, stats: stats}, opts...)
}

// runScenario streams records through an application (input <app>-in,
// output <app>-done) while one commit in six fails and the processor is
// restarted twice on its data directory (with spec.fencing, its producer
// is also fenced twice by a twin), and then checks the effects.
func runScenario(t *testing.T, brokers []string, topo topology.Topology, reg *functions.Registry, spec runSpec, opts ...Option) {
	if testing.Short() {
		t.Skip("long-running exactly-once test")
	}
	app := topo.App
	dir := t.TempDir()
	var aborts atomic.Int64
	rng := rand.New(rand.NewPCG(1, 2))
	var rngMu sync.Mutex
	var committedMu sync.Mutex
	committed := map[RecordRef]int{}
	faults := &Faults{Committed: func(refs []RecordRef) {
		committedMu.Lock()
		defer committedMu.Unlock()
		for _, r := range refs {
			committed[r]++
		}
	}, BeforeCommit: func() error {
		rngMu.Lock()
		defer rngMu.Unlock()
		if rng.IntN(6) == 0 {
			aborts.Add(1)
			return errors.New("injected commit failure")
		}
		return nil
	}}
	newProc := func() *Processor {
		p, err := New(brokers, topo, reg, append([]Option{WithDataDir(dir), WithInstanceID("i1"), WithCommitInterval(20 * time.Millisecond),
			WithCommitCount(700), WithFaults(faults), WithSessionTimeout(2 * time.Second), WithLogger(testLogger(t))}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	client := testClient(t, brokers)
	perID := map[string]int{}
	total, ids := spec.total, spec.ids
	stopped := func(p *Processor, stop func()) {
		stop()
		if spec.stats != nil {
			spec.stats(p.Stats())
		}
	}

	p := newProc()
	stop := runProcessor(t, p)
	spec.produce(t, client, app+"-in", 0, total*3/10, ids, perID)
	waitFor(t, 60*time.Second, "a tenth of the records done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total/10, fmt.Sprintf("%d done, stats %+v", n, p.Stats())
	})
	if spec.fencing {
		// a twin with the same transactional id fences the running producer
		fence(t, brokers, app+"-i1")
	}
	spec.produce(t, client, app+"-in", total*3/10, total*6/10, ids, perID)
	waitFor(t, 60*time.Second, "a third of the records done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total*35/100, fmt.Sprintf("%d done", n)
	})
	stopped(p, stop)
	p = newProc()
	stop = runProcessor(t, p)
	spec.produce(t, client, app+"-in", total*6/10, total, ids, perID)
	if spec.fencing {
		fence(t, brokers, app+"-i1")
	}
	waitFor(t, 60*time.Second, "more records done", func() (bool, string) {
		n := egressDistinct(t, client, app+"-done")
		return n >= total*8/10, fmt.Sprintf("%d done", n)
	})
	stopped(p, stop)
	p = newProc()
	stop = runProcessor(t, p)
	deadline := time.Now().Add(60 * time.Second)
	for egressDistinct(t, client, app+"-done") < total && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// let the last commits settle, then count
	time.Sleep(200 * time.Millisecond)
	stopped(p, stop)
	spec.check(t, client, topo, perID)
	if t.Failed() {
		committedMu.Lock()
		for part := int32(0); part < 4; part++ {
			var dupl, gaps []int64
			var max int64 = -1
			for r, n := range committed {
				if r.Topic == app+"-loop" && r.Partition == part {
					if n > 1 {
						dupl = append(dupl, r.Offset)
					}
					if r.Offset > max {
						max = r.Offset
					}
				}
			}
			recs := readTopic(t, client, app+"-loop")
			for _, r := range recs {
				if r.Partition == part && committed[RecordRef{app + "-loop", part, r.Offset}] == 0 {
					gaps = append(gaps, r.Offset)
				}
			}
			t.Logf("loop/%d: committed twice %v; committed data records never processed in a committed txn: %v", part, dupl, gaps)
		}
		committedMu.Unlock()
		t.Logf("trace of missing sequence numbers:\n%s", traceSeqs(t, client, app+"-loop", missingSeqs(t, client, app+"-done", total)))
	}
	if aborts.Load() == 0 {
		t.Errorf("no transaction was aborted; the test did not exercise aborts")
	}
	t.Logf("injected aborts: %d", aborts.Load())
}

// fence starts and closes a transactional producer with the given id; its
// InitProducerId bumps the epoch and fences the current holder.
func fence(t testing.TB, brokers []string, txnID string) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_0_0_0
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Transaction.ID = txnID
	sc.Net.MaxOpenRequests = 1
	ap, err := sarama.NewAsyncProducer(brokers, sc)
	if err != nil {
		t.Fatalf("fencing producer: %v", err)
	}
	ap.Close()
}

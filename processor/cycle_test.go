package processor

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/topology"
)

// Unit tests of the transaction cycle, on fakeKafka: no broker.

// cycleRig is a session on a fakeKafka with every loop partition ready.
type cycleRig struct {
	t     testing.TB
	p     *Processor
	fk    *fakeKafka
	s     *session
	clock *fakeClock
}

func newCycleRig(t testing.TB, topo topology.Topology, reg *functions.Registry, opts ...Option) *cycleRig {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	p, err := New([]string{"fake:9092"}, topo, reg, append([]Option{WithClock(clock.Now), WithRetries(0, time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	fk := newFakeKafka()
	if err := p.ensureTopics(fk); err != nil {
		t.Fatal(err)
	}
	return &cycleRig{t: t, p: p, fk: fk, clock: clock, s: rigSession(t, p, fk)}
}

// rigSession starts a session that owns every loop partition, recovered
// from the fake's changelogs into new in-memory stores.
func rigSession(t testing.TB, p *Processor, fk *fakeKafka) *session {
	t.Helper()
	n := p.topo.PartitionCount()
	p.assigned(0, nil)
	s := newSession(context.Background(), p, 0, fk, &producerSlot{p: fk, make: func() (producer, error) { return fk, nil }},
		groupMeta{Group: p.topo.App}, int(n))
	for part := range n {
		r, err := p.recoverPartition(context.Background(), fk, func(part int32) (*store, error) { return openStore("", part) }, nil, part, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.handle(item{ready: r}); err != nil {
			t.Fatal(err)
		}
	}
	if !p.Stats().Ready {
		t.Fatal("session not ready after every partition recovered")
	}
	return s
}

// consume hands a committed record of topic/part to the session, as the
// consumer group's claim does (Processor.consumed).
func (r *cycleRig) consume(topic string, part int32, key string, value []byte, headers ...header) {
	r.t.Helper()
	off := r.fk.append(topic, part, fakeRecord{key: []byte(key), value: value, headers: headers})
	m := &sarama.ConsumerMessage{Topic: topic, Partition: part, Offset: off, Key: []byte(key), Value: value}
	for _, h := range headers {
		m.Headers = append(m.Headers, &sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if err := r.s.handle(item{msg: r.p.consumed(m)}); err != nil {
		r.t.Fatal(err)
	}
}

// ingress hands an ingress record keyed by id to the session, on the
// partition the id hashes to.
func (r *cycleRig) ingress(topic, id string, value []byte) {
	r.consume(topic, partitionFor(id, r.p.topo.PartitionCount()), id, value)
}

func (r *cycleRig) commit() {
	r.t.Helper()
	if r.s.txn == nil {
		r.t.Fatal("no transaction to commit")
	}
	r.s.commit()
	if err := r.s.fatalErr(); err != nil {
		r.t.Fatal(err)
	}
}

// values returns the committed values of a topic, in partition order.
func (r *cycleRig) values(topic string) []string {
	var out []string
	for _, rec := range r.fk.all(topic) {
		out = append(out, string(rec.value))
	}
	return out
}

// count returns the committed count of an address of unitCounterApp.
func (r *cycleRig) count(id string) int64 {
	r.t.Helper()
	recs := r.fk.records(string(r.p.topo.TableTopic(counterFnU)), partitionFor(id, r.p.topo.PartitionCount()))
	var n int64
	for _, rec := range recs {
		if string(rec.key) != id {
			continue
		}
		if rec.value == nil {
			n = 0
			continue
		}
		st, err := wire.DecodeStateRecord(rec.value)
		if err != nil {
			r.t.Fatal(err)
		}
		if n, err = codec.Int64().Decode(st["n"].Value); err != nil {
			r.t.Fatal(err)
		}
	}
	return n
}

var (
	counterFnU = functions.TypeName("unit/counter")
	unitCount  = functions.NewState("n", functions.LongType).ExpireAfterWrite(time.Hour)
	unitOut    = functions.TypeName("unit/out")
)

// unitCounterApp counts the messages of each address and writes
// "<id>=<count>" to unit-out; a message "later:<d>" also sends "again" to
// itself after d; a message "fail" fails permanently.
func unitCounterApp() (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: counterFnU,
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, m string) error {
			if m == "fail" {
				ctx.SendEgress(unitOut, functions.KafkaMessage("", ctx.Self().ID, []byte("leak")))
				return functions.Permanent(errors.New("refused"))
			}
			n, _ := unitCount.Get(ctx)
			n++
			unitCount.Set(ctx, n)
			ctx.SendEgress(unitOut, functions.KafkaMessage("", ctx.Self().ID, []byte(ctx.Self().ID+"="+strconv.FormatInt(n, 10))))
			if d, ok := cutPrefix(m, "later:"); ok {
				delay, _ := time.ParseDuration(d)
				ctx.SendAfter(delay, ctx.Self(), functions.StringType.Of("again"))
			}
			return nil
		})),
		State:    []functions.StateSpec{unitCount},
		Egresses: []functions.TypeName{unitOut},
	})
	topo := topology.Topology{
		App:        "unit",
		Partitions: 2,
		Functions:  []functions.TypeName{counterFnU},
		Ingresses:  []topology.Ingress{{Topic: "unit-in", ValueType: functions.StringType.Name(), Targets: []functions.TypeName{counterFnU}}},
		Egresses:   []topology.Egress{{ID: unitOut, Topics: []topology.Topic{"unit-out"}}},
	}
	return topo, reg
}

// str is a string message as the ingress of unitCounterApp takes it.
func str(s string) []byte { return functions.StringType.Of(s).Bytes() }

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func TestCycleMakesEffectsVisibleOnlyAtCommit(t *testing.T) {
	topo, reg := unitCounterApp()
	r := newCycleRig(t, topo, reg)
	r.ingress("unit-in", "a", str("x"))
	r.ingress("unit-in", "a", str("x"))
	r.ingress("unit-in", "b", str("x"))
	if got := r.values("unit-out"); len(got) != 0 {
		t.Fatalf("egress before the commit: %q", got)
	}
	r.commit()
	if got, want := len(r.values("unit-out")), 3; got != want {
		t.Errorf("egress after the commit: %d records, want %d", got, want)
	}
	if a, b := r.count("a"), r.count("b"); a != 2 || b != 1 {
		t.Errorf("counts a=%d b=%d, want 2 and 1", a, b)
	}
	// ten changes of one address in a transaction are one table record
	if n := len(r.fk.records(string(topo.TableTopic(counterFnU)), partitionFor("a", 2))); n != 1 {
		t.Errorf("%d table records for a's partition, want 1", n)
	}
	// the store holds what was committed, and the offsets were committed
	// with the transaction, and the positions with them
	got, err := r.s.state(stateRef{part: partitionFor("a", 2), fn: counterFnU, id: "a"})
	if err != nil || len(got) != 1 {
		t.Fatalf("state of a: %v %v", got, err)
	}
	for part := range int32(2) {
		want := int64(len(r.fk.records("unit-in", part)))
		if off := r.fk.offsets[topicPart{"unit-in", part}]; want > 0 && off != want {
			t.Errorf("committed offset of unit-in/%d: %d, want %d", part, off, want)
		}
	}
	if len(r.fk.all(string(topo.PositionsTopic()))) == 0 {
		t.Error("no input positions written with the transaction")
	}
}

func TestCycleAbortedTransactionIsProcessedAgainExactlyOnce(t *testing.T) {
	topo, reg := unitCounterApp()
	failures := 2
	r := newCycleRig(t, topo, reg)
	r.fk.commitErr = func() error {
		if failures > 0 {
			failures--
			return errors.New("injected commit failure")
		}
		return nil
	}
	for range 5 {
		r.ingress("unit-in", "a", str("x"))
	}
	r.s.commit() // fails, replays into a new transaction
	r.s.commit() // fails again
	r.commit()
	if got := r.values("unit-out"); len(got) != 5 || got[4] != "a=5" {
		t.Errorf("egress %q, want a=1..a=5 once each", got)
	}
	if n := r.count("a"); n != 5 {
		t.Errorf("count %d, want 5", n)
	}
	if s := r.p.Stats(); s.Aborts != 2 || s.Commits != 1 {
		t.Errorf("stats %+v, want 2 aborts and 1 commit", s)
	}
}

func TestCycleGateHoldsDirectDeliveryUntilTheBacklogIsProcessed(t *testing.T) {
	topo, reg := unitCounterApp()
	r := newCycleRig(t, topo, reg)
	part := partitionFor("a", 2)
	// a loop record another owner routed before the assignment: the gate
	// must wait for it
	env := wire.AppendEnvelope(nil, wire.Envelope{Target: functions.Address{Type: counterFnU, ID: "a"}, Argument: functions.StringType.Of("x")})
	backlog := r.fk.append(string(topo.LoopTopic()), part, fakeRecord{key: []byte("a"), value: env})
	r.s.parts[part].gate = gate{until: backlog, processed: -1}

	r.ingress("unit-in", "a", str("x"))
	r.commit()
	loop := r.fk.records(string(topo.LoopTopic()), part)
	if len(loop) != 2 {
		t.Fatalf("the ingress record was not routed through the loop topic while the gate was closed: %d loop records", len(loop))
	}
	if s := r.p.Stats(); s.Direct != 0 {
		t.Errorf("%d direct deliveries while the gate was closed", s.Direct)
	}
	// the routed record's offset is known now: the gate waits for it too
	if g := r.s.parts[part].gate; g.until != 1 {
		t.Errorf("gate until %d after the commit, want 1 (the routed record)", g.until)
	}
	for off, rec := range loop {
		if err := r.s.handle(item{msg: &record{Topic: string(topo.LoopTopic()), Partition: part, Offset: int64(off), Key: rec.key, Value: rec.value}}); err != nil {
			t.Fatal(err)
		}
	}
	r.ingress("unit-in", "a", str("x"))
	r.commit()
	if s := r.p.Stats(); s.Direct != 1 {
		t.Errorf("%d direct deliveries once the backlog was processed, want 1", s.Direct)
	}
	if got := r.values("unit-out"); len(got) != 3 || got[2] != "a=3" {
		t.Errorf("egress %q, want a=1, a=2, a=3 in order", got)
	}
}

func TestCycleFiresDelayedMessagesWhenDueOnce(t *testing.T) {
	topo, reg := unitCounterApp()
	r := newCycleRig(t, topo, reg)
	r.ingress("unit-in", "a", str("later:10s"))
	r.commit()
	timers := string(topo.TimersTopic())
	if n := len(r.fk.all(timers)); n != 1 {
		t.Fatalf("%d timer records after the send, want 1", n)
	}
	if err := r.s.fireDue(); err != nil || r.s.txn != nil {
		t.Fatalf("a timer fired early: %v, open transaction %v", err, r.s.txn != nil)
	}
	r.clock.Advance(10 * time.Second)
	if err := r.s.fireDue(); err != nil {
		t.Fatal(err)
	}
	r.commit()
	tr := r.fk.all(timers)
	if len(tr) != 2 || tr[1].value != nil {
		t.Fatalf("timer records %d, the last a tombstone: %v", len(tr), len(tr) == 2 && tr[1].value == nil)
	}
	loop := r.fk.records(string(topo.LoopTopic()), partitionFor("a", 2))
	if len(loop) != 1 {
		t.Fatalf("%d loop records after the timer fired, want 1", len(loop))
	}
	if err := r.s.fireDue(); err != nil || r.s.txn != nil {
		t.Errorf("the timer fired twice: %v", err)
	}
}

func TestCycleSweepRemovesExpiredState(t *testing.T) {
	topo, reg := unitCounterApp()
	r := newCycleRig(t, topo, reg)
	r.ingress("unit-in", "a", str("x"))
	r.commit()
	if err := r.s.sweep(); err != nil || r.s.txn != nil {
		t.Fatalf("sweep before the expiry: %v, open transaction %v", err, r.s.txn != nil)
	}
	r.clock.Advance(time.Hour + time.Second)
	if err := r.s.sweep(); err != nil {
		t.Fatal(err)
	}
	r.commit()
	table := r.fk.records(string(topo.TableTopic(counterFnU)), partitionFor("a", 2))
	if last := table[len(table)-1]; string(last.key) != "a" || last.value != nil {
		t.Errorf("last table record %q=%q, want a tombstone of a", last.key, last.value)
	}
	if s := r.p.Stats(); s.Expired != 1 {
		t.Errorf("expired %d values, want 1", s.Expired)
	}
	// the index entry is gone: another sweep writes nothing
	if err := r.s.sweep(); err != nil || r.s.txn != nil {
		t.Errorf("second sweep: %v, open transaction %v", err, r.s.txn != nil)
	}
}

func TestCycleDeadLettersAFailureWithoutItsEffects(t *testing.T) {
	topo, reg := unitCounterApp()
	r := newCycleRig(t, topo, reg)
	r.ingress("unit-in", "a", str("fail"))
	r.ingress("unit-in", "a", str("x"))
	r.commit()
	if got := r.values("unit-out"); len(got) != 1 || got[0] != "a=1" {
		t.Errorf("egress %q, want only a=1 (nothing of the failure)", got)
	}
	dlq := r.fk.all(string(topo.DLQTopic()))
	if len(dlq) != 1 || string(dlq[0].value) != string(str("fail")) {
		t.Fatalf("dead letters %v, want the failing record", dlq)
	}
	reason := ""
	for _, h := range dlq[0].headers {
		if string(h.Key) == "stateloop.error" {
			reason = string(h.Value)
		}
	}
	if !strings.HasSuffix(reason, ": refused") {
		t.Errorf("dead letter reason %q, want the function's error", reason)
	}
}

func TestCycleOutputThatCanNeverBeWrittenDeadLettersItsRecord(t *testing.T) {
	topo, reg := unitCounterApp()
	r := newCycleRig(t, topo, reg)
	r.fk.sendErr = func(o *output) error {
		if o.Topic == "unit-out" && string(o.Key) == "big" {
			return sarama.ErrMessageSizeTooLarge
		}
		return nil
	}
	r.ingress("unit-in", "big", str("x"))
	r.ingress("unit-in", "a", str("x"))
	r.s.commit() // fails; the replay dead-letters the record of "big"
	r.commit()
	if got := r.values("unit-out"); len(got) != 1 || got[0] != "a=1" {
		t.Errorf("egress %q, want a=1 only", got)
	}
	dlq := r.fk.all(string(topo.DLQTopic()))
	if len(dlq) != 1 || string(dlq[0].key) != "big" {
		t.Fatalf("dead letters %d, want the record of big", len(dlq))
	}
	if n := r.count("big"); n != 0 {
		t.Errorf("big counted %d, want its state untouched", n)
	}
}

// flakyApp's function unit/flaky fails the first failures[id] attempts of
// every message to id (or always, for failures < 0), and writes
// "<id>:<message>" to unit-out when it succeeds.
func flakyApp(failures map[string]int) (topology.Topology, *functions.Registry) {
	var mu sync.Mutex
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: "unit/flaky",
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, m string) error {
			id := ctx.Self().ID
			mu.Lock()
			left := failures[id]
			if left > 0 {
				failures[id]--
			}
			mu.Unlock()
			if left != 0 {
				return errors.New("not now")
			}
			ctx.SendEgress(unitOut, functions.KafkaMessage("", id, []byte(id+":"+m)))
			return nil
		})),
		Egresses: []functions.TypeName{unitOut},
	})
	topo := topology.Topology{
		App:        "unit",
		Partitions: 2,
		Functions:  []functions.TypeName{"unit/flaky"},
		Ingresses:  []topology.Ingress{{Topic: "unit-in", ValueType: functions.StringType.Name(), Targets: []functions.TypeName{"unit/flaky"}}},
		Egresses:   []topology.Egress{{ID: unitOut, Topics: []topology.Topic{"unit-out"}}},
	}
	return topo, reg
}

func TestCycleParksAFailingAddressAloneAndDeliversItsMessagesInOrderLater(t *testing.T) {
	topo, reg := flakyApp(map[string]int{"x": 2})
	r := newCycleRig(t, topo, reg, WithRetries(3, 10*time.Millisecond))
	r.ingress("unit-in", "x", str("1"))
	r.ingress("unit-in", "y", str("1"))
	r.ingress("unit-in", "x", str("2"))
	r.commit()
	if got := r.values("unit-out"); len(got) != 1 || got[0] != "y:1" {
		t.Fatalf("egress %q, want only y:1 while x is parked", got)
	}
	inbox := string(topo.InboxTopic())
	if n := len(r.fk.all(inbox)); n != 2 {
		t.Fatalf("%d inbox records, want x's two messages", n)
	}
	// not due yet
	if err := r.s.retryParked(); err != nil || r.s.txn != nil {
		t.Fatalf("retried before the backoff: %v", err)
	}
	r.clock.Advance(10 * time.Millisecond)
	if err := r.s.retryParked(); err != nil {
		t.Fatal(err)
	}
	r.commit() // the second attempt failed too: backoff 20 ms
	if got := r.values("unit-out"); len(got) != 1 {
		t.Fatalf("egress %q after the second attempt, want still y:1 only", got)
	}
	r.clock.Advance(20 * time.Millisecond)
	if err := r.s.retryParked(); err != nil {
		t.Fatal(err)
	}
	r.commit()
	if got := r.values("unit-out"); !slices.Equal(got, []string{"y:1", "x:1", "x:2"}) {
		t.Errorf("egress %q, want y:1, then x:1 and x:2 in order", got)
	}
	// both entries removed: the last record of each key is a tombstone
	last := map[string][]byte{}
	for _, rec := range r.fk.all(inbox) {
		last[string(rec.key)] = rec.value
	}
	for k, v := range last {
		if v != nil {
			t.Errorf("inbox entry %q still there", k)
		}
	}
	if r.s.waiting(functions.Address{Type: "unit/flaky", ID: "x"}) || len(r.s.parked) != 0 {
		t.Error("x still parked")
	}
}

func TestCycleDeadLettersAParkedMessageOnceAfterItsRetries(t *testing.T) {
	topo, reg := flakyApp(map[string]int{"x": -1})
	r := newCycleRig(t, topo, reg, WithRetries(2, 10*time.Millisecond))
	r.ingress("unit-in", "x", str("1"))
	r.commit()
	for range 2 {
		r.clock.Advance(time.Second)
		if err := r.s.retryParked(); err != nil {
			t.Fatal(err)
		}
		r.commit()
	}
	dlq := r.fk.all(string(topo.DLQTopic()))
	if len(dlq) != 1 || string(dlq[0].value) != string(str("1")) {
		t.Fatalf("dead letters %d, want the one message after 3 attempts", len(dlq))
	}
	if s := r.p.Stats(); s.Failures != 3 {
		t.Errorf("%d failed attempts, want 3 (1 + 2 retries)", s.Failures)
	}
	r.clock.Advance(time.Second)
	if err := r.s.retryParked(); err != nil || r.s.txn != nil {
		t.Errorf("another attempt after the dead letter: %v", err)
	}
}

func TestCycleAbortedTransactionLeavesTheInboxAsTheLastCommit(t *testing.T) {
	topo, reg := flakyApp(map[string]int{"x": 1})
	r := newCycleRig(t, topo, reg, WithRetries(3, 10*time.Millisecond))
	r.ingress("unit-in", "x", str("1"))
	r.commit()
	r.clock.Advance(10 * time.Millisecond)
	fail := true
	r.fk.commitErr = func() error {
		if fail {
			fail = false
			return errors.New("injected")
		}
		return nil
	}
	if err := r.s.retryParked(); err != nil {
		t.Fatal(err)
	}
	r.s.commit() // fails: x:1 is delivered again by the next retry pass
	if !r.s.waiting(functions.Address{Type: "unit/flaky", ID: "x"}) {
		t.Fatal("x's message left the inbox with an aborted transaction")
	}
	if err := r.s.retryParked(); err != nil {
		t.Fatal(err)
	}
	r.commit()
	if got := r.values("unit-out"); !slices.Equal(got, []string{"x:1"}) {
		t.Errorf("egress %q, want x:1 once", got)
	}
}

func TestCycleDeliversAChainOfLocalHopsInOneTransaction(t *testing.T) {
	topo, reg := chainApp("unit")
	r := newCycleRig(t, topo, reg)
	r.ingress("unit-in", "a", []byte("7"))
	r.commit()
	if got := r.values("unit-done"); !slices.Equal(got, []string{"7"}) {
		t.Errorf("end of the chain %q after one commit, want 7", got)
	}
	if n := len(r.fk.all(string(topo.LoopTopic()))); n != 0 {
		t.Errorf("%d loop records, want none: every hop local", n)
	}
	if s := r.p.Stats(); s.Local != 3 || s.Commits != 1 {
		t.Errorf("stats %+v, want 3 local deliveries in 1 commit", s)
	}
}

// relayApp's unit/relay relays a message for "a" to the address "b" and
// writes what "b" gets to unit-out.
func relayApp() (topology.Topology, *functions.Registry) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type: "unit/relay",
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, m string) error {
			if ctx.Self().ID == "a" {
				ctx.Send(functions.Address{Type: "unit/relay", ID: "b"}, functions.StringType.Of(m))
				return nil
			}
			ctx.SendEgress(unitOut, functions.KafkaMessage("", "b", []byte(m)))
			return nil
		})),
		Egresses: []functions.TypeName{unitOut},
	})
	topo := topology.Topology{
		App: "unit", Partitions: 4, Functions: []functions.TypeName{"unit/relay"},
		Ingresses: []topology.Ingress{{Topic: "unit-in", ValueType: functions.StringType.Name(), Targets: []functions.TypeName{"unit/relay"}}},
		Egresses:  []topology.Egress{{ID: unitOut, Topics: []topology.Topic{"unit-out"}}},
	}
	return topo, reg
}

func TestCycleLocalMessagesDoNotOvertakeLoopRecordsOfTheirPartition(t *testing.T) {
	topo, reg := relayApp()
	if partitionFor("a", 4) == partitionFor("b", 4) {
		t.Fatal("a and b share a partition; pick other ids")
	}
	r := newCycleRig(t, topo, reg)
	loop := string(topo.LoopTopic())
	pb := partitionFor("b", 4)
	// a message to b in the loop topic, not processed yet (a previous
	// owner's): the relay's messages to b must wait behind it
	first := wire.AppendEnvelope(nil, wire.Envelope{Target: functions.Address{Type: "unit/relay", ID: "b"}, Argument: functions.StringType.Of("0")})
	off := r.fk.append(loop, pb, fakeRecord{key: []byte("b"), value: first})
	r.s.parts[pb].gate = gate{until: off, processed: -1}

	r.ingress("unit-in", "a", str("1"))
	r.commit()
	if s := r.p.Stats(); s.Local != 0 {
		t.Fatalf("%d local deliveries to b while its partition had a loop record to process first", s.Local)
	}
	recs := r.fk.records(loop, pb)
	if len(recs) != 2 {
		t.Fatalf("%d loop records for b, want the earlier one and the relayed one", len(recs))
	}
	for o, rec := range recs {
		if err := r.s.handle(item{msg: &record{Topic: loop, Partition: pb, Offset: int64(o), Key: rec.key, Value: rec.value}}); err != nil {
			t.Fatal(err)
		}
	}
	r.ingress("unit-in", "a", str("2"))
	r.commit()
	if s := r.p.Stats(); s.Local != 1 {
		t.Errorf("%d local deliveries once the loop records were processed, want 1", s.Local)
	}
	if got := r.values("unit-out"); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Errorf("b got %q, want 0, 1, 2 in order", got)
	}
}

// Regression: an ingress record routed through the loop topic to a
// partition the session was still recovering came after the backlog the
// partition's claim had found; the gate made at recovery did not wait for
// it, and a later record of the same ingress partition and address was
// delivered directly before it (seen as out of order across rebalances).
func TestCycleGateWaitsForRecordsRoutedWhileThePartitionRecovered(t *testing.T) {
	topo, reg := unitCounterApp()
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	p, err := New([]string{"fake:9092"}, topo, reg, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	fk := newFakeKafka()
	if err := p.ensureTopics(fk); err != nil {
		t.Fatal(err)
	}
	p.assigned(0, []int32{0, 1})
	s := newSession(context.Background(), p, 0, fk, &producerSlot{p: fk, make: func() (producer, error) { return fk, nil }}, groupMeta{Group: "unit"}, 2)
	part := partitionFor("a", 2)
	// the claim found no backlog; the partition is still recovering
	r, err := p.recoverPartition(context.Background(), fk, func(part int32) (*store, error) { return openStore("", part) }, nil, part, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := func(seq string) {
		off := fk.append("unit-in", part, fakeRecord{key: []byte("a"), value: str(seq)})
		if err := s.handle(item{msg: &record{Topic: "unit-in", Partition: part, Offset: off, Key: []byte("a"), Value: str(seq)}}); err != nil {
			t.Fatal(err)
		}
	}
	in("1") // routed: the partition is not ready
	s.commit()
	if err := s.handle(item{ready: r}); err != nil {
		t.Fatal(err)
	}
	in("2") // must wait behind 1 in the loop topic
	s.commit()
	if st := p.Stats(); st.Direct != 0 {
		t.Fatalf("%d direct deliveries while a record routed during recovery was not processed", st.Direct)
	}
	if n := len(fk.records(string(topo.LoopTopic()), part)); n != 2 {
		t.Errorf("%d loop records, want both messages routed", n)
	}
}

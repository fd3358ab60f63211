package processor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/opstest"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// ctlHarness runs the opstest application and reads what its control
// records answered.
type ctlHarness struct {
	t      *testing.T
	app    string
	topo   topology.Topology
	client sarama.Client
	p      *Processor
	broken atomic.Bool
	seq    int
}

func newCtlHarness(t *testing.T, name string, opts ...Option) *ctlHarness {
	t.Helper()
	brokers, app := testBroker(t, name)
	h := &ctlHarness{t: t, app: app}
	topo, reg := opstest.Build(app, func() error {
		if h.broken.Load() {
			return opstest.ErrBroken
		}
		return nil
	})
	h.topo = topo
	h.client = testClient(t, brokers)
	p, err := New(brokers, topo, reg, append([]Option{WithCommitInterval(20 * time.Millisecond), WithLogger(testLogger(t)),
		WithRetries(2, 20*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	return h
}

func counter(id string) functions.Address { return functions.Address{Type: opstest.Counter, ID: id} }

// inc is the loop record of an IncMsg to a counter.
func (h *ctlHarness) inc(id string, m opstest.IncMsg) [2][]byte {
	return [2][]byte{[]byte(id), wire.AppendEnvelope(nil, wire.Envelope{Target: counter(id), Argument: opstest.Message(m)})}
}

// control is the loop record of a control record to an address, whose
// answer goes to the caller named op.
func (h *ctlHarness) control(to functions.Address, op string, c *wire.Control) [2][]byte {
	h.seq++
	caller := functions.Address{Type: topology.HTTPCaller, ID: "test/" + op}
	env := wire.Envelope{Target: to, Caller: &caller, Control: c, IdempotencyKey: "op-" + strconv.Itoa(h.seq)}
	if c.Replay != nil {
		env.IdempotencyKey = wire.ReplayKey(c.Replay.DeadLetterPartition, c.Replay.DeadLetterOffset)
	}
	return [2][]byte{[]byte(to.ID), wire.AppendEnvelope(nil, env)}
}

func (h *ctlHarness) produce(recs ...[2][]byte) { produce(h.t, h.client, h.app+"-loop", recs...) }

// results returns the answers to control records, by op, in the order
// they came.
func (h *ctlHarness) results() map[string][]wire.ControlResult {
	h.t.Helper()
	out := map[string][]wire.ControlResult{}
	for _, r := range readTopic(h.t, h.client, h.app+"-replies") {
		env, err := wire.DecodeEnvelope(r.Value)
		if err != nil || env.Argument.TypeName() != wire.ControlResultType {
			h.t.Fatalf("a reply that is no control result: %v %+v", err, env)
		}
		res, err := wire.DecodeControlResult(env.Argument.Bytes())
		if err != nil {
			h.t.Fatal(err)
		}
		_, op, _ := strings.Cut(env.Target.ID, "/")
		out[op] = append(out[op], res)
	}
	return out
}

// waitResults waits until every op has as many answers as given.
func (h *ctlHarness) waitResults(want map[string]int) map[string][]wire.ControlResult {
	h.t.Helper()
	var got map[string][]wire.ControlResult
	waitFor(h.t, 30*time.Second, fmt.Sprintf("answers %v", want), func() (bool, string) {
		got = h.results()
		for op, n := range want {
			if len(got[op]) < n {
				return false, fmt.Sprintf("%d answers to %s", len(got[op]), op)
			}
		}
		return true, ""
	})
	return got
}

// emitted returns the counts the counters emitted, in order, by id.
func (h *ctlHarness) emitted() map[string][]opstest.Emitted {
	h.t.Helper()
	out := map[string][]opstest.Emitted{}
	for _, r := range readTopic(h.t, h.client, h.app+"-out") {
		var e opstest.Emitted
		if err := json.Unmarshal(r.Value, &e); err != nil {
			h.t.Fatal(err)
		}
		out[e.ID] = append(out[e.ID], e)
	}
	return out
}

func (h *ctlHarness) waitEmitted(id string, n int) []opstest.Emitted {
	h.t.Helper()
	var got []opstest.Emitted
	waitFor(h.t, 30*time.Second, fmt.Sprintf("%d counts of %s", n, id), func() (bool, string) {
		got = h.emitted()[id]
		return len(got) >= n, fmt.Sprintf("%d counts", len(got))
	})
	return got
}

func (h *ctlHarness) deadLetters() []topicRecord {
	var out []topicRecord
	for _, r := range readTopic(h.t, h.client, h.app+"-dlq") {
		if _, marker := r.Headers[wire.HeaderReplayOf]; !marker {
			out = append(out, r)
		}
	}
	return out
}

func long(v int64) []byte {
	b, err := functions.LongType.Codec().Encode(v)
	if err != nil {
		panic(err)
	}
	return b
}

func longOf(t *testing.T, rec wire.StateRecord, name string) (int64, bool) {
	t.Helper()
	v, ok := rec[name]
	if !ok {
		return 0, false
	}
	n, err := functions.LongType.Codec().Decode(v.Value)
	if err != nil {
		t.Fatalf("state %s: %v", name, err)
	}
	return n, true
}

// TestStateEditIsAppliedInOrderWithTheAddressMessages puts a state set
// between two runs of increments to one counter on the loop topic: the
// increments before it count from 0, the set answers the count they
// reached as its before, and the increments after it count on from the
// value it set.
func TestStateEditIsAppliedInOrderWithTheAddressMessages(t *testing.T) {
	h := newCtlHarness(t, "ctl-order")
	var recs [][2][]byte
	for i := 1; i <= 30; i++ {
		recs = append(recs, h.inc("c1", opstest.IncMsg{Seq: i}))
	}
	recs = append(recs, h.control(counter("c1"), "set", &wire.Control{State: &wire.StateEdit{Set: []wire.StateValueEdit{{Name: "n", Value: long(1000)}}}}))
	for i := 31; i <= 60; i++ {
		recs = append(recs, h.inc("c1", opstest.IncMsg{Seq: i}))
	}
	recs = append(recs, h.control(counter("c1"), "read", &wire.Control{State: &wire.StateEdit{}}))
	h.produce(recs...)

	got := h.waitEmitted("c1", 60)
	opstest.CheckCountsAroundSet(t, got, 30, 1000)
	res := h.waitResults(map[string]int{"set": 1, "read": 1})
	set := res["set"][0]
	if set.Error != "" || set.Address != counter("c1") {
		t.Fatalf("set answered %+v", set)
	}
	if n, _ := longOf(t, set.Before, "n"); n != 30 {
		t.Errorf("set: before n = %d, want 30", n)
	}
	if n, _ := longOf(t, set.After, "n"); n != 1000 || set.After["n"].TypeName != functions.LongType.Name() {
		t.Errorf("set: after n = %d of type %s, want 1000 of the declared type %s", n, set.After["n"].TypeName, functions.LongType.Name())
	}
	if want := []wire.StateDecl{{Name: "n", TypeName: functions.LongType.Name()}, {Name: "note", TypeName: functions.StringType.Name()}}; !slices.Equal(set.Declared, want) {
		t.Errorf("declared %v, want %v", set.Declared, want)
	}
	read := res["read"][0]
	if b, _ := longOf(t, read.Before, "n"); b != 1030 {
		t.Errorf("read: before n = %d, want 1030", b)
	}
	if a, _ := longOf(t, read.After, "n"); a != 1030 {
		t.Errorf("read: after n = %d, want 1030 (a read changes nothing)", a)
	}
	if c := tableCountsOf(t, h.client, h.topo, opstest.Counter, "n"); c["c1"] != 1030 {
		t.Errorf("table: n = %d, want 1030", c["c1"])
	}
}

// TestStateEditWaitsBehindAParkedMessage puts a state set behind a message
// that fails every attempt: the set is applied once that message has gone
// to the dead-letter topic, and the message after the set counts on from
// the value it set.
func TestStateEditWaitsBehindAParkedMessage(t *testing.T) {
	h := newCtlHarness(t, "ctl-parked")
	h.produce(
		h.inc("c2", opstest.IncMsg{Seq: 1}),
		h.inc("c2", opstest.IncMsg{Seq: 2, Fail: "retry"}),
		h.control(counter("c2"), "set", &wire.Control{State: &wire.StateEdit{Set: []wire.StateValueEdit{
			{Name: "n", TypeName: functions.LongType.Name(), Value: long(40)}, {Name: "note", Value: []byte{0x0a, 0x02, 'h', 'i'}}}}}),
		h.inc("c2", opstest.IncMsg{Seq: 3}),
		h.control(counter("c2"), "delete", &wire.Control{State: &wire.StateEdit{Delete: []string{"note"}}}),
		h.inc("c2", opstest.IncMsg{Seq: 4}),
		h.control(counter("c2"), "clear", &wire.Control{State: &wire.StateEdit{DeleteAll: true}}),
		h.inc("c2", opstest.IncMsg{Seq: 5}),
	)
	got := h.waitEmitted("c2", 4)
	want := []opstest.Emitted{{ID: "c2", Seq: 1, N: 1}, {ID: "c2", Seq: 3, N: 41}, {ID: "c2", Seq: 4, N: 42}, {ID: "c2", Seq: 5, N: 1}}
	if !slices.Equal(got, want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	res := h.waitResults(map[string]int{"set": 1, "delete": 1, "clear": 1})
	if n, _ := longOf(t, res["set"][0].Before, "n"); n != 1 {
		t.Errorf("set: before n = %d, want 1 (the failing message did not count)", n)
	}
	if _, ok := res["set"][0].After["note"]; !ok {
		t.Errorf("set: after %v, want a note", res["set"][0].After)
	}
	if d := res["delete"][0]; len(d.Before) != 2 || len(d.After) != 1 {
		t.Errorf("delete of note: before %v after %v, want n and note, then n", d.Before, d.After)
	}
	if c := res["clear"][0]; len(c.After) != 0 {
		t.Errorf("clear: after %v, want nothing", c.After)
	}
	if dl := h.deadLetters(); len(dl) != 1 || !strings.Contains(dl[0].Headers[wire.HeaderError], "fails every attempt") {
		t.Errorf("dead letters %v, want the failing message", dl)
	}
}

// TestControlRecordsThatCannotBeAppliedAreDeadLetteredAndAnswered sends
// control records that cannot be applied, and one that does not decode:
// each goes to the dead-letter topic with its reason, the decodable ones
// are answered with it, and the partition goes on.
func TestControlRecordsThatCannotBeAppliedAreDeadLetteredAndAnswered(t *testing.T) {
	h := newCtlHarness(t, "ctl-refused")
	set := func(name string, typ functions.TypeName, v []byte) *wire.Control {
		return &wire.Control{State: &wire.StateEdit{Set: []wire.StateValueEdit{{Name: name, TypeName: typ, Value: v}}}}
	}
	garbage := wire.AppendEnvelope(nil, wire.Envelope{Target: counter("c3"), Control: &wire.Control{State: &wire.StateEdit{}}})
	garbage = append(garbage[:len(garbage)-1], 0xff) // the control message cut short
	msg := wire.Envelope{Target: counter("c3"), Argument: opstest.Message(opstest.IncMsg{Seq: 9})}
	h.produce(
		h.control(functions.Address{Type: "ops/nobody", ID: "c3"}, "unknown-type", set("n", "", long(1))),
		h.control(counter("c3"), "undeclared", set("nope", "", long(1))),
		h.control(counter("c3"), "wrong-type", set("n", functions.StringType.Name(), []byte("x"))),
		[2][]byte{[]byte("c3"), garbage},
		h.control(counter("c3"), "replay-elsewhere", &wire.Control{Replay: &wire.Replay{DeadLetterOffset: 5, Message: &wire.Envelope{Target: counter("other"), Argument: msg.Argument}}}),
		h.control(counter("c3"), "replay-not-ingress", &wire.Control{Replay: &wire.Replay{DeadLetterOffset: 6, Record: &wire.IngressRecord{Topic: "nope", Key: []byte("c3")}}}),
		h.inc("c3", opstest.IncMsg{Seq: 1}),
	)
	h.waitEmitted("c3", 1)
	res := h.waitResults(map[string]int{"unknown-type": 1, "undeclared": 1, "wrong-type": 1, "replay-elsewhere": 1, "replay-not-ingress": 1})
	for op, want := range map[string]string{
		"unknown-type":       "state edit at ops/nobody/c3: message to unknown function type ops/nobody",
		"undeclared":         `function type ops/counter declares no state "nope" (it declares n, note)`,
		"wrong-type":         `state "n" of ops/counter is of type io.statefun.types/long, not io.statefun.types/string`,
		"replay-elsewhere":   "the dead letter is a message to ops/counter/other, not to ops/counter/c3",
		"replay-not-ingress": `topic "nope" is not an ingress of application ` + h.app,
	} {
		if got := res[op][0].Error; !strings.Contains(got, want) {
			t.Errorf("%s: answered %q, want %q", op, got, want)
		}
	}
	reasons := map[string]bool{}
	for _, r := range h.deadLetters() {
		reasons[r.Headers[wire.HeaderError]] = true
	}
	if len(reasons) != 6 {
		t.Errorf("dead letters with reasons %v, want 6: the five refused and the one that does not decode", reasons)
	}
	for _, res := range res {
		if !reasons[res[0].Error] {
			t.Errorf("answer %q is not the reason of a dead letter", res[0].Error)
		}
	}
	if s := h.p.Stats(); s.Controls != 0 {
		t.Errorf("%d control records counted as applied, want 0", s.Controls)
	}
}

// TestTimerCancelDropsTheTokensGivenOrAll arms delayed messages at two
// counters, cancels one by its token at the first and all of the second,
// and moves the clock past their time: only the others arrive.
func TestTimerCancelDropsTheTokensGivenOrAll(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := newCtlHarness(t, "ctl-timers", WithClock(clock.Now))
	h.produce(
		h.inc("t1", opstest.IncMsg{Seq: 1, Arm: []string{"a", "b", "c"}, Delay: time.Hour}),
		h.inc("t2", opstest.IncMsg{Seq: 2, Arm: []string{"x", "y"}, Delay: time.Hour}),
		h.control(counter("t1"), "cancel-b", &wire.Control{Cancel: &wire.TimerCancel{Tokens: []string{"b", "no-such-token"}}}),
		h.control(counter("t2"), "cancel-all", &wire.Control{Cancel: &wire.TimerCancel{All: true}}),
	)
	res := h.waitResults(map[string]int{"cancel-b": 1, "cancel-all": 1})
	tokens := func(op string) []string {
		var out []string
		for _, c := range res[op][0].Cancelled {
			if c.Timer.Message.Target != counter(res[op][0].Address.ID) {
				t.Errorf("%s: cancelled a message to %s", op, c.Timer.Message.Target)
			}
			out = append(out, c.Token)
		}
		return out
	}
	if got := tokens("cancel-b"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("cancel b: cancelled %v, want [b]", got)
	}
	if got := tokens("cancel-all"); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("cancel all: cancelled %v, want [x y]", got)
	}
	clock.Advance(2 * time.Hour)
	got := h.waitEmitted("t1", 3)
	time.Sleep(300 * time.Millisecond) // anything that should not come would come by now
	seqs := map[string][]int{}
	for id, es := range h.emitted() {
		for _, e := range es {
			seqs[id] = append(seqs[id], e.Seq)
		}
	}
	slices.Sort(seqs["t1"])
	if !slices.Equal(seqs["t1"], []int{1, 1000, 1002}) || !slices.Equal(seqs["t2"], []int{2}) {
		t.Errorf("arrived %v (t1 %v), want t1: 1 and the timers a (1000) and c (1002); t2: 2 only", seqs, got)
	}
}

// TestReplayDeliversADeadLetterOnceAndMarksIt dead-letters a message from
// the loop topic and one from an ingress while the counter is broken,
// mends it and replays each twice (a command run again after a crash): each
// is delivered once, the second answer says so, and one replay marker
// names each dead letter.
func TestReplayDeliversADeadLetterOnceAndMarksIt(t *testing.T) {
	h := newCtlHarness(t, "ctl-replay")
	h.broken.Store(true)
	h.produce(h.inc("r1", opstest.IncMsg{Seq: 1}))
	produce(t, h.client, h.app+"-in", [2][]byte{[]byte("r2"), opstest.Encode(opstest.IncMsg{Seq: 2})})
	produce(t, h.client, h.app+"-routed", [2][]byte{nil, []byte(`{"id":"r3","seq":3}`)})
	var dls []topicRecord
	waitFor(t, 30*time.Second, "three dead letters", func() (bool, string) {
		dls = h.deadLetters()
		return len(dls) == 3, fmt.Sprint(len(dls))
	})
	h.broken.Store(false)
	var recs [][2][]byte
	for _, dl := range dls {
		r := &wire.Replay{DeadLetterPartition: dl.Partition, DeadLetterOffset: dl.Offset}
		if src := dl.Headers[wire.HeaderSourceTopic]; src == h.app+"-loop" {
			env, err := wire.DecodeEnvelope(dl.Value)
			if err != nil {
				t.Fatal(err)
			}
			r.Message = &env
		} else {
			var key []byte
			if dl.Key != "" {
				key = []byte(dl.Key)
			}
			r.Record = &wire.IngressRecord{Topic: src, Key: key, Value: dl.Value}
		}
		to := functions.Address{Type: functions.TypeName(dl.Headers[wire.HeaderFunctionType]), ID: dl.Headers[wire.HeaderFunctionID]}
		op := "replay-" + to.ID
		recs = append(recs, h.control(to, op, &wire.Control{Replay: r}), h.control(to, op, &wire.Control{Replay: r}))
	}
	h.produce(recs...)
	res := h.waitResults(map[string]int{"replay-r1": 2, "replay-r2": 2, "replay-r3": 2})
	for op, rs := range res {
		if rs[0].Error != "" || rs[0].Duplicate || !rs[1].Duplicate {
			t.Errorf("%s answered %+v then %+v, want applied, then a duplicate", op, rs[0], rs[1])
		}
	}
	for id, seq := range map[string]int{"r1": 1, "r2": 2, "r3": 3} {
		if got := h.waitEmitted(id, 1); len(got) != 1 || got[0].Seq != seq {
			t.Errorf("%s: counts %v, want one, of message %d", id, got, seq)
		}
	}
	markers := map[string]int{}
	for _, r := range readTopic(t, h.client, h.app+"-dlq") {
		if of, ok := r.Headers[wire.HeaderReplayOf]; ok {
			markers[of]++
			if r.Value != nil || r.Key != "" {
				t.Errorf("marker %s has a key or value: %q %q", of, r.Key, r.Value)
			}
		}
	}
	for _, dl := range dls {
		if ref := wire.FormatDeadLetterRef(dl.Partition, dl.Offset); markers[ref] != 1 {
			t.Errorf("dead letter %s has %d replay markers, want 1", ref, markers[ref])
		}
	}
	if len(markers) != 3 {
		t.Errorf("markers %v, want one for each of the 3 dead letters", markers)
	}
}

// TestStateEditWaitsForTheRemoteCallsBeforeIt runs the counter as a remote
// StateFun SDK function whose requests are slow, so that calls are in
// flight and queued when a state set arrives: the set is applied after
// the calls before it and before those after it, which count on from the
// value it set, with the type the SDK declared.
func TestStateEditWaitsForTheRemoteCallsBeforeIt(t *testing.T) {
	brokers, app := testBroker(t, "ctl-remote")
	n := statefun.ValueSpec{Name: "n", ValueType: statefun.Int64Type}
	inc := statefun.MakeJsonType(statefun.TypeNameFrom(string(opstest.Inc.Name())))
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		var m opstest.IncMsg
		if err := msg.As(inc, &m); err != nil {
			return err
		}
		var c int64
		ctx.Storage().Get(n, &c)
		ctx.Storage().Set(n, c+1)
		b, err := json.Marshal(opstest.Emitted{ID: ctx.Self().Id, Seq: m.Seq, N: c + 1})
		if err != nil {
			return err
		}
		ctx.SendEgress(statefun.KafkaEgressBuilder{Target: statefun.TypeNameFrom(string(opstest.Out)), Topic: app + "-out", Key: ctx.Self().Id, Value: b})
		return nil
	}
	b := statefun.StatefulFunctionsBuilder()
	if err := b.WithSpec(statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom(string(opstest.Counter)),
		States: []statefun.ValueSpec{n}, Function: statefun.StatefulFunctionPointer(fn)}); err != nil {
		t.Fatal(err)
	}
	sdk := b.AsHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		sdk.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	client, err := remote.New(remote.Config{URL: srv.URL + "/{function.name}", MaxNumBatchRequests: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	topo, _ := opstest.Build(app, nil)
	p, err := New(brokers, topo, functions.NewRegistry(), WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)),
		WithRemoteFunctions(func(fn functions.TypeName) remote.Invoker {
			if fn == opstest.Counter {
				return client
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	h := &ctlHarness{t: t, app: app, topo: topo, client: testClient(t, brokers), p: p}
	var recs [][2][]byte
	for i := 1; i <= 20; i++ {
		recs = append(recs, h.inc("c4", opstest.IncMsg{Seq: i}))
	}
	recs = append(recs, h.control(counter("c4"), "set", &wire.Control{State: &wire.StateEdit{Set: []wire.StateValueEdit{{Name: "n", Value: long(1000)}}}}))
	for i := 21; i <= 40; i++ {
		recs = append(recs, h.inc("c4", opstest.IncMsg{Seq: i}))
	}
	h.produce(recs...)
	got := h.waitEmitted("c4", 40)
	opstest.CheckCountsAroundSet(t, got, 20, 1000)
	set := h.waitResults(map[string]int{"set": 1})["set"][0]
	if b, _ := longOf(t, set.Before, "n"); b != 20 || set.Error != "" {
		t.Errorf("set answered %+v; want before n = 20", set)
	}
	if set.After["n"].TypeName != "io.statefun.types/long" {
		t.Errorf("set wrote type %q, want the SDK's declared io.statefun.types/long", set.After["n"].TypeName)
	}
}

package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"github.com/stateloop/stateloop/topology"
)

// Remote endpoints that misbehave must cost exactly one dead letter per
// bad record and never crash the runtime, stop a partition or stop other
// functions. The endpoint below is a plain net/http handler speaking
// StateFun's request-reply protocol with our own protobuf types; it
// misbehaves in one way per address id, and only for calls whose argument
// starts with "bad", so a good call to the same address right after a bad
// one shows that the address (and its partition) keeps flowing.

var (
	rfnType     = functions.TypeName("test/rfn")     // served by the misbehaving endpoint
	rdownType   = functions.TypeName("test/rdown")   // served by an endpoint that is down
	rNowhere    = functions.TypeName("test/nowhere") // neither embedded nor remote
	rCmdType    = functions.TypeName("test/rcmd")    // ingress messages: "ok#tag#" or "bad#tag#"
	rOut        = functions.TypeName("test/rout")
	rCountState = "count"
)

// remoteDLQApp routes <app>-in to test/rfn and <app>-down to test/rdown,
// both remote; the registry is empty.
func remoteDLQApp(app string) (topology.Topology, *functions.Registry) {
	return topology.Topology{
		App:        app,
		Partitions: 4,
		Functions:  []functions.TypeName{rfnType, rdownType},
		Ingresses: []topology.Ingress{
			{Topic: topology.Topic(app + "-in"), ValueType: rCmdType, Targets: []functions.TypeName{rfnType}},
			{Topic: topology.Topic(app + "-down"), ValueType: rCmdType, Targets: []functions.TypeName{rdownType}},
		},
		Egresses: []topology.Egress{{ID: rOut, Topics: []topology.Topic{topology.Topic(app + "-out")}}},
	}, functions.NewRegistry()
}

// served is one request the endpoint answered with a result.
type served struct {
	id         string
	start, end time.Time
}

// misbehavingServer serves test/rfn. The function declares the state
// "count" (a long); each call adds one to it and writes "<id>=<count>" to
// the egress. A batch holding a "bad" call is answered according to the
// address id:
//
//	truncated   the response body cut in half
//	html        200 with Content-Type text/html
//	wrong-type  a MODIFY of count with type name io.statefun.types/string
//	undeclared  a MODIFY of the undeclared state "undeclared"
//	to-unknown  the normal result plus a message to test/nowhere/<id>
//	bad-egress  the normal result plus a record for an undeclared egress
//	not-found   404
//	err500      500 on every attempt
//
// The id "slow" sleeps for slow before every answer. Misbehaving
// responses that decode also carry the incremented count and an egress
// record "leak ...", which must never be committed (to-unknown excepted:
// its response is valid).
type misbehavingServer struct {
	*httptest.Server
	t    testing.TB
	slow time.Duration

	inFlight, maxInFlight atomic.Int64
	slowStarted           chan struct{} // closed when a request of "slow" arrives
	slowOnce              sync.Once
	mu                    sync.Mutex
	log                   []served
	badRequests           map[string]int
}

func newMisbehavingServer(t testing.TB, slow time.Duration) *misbehavingServer {
	s := &misbehavingServer{t: t, slow: slow, slowStarted: make(chan struct{}), badRequests: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *misbehavingServer) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		if m := s.maxInFlight.Load(); n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req pb.ToFunction
	if err := proto.Unmarshal(body, &req); err != nil {
		s.t.Errorf("endpoint: request does not decode: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	batch := req.GetInvocation()
	id := batch.GetTarget().GetId()
	var count int64
	declared := false
	for _, pv := range batch.GetState() {
		if pv.GetStateName() == rCountState {
			declared = true
			if v := pv.GetStateValue(); v.GetHasValue() {
				if count, err = codec.Int64().Decode(v.GetValue()); err != nil {
					s.t.Errorf("endpoint: state count of %s: %v", id, err)
				}
			}
		}
	}
	if !declared {
		// as the SDKs do: name the state the request must carry
		writeFromFunction(w, &pb.FromFunction{Response: &pb.FromFunction_IncompleteInvocationContext_{
			IncompleteInvocationContext: &pb.FromFunction_IncompleteInvocationContext{MissingValues: []*pb.FromFunction_PersistedValueSpec{
				{StateName: rCountState, TypeTypename: string(functions.LongType.Name())},
			}},
		}})
		return
	}
	bad := ""
	res := &pb.FromFunction_InvocationResponse{}
	for _, inv := range batch.GetInvocations() {
		op := string(inv.GetArgument().GetValue())
		if bad == "" && strings.HasPrefix(op, "bad") {
			bad = op
		}
		count++
		res.OutgoingEgresses = append(res.OutgoingEgresses, rEgress(id, fmt.Sprintf("%s=%d", id, count)))
	}
	res.StateMutations = []*pb.FromFunction_PersistedValueMutation{rModify(rCountState, functions.LongType.Name(), count)}
	s.mu.Lock()
	if bad != "" {
		s.badRequests[id]++
	}
	s.mu.Unlock()
	if id == "slow" {
		s.slowOnce.Do(func() { close(s.slowStarted) })
		select {
		case <-time.After(s.slow):
		case <-r.Context().Done():
			return
		}
	}
	leak := func() { res.OutgoingEgresses = append(res.OutgoingEgresses, rEgress(id, "leak "+bad)) }
	if bad != "" {
		switch id {
		case "truncated":
			leak()
			b, _ := proto.Marshal(rResult(res))
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(b[:len(b)/2])
			return
		case "html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<html><body>a web page</body></html>")
			return
		case "wrong-type":
			leak()
			res.StateMutations[0].StateValue.Typename = string(functions.StringType.Name())
		case "undeclared":
			leak()
			res.StateMutations = append(res.StateMutations, rModify("undeclared", functions.LongType.Name(), 1))
		case "to-unknown":
			res.OutgoingMessages = append(res.OutgoingMessages, &pb.FromFunction_Invocation{
				Target:   &pb.Address{Namespace: rNowhere.Namespace(), Type: rNowhere.Name(), Id: id},
				Argument: &pb.TypedValue{Typename: string(rCmdType), HasValue: true, Value: []byte(bad)},
			})
		case "bad-egress":
			leak()
			res.OutgoingEgresses = append(res.OutgoingEgresses, &pb.FromFunction_EgressMessage{
				EgressNamespace: "test", EgressType: "no-such-egress", Argument: res.OutgoingEgresses[0].Argument,
			})
		case "not-found":
			http.NotFound(w, r)
			return
		case "err500":
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		default:
			s.t.Errorf("endpoint: bad call %q to %s, which has no misbehaviour", bad, id)
			http.Error(w, "no such misbehaviour", http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	s.log = append(s.log, served{id: id, start: start, end: time.Now()})
	s.mu.Unlock()
	writeFromFunction(w, rResult(res))
}

// answered returns the results given so far.
func (s *misbehavingServer) answered() []served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

func (s *misbehavingServer) badRequestsTo(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badRequests[id]
}

func writeFromFunction(w http.ResponseWriter, m *pb.FromFunction) {
	b, err := proto.Marshal(m)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

func rResult(r *pb.FromFunction_InvocationResponse) *pb.FromFunction {
	return &pb.FromFunction{Response: &pb.FromFunction_InvocationResult{InvocationResult: r}}
}

func rModify(name string, typ functions.TypeName, n int64) *pb.FromFunction_PersistedValueMutation {
	v, _ := codec.Int64().Encode(n)
	return &pb.FromFunction_PersistedValueMutation{
		MutationType: pb.FromFunction_PersistedValueMutation_MODIFY,
		StateName:    name,
		StateValue:   &pb.TypedValue{Typename: string(typ), HasValue: true, Value: v},
	}
}

func rEgress(key, value string) *pb.FromFunction_EgressMessage {
	m := functions.KafkaMessage("", key, []byte(value))
	return &pb.FromFunction_EgressMessage{
		EgressNamespace: rOut.Namespace(), EgressType: rOut.Name(),
		Argument: &pb.TypedValue{Typename: string(m.TypeName()), HasValue: true, Value: m.Bytes()},
	}
}

// closedURL returns an http URL template on a local port that nothing
// listens on: connections are refused.
func closedURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/{function.name}"
}

// span is one Invoke of a timedInvoker.
type span struct {
	target     functions.Address
	start, end time.Time
	err        error
}

// timedInvoker records when each Invoke of the client it wraps ran.
type timedInvoker struct {
	*remote.Client
	started chan struct{} // closed when the first Invoke begins
	once    sync.Once
	mu      sync.Mutex
	spans   []span
}

func (ti *timedInvoker) Invoke(ctx context.Context, target functions.Address, state map[string]driver.StoredValue, batch []remote.Call) (*remote.Result, error) {
	start := time.Now()
	ti.once.Do(func() { close(ti.started) })
	res, err := ti.Client.Invoke(ctx, target, state, batch)
	ti.mu.Lock()
	ti.spans = append(ti.spans, span{target: target, start: start, end: time.Now(), err: err})
	ti.mu.Unlock()
	return res, err
}

func (ti *timedInvoker) calls() []span {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return slices.Clone(ti.spans)
}

// remoteRig is a running remote-DLQ application.
type remoteRig struct {
	t       testing.TB
	app     string
	topo    topology.Topology
	p       *Processor
	srv     *misbehavingServer
	fnURL   string // the URL test/rfn is invoked at
	down    *timedInvoker
	downURL string // the URL test/rdown is invoked at
	client  sarama.Client
	prod    *dlqProducer
}

// startRemoteRig runs the application with test/rfn on a misbehaving
// server (slow: the sleep of id "slow") and test/rdown on a closed port,
// both with the call timeout given.
func startRemoteRig(t *testing.T, name string, slow, callTimeout, commitInterval time.Duration, opts ...Option) *remoteRig {
	t.Helper()
	brokers, app := testBroker(t, name)
	topo, reg := remoteDLQApp(app)
	srv := newMisbehavingServer(t, slow)
	newClient := func(url string) *remote.Client {
		c, err := remote.New(remote.Config{URL: url, CallTimeout: callTimeout, ConnectTimeout: callTimeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	fn := newClient(srv.URL + "/{function.name}")
	downClient := newClient(closedURL(t))
	down := &timedInvoker{Client: downClient, started: make(chan struct{})}
	route := func(ft functions.TypeName) remote.Invoker {
		switch ft {
		case rfnType:
			return fn
		case rdownType:
			return down
		}
		return nil
	}
	opts = append([]Option{WithRemoteFunctions(route), WithCommitInterval(commitInterval),
		WithSessionTimeout(2 * time.Second), WithLogger(testLogger(t))}, opts...)
	p, err := New(brokers, topo, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 10*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	rig := &remoteRig{
		t: t, app: app, topo: topo, p: p, srv: srv,
		fnURL: fn.URL(rfnType), down: down, downURL: downClient.URL(rdownType),
		client: testClient(t, brokers), prod: newDLQProducer(t, brokers),
	}
	// the first call of a type learns its state specs; get it done
	rig.send(rig.in(), "warm", "ok#warm#")
	rig.waitOut(10*time.Second, "warm-up", "warm=1")
	return rig
}

func (r *remoteRig) in() string        { return r.app + "-in" }
func (r *remoteRig) downTopic() string { return r.app + "-down" }

// send writes value with key id to topic, on the partition of id, and
// returns its offset.
func (r *remoteRig) send(topic, id, value string) int64 {
	return r.prod.send(topic, partitionFor(id, 4), []byte(id), []byte(value))
}

// sendAll writes records {topic, id, value} in one produce call.
func (r *remoteRig) sendAll(recs ...[3]string) {
	r.t.Helper()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, rec := range recs {
		msgs[i] = &sarama.ProducerMessage{Topic: rec[0], Partition: partitionFor(rec[1], 4), Key: sarama.StringEncoder(rec[1]), Value: sarama.StringEncoder(rec[2])}
	}
	if err := r.prod.sp.SendMessages(msgs); err != nil {
		r.t.Fatalf("produce: %v", err)
	}
}

func (r *remoteRig) out() []string {
	var vals []string
	for _, rec := range readTopic(r.t, r.client, r.app+"-out") {
		vals = append(vals, string(rec.Value))
	}
	return vals
}

// waitOut waits until the egress holds every value of want.
func (r *remoteRig) waitOut(timeout time.Duration, what string, want ...string) {
	r.t.Helper()
	waitFor(r.t, timeout, what, func() (bool, string) {
		got := r.out()
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false, fmt.Sprintf("egress %v, want %v; stats %+v", got, want, r.p.Stats())
			}
		}
		return true, ""
	})
}

// waitDeadLetter waits for the dead letter holding tag and returns it.
func (r *remoteRig) waitDeadLetter(timeout time.Duration, what, tag string) topicRecord {
	r.t.Helper()
	var dl []topicRecord
	waitFor(r.t, timeout, what, func() (bool, string) {
		dl = dlqRecords(r.t, r.client, r.app, tag)
		return len(dl) > 0, fmt.Sprintf("no dead letter holding %q; stats %+v", tag, r.p.Stats())
	})
	return dl[0]
}

// checkDeadLetter checks the headers of a dead letter for target: the
// reason holds every string of reasons, and the function headers name
// target.
func checkDeadLetter(t testing.TB, what string, r topicRecord, target functions.Address, reasons ...string) {
	t.Helper()
	h := r.Headers
	for _, want := range reasons {
		if !strings.Contains(h["stateloop.error"], want) {
			t.Errorf("%s: stateloop.error %q, want it to contain %q", what, h["stateloop.error"], want)
		}
	}
	if h["stateloop.function.type"] != string(target.Type) || h["stateloop.function.id"] != target.ID {
		t.Errorf("%s: function headers %s/%s, want %s", what, h["stateloop.function.type"], h["stateloop.function.id"], target)
	}
}

// tableCount returns the committed count of an address of test/rfn, -1 if
// it has none.
func (r *remoteRig) tableCount(id string) int64 {
	n := int64(-1)
	for _, rec := range readTopic(r.t, r.client, string(r.topo.TableTopic(rfnType))) {
		if rec.Key == id {
			n = -1
			if rec.Value != nil {
				n = recDecodeCount(r.t, rec.Value)
			}
		}
	}
	return n
}

// TestRemoteEndpointMisbehaviourGoesToDeadLetterTopic sends, for each way
// an endpoint can break the protocol, a bad record to the address that
// misbehaves and a good record to the same address right after it. The
// bad record lands once in <app>-dlq with a reason that names the
// endpoint URL and the address; none of its effects are committed; the
// good one is processed. A message to an unknown function type is the
// exception: the sender's effects are committed and the message itself
// dead-letters when the loop topic delivers it.
func TestRemoteEndpointMisbehaviourGoesToDeadLetterTopic(t *testing.T) {
	const callTimeout = time.Second
	rig := startRemoteRig(t, "remote-dlq", 0, callTimeout, 20*time.Millisecond)
	cases := []struct {
		name    string
		id      string
		reasons []string // substrings of stateloop.error besides the URL and the address
		// toUnknown: the bad call succeeds, its message to test/nowhere
		// dead-letters
		toUnknown bool
		retried   bool  // the endpoint sees the bad call more than once
		failures  int64 // failed invocations counted
	}{
		{name: "truncated protobuf body", id: "truncated", failures: 1,
			reasons: []string{"protocol violation", "is not a FromFunction message"}},
		{name: "wrong content type", id: "html", failures: 1,
			reasons: []string{"protocol violation", `Content-Type is "text/html`}},
		{name: "modify with a wrong type name", id: "wrong-type", failures: 1,
			reasons: []string{"protocol violation", `wrote state "count" with type "io.statefun.types/string"`}},
		{name: "modify of an undeclared state", id: "undeclared", failures: 1,
			reasons: []string{"protocol violation", `changed state "undeclared", which it did not declare`}},
		{name: "message to an unknown function type", id: "to-unknown", toUnknown: true,
			reasons: []string{"message to unknown function type test/nowhere"}},
		// checked by the runtime when it applies the result, not by the client
		{name: "egress record for an undeclared egress", id: "bad-egress",
			reasons: []string{"sent an invalid egress record: topology: unknown egress test/no-such-egress", "(remote function at "}},
		{name: "HTTP 404", id: "not-found", failures: 1,
			reasons: []string{"HTTP 404 Not Found", "not retried"}},
		{name: "HTTP 500 until the call timeout", id: "err500", retried: true, failures: 1,
			reasons: []string{"no usable response within the call timeout of 1s", "HTTP 500 Internal Server Error"}},
	}
	started := time.Now()
	for i, c := range cases {
		tag := fmt.Sprintf("#bad-%d#", i)
		before := rig.p.Stats()
		t0 := time.Now()
		pa := partitionFor(c.id, 4)
		off := rig.send(rig.in(), c.id, "bad"+tag)
		rig.send(rig.in(), c.id, "ok"+tag)
		want := []string{c.id + "=1"}
		if c.toUnknown {
			want = []string{c.id + "=1", c.id + "=2"} // the bad call's effects stay
		}
		rig.waitOut(10*time.Second, c.name+": the good record after the bad one processed", want...)
		dl := rig.waitDeadLetter(10*time.Second, c.name+": dead letter", tag)
		t.Logf("%s: dead letter and next good record after %v", c.name, time.Since(t0).Round(time.Millisecond))

		h := dl.Headers
		target := functions.Address{Type: rfnType, ID: c.id}
		reasons := c.reasons
		if c.toUnknown {
			target.Type = rNowhere
			if h["stateloop.source.topic"] != rig.app+"-loop" || h["stateloop.source.partition"] != strconv.Itoa(int(pa)) {
				t.Errorf("%s: source %s/%s, want the loop topic, partition %d", c.name, h["stateloop.source.topic"], h["stateloop.source.partition"], pa)
			}
		} else {
			reasons = append([]string{rig.fnURL, target.String() + " "}, reasons...)
			// delivered directly from the ingress, or (after a hop) from
			// the loop topic at an offset the test does not know
			direct := h["stateloop.source.topic"] == rig.in() && h["stateloop.source.offset"] == strconv.FormatInt(off, 10)
			hop := h["stateloop.source.topic"] == rig.app+"-loop"
			if !direct && !hop || h["stateloop.source.partition"] != strconv.Itoa(int(pa)) {
				t.Errorf("%s: source %s/%s/%s, want %s/%d/%d or the loop topic", c.name, h["stateloop.source.topic"], h["stateloop.source.partition"], h["stateloop.source.offset"], rig.in(), pa, off)
			}
		}
		checkDeadLetter(t, c.name, dl, target, reasons...)

		after := rig.p.Stats()
		if d := after.Failures - before.Failures; d != c.failures {
			t.Errorf("%s: %d failed invocations counted, want %d", c.name, d, c.failures)
		}
		if d := after.DeadLetters - before.DeadLetters; d != 1 {
			t.Errorf("%s: %d dead letters counted, want 1", c.name, d)
		}
		switch n := rig.srv.badRequestsTo(c.id); {
		case c.retried && n < 2:
			t.Errorf("%s: the endpoint got the bad call %d times, want retries", c.name, n)
		case !c.retried && n != 1:
			// a protocol violation is permanent: no retries
			t.Errorf("%s: the endpoint got the bad call %d times, want 1", c.name, n)
		}
	}
	t.Logf("%d cases in %v", len(cases), time.Since(started).Round(time.Millisecond))

	// exactly one dead letter per bad record, none for the good ones
	dlq := readTopic(t, rig.client, rig.app+"-dlq")
	if len(dlq) != len(cases) {
		t.Errorf("dead-letter topic holds %d records, want %d", len(dlq), len(cases))
	}
	for i, c := range cases {
		if n := len(dlqRecords(t, rig.client, rig.app, fmt.Sprintf("#bad-%d#", i))); n != 1 {
			t.Errorf("%s: %d dead letters, want exactly 1", c.name, n)
		}
	}
	// no effect of a rejected response was committed: no egress record,
	// and each count holds the good record only
	for _, v := range rig.out() {
		if strings.Contains(v, "leak") {
			t.Errorf("egress record %q of a rejected response was written", v)
		}
	}
	for _, c := range cases {
		want := int64(1)
		if c.toUnknown {
			want = 2
		}
		if n := rig.tableCount(c.id); n != want {
			t.Errorf("%s: table count of %s is %d, want %d", c.name, c.id, n, want)
		}
	}
	if s := rig.p.Stats(); s.Aborts != 0 {
		t.Errorf("%d transactions aborted; a misbehaving endpoint must not abort transactions", s.Aborts)
	}
}

// TestRemoteEndpointDownDoesNotStopOtherFunctions: test/rdown's endpoint
// refuses connections; a record for it is retried until the call timeout
// and then dead-lettered once. Records for test/rfn consumed in the same
// transaction, one for the same id (same partition) and some for other
// ids, are sent and answered while test/rdown is still retrying, and
// committed with the dead letter; records after it are processed too.
//
// What the runtime does not do: commit the good results before the
// failing call ends. The worker drains every request in flight before it
// commits (the consumed offsets cover them), so the whole instance's
// commits wait for the failing call's timeout.
func TestRemoteEndpointDownDoesNotStopOtherFunctions(t *testing.T) {
	const callTimeout = time.Second
	// a commit interval long enough that the good records, written once
	// test/rdown/x is being invoked, are consumed in its transaction
	rig := startRemoteRig(t, "remote-down", 0, callTimeout, 400*time.Millisecond)
	before := rig.p.Stats()
	t0 := time.Now()
	rig.send(rig.downTopic(), "x", "bad#down#")
	select {
	case <-rig.down.started:
	case <-time.After(10 * time.Second):
		t.Fatalf("test/rdown/x was not invoked; stats %+v", rig.p.Stats())
	}
	// the same id (so the same partition) and other ids of the good type
	rig.sendAll(
		[3]string{rig.in(), "x", "ok#x#"},
		[3]string{rig.in(), "y", "ok#y#"},
		[3]string{rig.in(), "z", "ok#z#"},
	)
	dl := rig.waitDeadLetter(10*time.Second, "dead letter of the down endpoint", "#down#")
	failedAfter := time.Since(t0)
	rig.waitOut(10*time.Second, "the good records", "x=1", "y=1", "z=1")
	committedAfter := time.Since(t0)
	checkDeadLetter(t, "endpoint down", dl, functions.Address{Type: rdownType, ID: "x"},
		"invoke test/rdown/x at "+rig.downURL+":", "no usable response within the call timeout of 1s", "connection refused")

	spans := rig.down.calls()
	if len(spans) != 1 || spans[0].target != (functions.Address{Type: rdownType, ID: "x"}) || spans[0].err == nil {
		t.Fatalf("calls of test/rdown: %+v, want one failed call of test/rdown/x", spans)
	}
	down := spans[0]
	// retried (the client gives up once its next backoff would pass the
	// call timeout, so it may stop well before the timeout is spent)
	var re *remote.Error
	if !errors.As(down.err, &re) || re.Attempts < 2 || !errors.Is(down.err, remote.ErrCallTimeout) {
		t.Fatalf("test/rdown/x failed with %v, want the call timeout after retries", down.err)
	}
	if d := down.end.Sub(down.start); d > callTimeout+time.Second {
		t.Errorf("test/rdown/x failed after %v, want within the call timeout %v", d, callTimeout)
	}
	// the good calls were answered while test/rdown/x was retrying
	for _, id := range []string{"x", "y", "z"} {
		var at time.Time
		for _, a := range rig.srv.answered() {
			if a.id == id {
				at = a.end
			}
		}
		if at.IsZero() || !at.After(down.start) || !at.Before(down.end) {
			t.Errorf("test/rfn/%s answered at %v, want while test/rdown/x retried (%v to %v)",
				id, at.Sub(down.start), time.Duration(0), down.end.Sub(down.start))
		}
	}
	t.Logf("test/rdown/x failed after %d attempts in %v; dead letter visible after %v, good outputs after %v (commits wait for the failing call)",
		re.Attempts, down.end.Sub(down.start).Round(time.Millisecond), failedAfter.Round(time.Millisecond), committedAfter.Round(time.Millisecond))

	// the partition keeps flowing: the same id, and the down type again
	rig.send(rig.in(), "x", "ok#x2#")
	rig.send(rig.downTopic(), "x", "bad#down2#")
	rig.send(rig.in(), "x", "ok#x3#")
	rig.waitOut(10*time.Second, "the good records after the dead letter", "x=2", "x=3")
	rig.waitDeadLetter(10*time.Second, "second dead letter of the down endpoint", "#down2#")

	after := rig.p.Stats()
	if d := after.DeadLetters - before.DeadLetters; d != 2 {
		t.Errorf("%d dead letters counted, want 2", d)
	}
	if n := len(readTopic(t, rig.client, rig.app+"-dlq")); n != 2 {
		t.Errorf("dead-letter topic holds %d records, want 2", n)
	}
	if after.Aborts != 0 {
		t.Errorf("%d transactions aborted, want 0", after.Aborts)
	}
}

// TestRemoteSlowAddressDoesNotBlockOtherAddresses: the endpoint takes 2 s
// to answer test/rfn/slow. The requests of other addresses of the same
// type, consumed in the same transaction, are sent and answered while it
// sleeps (at most one request per address, but addresses in parallel);
// nothing is dead-lettered or aborted.
//
// The commit of that transaction, and so the visibility of every output,
// waits for the slow request: the worker drains all requests in flight
// before a commit, and takes no new input while it drains. The test logs
// both effects; it does not assert them, as they are not guarantees.
func TestRemoteSlowAddressDoesNotBlockOtherAddresses(t *testing.T) {
	const slow = 2 * time.Second
	rig := startRemoteRig(t, "remote-slow", slow, 10*time.Second, 400*time.Millisecond)
	ids := []string{"a", "b", "c", "d"}
	var recs [][3]string
	for _, id := range ids {
		recs = append(recs, [3]string{rig.in(), id, "ok#" + id + "#"})
	}
	t0 := time.Now()
	rig.send(rig.in(), "slow", "ok#slow#")
	select {
	case <-rig.srv.slowStarted:
	case <-time.After(10 * time.Second):
		t.Fatalf("test/rfn/slow was not invoked; stats %+v", rig.p.Stats())
	}
	rig.sendAll(recs...)
	// a second wave while the slow request runs and the transaction of
	// the first wave waits for it to commit
	time.Sleep(slow / 2)
	t1 := time.Now()
	rig.sendAll([3]string{rig.in(), "e", "ok#e#"}, [3]string{rig.in(), "f", "ok#f#"})
	want := []string{"slow=1", "e=1", "f=1"}
	for _, id := range ids {
		want = append(want, id+"=1")
	}
	rig.waitOut(15*time.Second, "every output", want...)
	visible := time.Since(t0)

	answers := map[string]served{}
	for _, a := range rig.srv.answered() {
		answers[a.id] = a
	}
	slowEnd := answers["slow"].end
	for _, id := range ids {
		a, ok := answers[id]
		if !ok || !a.end.Before(slowEnd) {
			t.Errorf("test/rfn/%s answered %v after the slow request began, want before it ended (%v)",
				id, a.end.Sub(answers["slow"].start), slowEnd.Sub(answers["slow"].start))
		}
	}
	if n := rig.srv.maxInFlight.Load(); n < 2 {
		t.Errorf("at most %d requests in flight at the endpoint, want the other addresses' requests alongside the slow one", n)
	}
	if n := len(readTopic(t, rig.client, rig.app+"-dlq")); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if s := rig.p.Stats(); s.Aborts != 0 || s.Failures != 0 {
		t.Errorf("stats %+v: want no aborts and no failures", s)
	}
	t.Logf("max %d requests in flight; slow answered after %v; others of the first wave after %v..%v; all visible after %v",
		rig.srv.maxInFlight.Load(), slowEnd.Sub(t0).Round(time.Millisecond),
		minEnd(answers, ids).Sub(t0).Round(time.Millisecond), maxEnd(answers, ids).Sub(t0).Round(time.Millisecond),
		visible.Round(time.Millisecond))
	t.Logf("second wave written %v after the first, while the commit drained the slow request: its requests reached the endpoint %v after it was written (slow request ended %v after)",
		t1.Sub(t0).Round(time.Millisecond), minStart(answers, []string{"e", "f"}).Sub(t1).Round(time.Millisecond), slowEnd.Sub(t1).Round(time.Millisecond))
}

func minEnd(a map[string]served, ids []string) time.Time {
	var m time.Time
	for _, id := range ids {
		if e := a[id].end; m.IsZero() || e.Before(m) {
			m = e
		}
	}
	return m
}

func maxEnd(a map[string]served, ids []string) time.Time {
	var m time.Time
	for _, id := range ids {
		if e := a[id].end; e.After(m) {
			m = e
		}
	}
	return m
}

func minStart(a map[string]served, ids []string) time.Time {
	var m time.Time
	for _, id := range ids {
		if s := a[id].start; m.IsZero() || s.Before(m) {
			m = s
		}
	}
	return m
}

// TestRemoteCallOutlastingTransactionTimeoutIsDeadLettered: a remote call
// that runs longer than the Kafka transaction allows, while its transaction
// has already produced records (here the output of a good record consumed
// alongside it), must not hold the transaction until the broker aborts it
// (which used to repeat on every replay: the bad record never
// dead-lettered, the good one never committed). Commits do not wait for
// remote calls: the call waits in its address's inbox, the good record's
// transaction commits, and the call's record goes to the dead-letter topic
// when the call fails after its timeout.
func TestRemoteCallOutlastingTransactionTimeoutIsDeadLettered(t *testing.T) {
	callTimeout := 3 * time.Second
	if externalBrokers != nil {
		// Kafka looks for timed-out transactions every 10s
		// (transaction.abort.timed.out.transaction.cleanup.interval.ms)
		callTimeout = 13 * time.Second
	}
	rig := startRemoteRig(t, "remote-txn-timeout", 0, callTimeout, 400*time.Millisecond, WithTransactionTimeout(time.Second))
	rig.send(rig.downTopic(), "x", "bad#down#")
	select {
	case <-rig.down.started:
	case <-time.After(10 * time.Second):
		t.Fatalf("test/rdown/x was not invoked; stats %+v", rig.p.Stats())
	}
	rig.send(rig.in(), "y", "ok#y#")
	rig.waitOut(callTimeout+15*time.Second, "the good record", "y=1")
	// The good record no longer waits for the call (it is parked in the
	// inbox), so the dead letter comes a call timeout after the start.
	rig.waitDeadLetter(callTimeout+15*time.Second, "the dead letter", "#down#")
	if n := len(readTopic(t, rig.client, rig.app+"-dlq")); n != 1 {
		t.Errorf("dead-letter topic holds %d records, want 1", n)
	}
}

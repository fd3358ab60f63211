package processor

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// The mixed cycle application: the cycle application (eos_test.go) with
// test/ping written with the official StateFun Go SDK and served over
// HTTP, and test/pong embedded. Each record makes remote ping(4) ->
// embedded pong(3) -> pong(2) -> remote ping(1) -> ping(0) -> Kafka egress
// from the SDK, so messages cross between remote and embedded functions
// both ways, and the remote function messages itself.

var (
	sdkHops = statefun.ValueSpec{Name: "hops", ValueType: statefun.Int64Type}
	sdkHop  = statefun.MakeJsonType(statefun.TypeNameFrom(string(hopType.Name())))
)

func sdkPing(app string) statefun.StatefulFunctionSpec {
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		var h hop
		if err := msg.As(sdkHop, &h); err != nil {
			return err
		}
		var n int64
		ctx.Storage().Get(sdkHops, &n)
		ctx.Storage().Set(sdkHops, n+1)
		switch {
		case h.Hops == 0:
			seq := strconv.Itoa(h.Seq)
			ctx.SendEgress(statefun.KafkaEgressBuilder{Target: statefun.TypeNameFrom(string(doneOut)), Topic: app + "-done", Key: seq, Value: []byte(seq)})
		case h.Hops%2 == 1:
			ctx.Send(statefun.MessageBuilder{Target: ctx.Self(), Value: hop{Seq: h.Seq, Hops: h.Hops - 1}, ValueType: sdkHop})
		default:
			pong := statefun.Address{FunctionType: statefun.TypeNameFrom(string(pongFn)), Id: ctx.Self().Id}
			ctx.Send(statefun.MessageBuilder{Target: pong, Value: hop{Seq: h.Seq, Hops: h.Hops - 1}, ValueType: sdkHop})
		}
		return nil
	}
	return statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom(string(pingFn)), States: []statefun.ValueSpec{sdkHops}, Function: statefun.StatefulFunctionPointer(fn)}
}

// flakyServer serves SDK functions and answers a share of the requests
// with HTTP 500 instead (without running the function).
type flakyServer struct {
	*httptest.Server
	requests, failed atomic.Int64
}

func newFlakyServer(t testing.TB, failOneIn int, specs ...statefun.StatefulFunctionSpec) *flakyServer {
	t.Helper()
	b := statefun.StatefulFunctionsBuilder()
	for _, s := range specs {
		if err := b.WithSpec(s); err != nil {
			t.Fatal(err)
		}
	}
	h := b.AsHandler()
	s := &flakyServer{}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(3, 4))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		mu.Lock()
		fail := failOneIn > 0 && rng.IntN(failOneIn) == 0
		mu.Unlock()
		if fail {
			s.failed.Add(1)
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// mixedCycleApp builds the mixed cycle application and the option that
// routes test/ping to the SDK server.
func mixedCycleApp(t testing.TB, app string, failOneIn int) (*flakyServer, Option) {
	t.Helper()
	srv := newFlakyServer(t, failOneIn, sdkPing(app))
	client, err := remote.New(remote.Config{URL: srv.URL + "/{function.name}"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return srv, WithRemoteFunctions(func(fn functions.TypeName) remote.Invoker {
		if fn == pingFn {
			return client
		}
		return nil
	})
}

// TestExactlyOnceWithRemoteSDKFunctions runs the exactly-once scenario
// (10,000 records, one commit in six aborted, restarts on reused state)
// with the remote SDK function in the cycle, whose endpoint also answers
// one request in ten with HTTP 500: requests are retried and batched, but
// every effect, remote or embedded, happens exactly once.
func TestExactlyOnceWithRemoteSDKFunctions(t *testing.T) {
	brokers, app := testBroker(t, "remote-eos")
	topo, reg := cycleApp(app)
	embedded := functions.NewRegistry()
	spec, _ := reg.Lookup(pongFn)
	embedded.MustRegister(spec)
	srv, route := mixedCycleApp(t, app, 10)
	cycleScenario(t, brokers, topo, embedded, false, route)
	if srv.failed.Load() == 0 {
		t.Errorf("the endpoint failed no request; the test did not exercise retries")
	}
	t.Logf("%d HTTP requests for %d ping invocations, %d answered with 500", srv.requests.Load(), 3*10000, srv.failed.Load())
}

// TestNamespaceFunctionsGetTablesWhenFirstInvoked: with a namespace served
// as a whole ("remote/*" in module.yaml terms), function types that
// nothing lists get their table topic when first invoked, and a new
// instance with an empty store finds those tables and recovers their
// state. The SDK's egress names its topic (AnyTopic).
func TestNamespaceFunctionsGetTablesWhenFirstInvoked(t *testing.T) {
	brokers, app := testBroker(t, "remote-ns")
	count := statefun.ValueSpec{Name: "n", ValueType: statefun.Int64Type}
	counter := func(next string, egress bool) statefun.StatefulFunction {
		return statefun.StatefulFunctionPointer(func(ctx statefun.Context, msg statefun.Message) error {
			var n int64
			ctx.Storage().Get(count, &n)
			n++
			ctx.Storage().Set(count, n)
			if egress {
				ctx.SendEgress(statefun.KafkaEgressBuilder{Target: statefun.TypeNameFrom("remote/out"), Topic: app + "-out", Key: ctx.Self().Id,
					Value: []byte(fmt.Sprintf("%s=%d", ctx.Self().Id, n))})
				return nil
			}
			ctx.Send(statefun.MessageBuilder{Target: statefun.Address{FunctionType: statefun.TypeNameFrom(next), Id: ctx.Self().Id}, Value: msg.AsString()})
			return nil
		})
	}
	srv := newFlakyServer(t, 0,
		statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("remote/counter"), States: []statefun.ValueSpec{count}, Function: counter("remote/tally", false)},
		statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("remote/tally"), States: []statefun.ValueSpec{count}, Function: counter("", true)})
	rc, err := remote.New(remote.Config{URL: srv.URL + "/{function.name}"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	route := WithRemoteFunctions(func(fn functions.TypeName) remote.Invoker {
		if fn.Namespace() == "remote" {
			return rc
		}
		return nil
	})
	topo := topology.Topology{
		App: app, Partitions: 4, Namespaces: []string{"remote"},
		Ingresses: []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: functions.StringType.Name(), Targets: []functions.TypeName{"remote/counter"}}},
		Egresses:  []topology.Egress{{ID: "remote/out", AnyTopic: true}},
	}
	client := testClient(t, brokers)
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(app+"-out", &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	word, err := functions.StringType.Codec().Encode("w")
	if err != nil {
		t.Fatal(err)
	}
	keys := recKeys(t, 8)
	words := func(rounds int) {
		var recs [][2][]byte
		for r := 0; r < rounds; r++ {
			for _, k := range keys {
				recs = append(recs, [2][]byte{[]byte(k), word})
			}
		}
		produce(t, client, app+"-in", recs...)
	}
	// run one instance until the egress holds want records
	runUntil := func(instance string, rounds, want int) {
		p, err := New(brokers, topo, functions.NewRegistry(), route, WithInstanceID(instance), WithDataDir(t.TempDir()),
			WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		stop := runProcessor(t, p)
		waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
		words(rounds)
		waitFor(t, 30*time.Second, "the tallies", func() (bool, string) {
			got := len(readTopic(t, client, app+"-out"))
			return got >= want, fmt.Sprintf("%d egress records, stats %+v", got, p.Stats())
		})
		stop()
	}
	runUntil("first", 3, 3*len(keys))
	for _, fn := range []functions.TypeName{"remote/counter", "remote/tally"} {
		if counts := tableCountsOf(t, client, topo, fn, "n"); len(counts) != len(keys) {
			t.Errorf("table %s holds %v, want a count for each of %d keys", topo.TableTopic(fn), counts, len(keys))
		}
	}
	// a new instance with an empty store recovers both types' state
	runUntil("second", 1, 4*len(keys))
	got, _ := recEgress(t, client, app)
	for _, k := range keys {
		if seq := got[k]; !slices.Equal(seq, []int64{1, 2, 3, 4}) {
			t.Errorf("key %s: tallies %v, want 1 2 3 4 (state recovered from the tables found at start-up)", k, seq)
		}
	}
}

// TestRemoteStateExpiresAsTheSDKDeclares: a Go SDK function declares a
// value that expires 5 minutes after its last write; on a fake clock the
// runtime sends it as absent once that time has passed, and the sweep
// removes it from the table.
func TestRemoteStateExpiresAsTheSDKDeclares(t *testing.T) {
	brokers, app := testBroker(t, "remote-expiry")
	seen := statefun.ValueSpec{Name: "seen", ValueType: statefun.Int32Type, Expiration: statefun.ExpireAfterWrite(5 * time.Minute)}
	srv := newFlakyServer(t, 0, statefun.StatefulFunctionSpec{
		FunctionType: statefun.TypeNameFrom("remote/visits"), States: []statefun.ValueSpec{seen},
		Function: statefun.StatefulFunctionPointer(func(ctx statefun.Context, msg statefun.Message) error {
			var n int32
			ctx.Storage().Get(seen, &n)
			ctx.Storage().Set(seen, n+1)
			ctx.SendEgress(statefun.KafkaEgressBuilder{Target: statefun.TypeNameFrom("remote/out"), Topic: app + "-out", Key: ctx.Self().Id,
				Value: []byte(fmt.Sprintf("%s=%d", ctx.Self().Id, n+1))})
			return nil
		}),
	})
	rc, err := remote.New(remote.Config{URL: srv.URL + "/{function.name}"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	topo := topology.Topology{
		App: app, Partitions: 4, Functions: []functions.TypeName{"remote/visits"},
		Ingresses: []topology.Ingress{{Topic: topology.Topic(app + "-in"), ValueType: functions.StringType.Name(), Targets: []functions.TypeName{"remote/visits"}}},
		Egresses:  []topology.Egress{{ID: "remote/out", Topics: []topology.Topic{topology.Topic(app + "-out")}}},
	}
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	p, err := New(brokers, topo, functions.NewRegistry(), WithRemoteFunctions(func(functions.TypeName) remote.Invoker { return rc }),
		WithClock(clock.Now), WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	runProcessor(t, p)
	waitFor(t, 30*time.Second, "processor ready", func() (bool, string) { s := p.Stats(); return s.Ready, fmt.Sprint(s) })
	client := testClient(t, brokers)
	word, err := functions.StringType.Codec().Encode("w")
	if err != nil {
		t.Fatal(err)
	}
	visit := func(want int64) {
		t.Helper()
		n := len(readTopic(t, client, app+"-out"))
		produce(t, client, app+"-in", [2][]byte{[]byte("k1"), word})
		waitFor(t, 10*time.Second, "the visit", func() (bool, string) { return len(readTopic(t, client, app+"-out")) > n, "" })
		got, _ := recEgress(t, client, app)
		if seq := got["k1"]; seq[len(seq)-1] != want {
			t.Errorf("at %v: counts %v, want the last to be %d", clock.Now().Format(time.TimeOnly), seq, want)
		}
	}
	visit(1)
	clock.Advance(4 * time.Minute)
	visit(2)
	clock.Advance(6 * time.Minute)
	visit(1) // expired: the SDK saw it absent
	clock.Advance(6 * time.Minute)
	table := string(topo.TableTopic("remote/visits"))
	waitFor(t, 10*time.Second, "the sweep's tombstone", func() (bool, string) {
		recs := readTopic(t, client, table)
		last := recs[len(recs)-1]
		return last.Key == "k1" && last.Value == nil, fmt.Sprintf("last table record %q=%q", last.Key, last.Value)
	})
}

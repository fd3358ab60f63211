package processor

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
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

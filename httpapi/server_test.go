package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/internal/wire"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/prommetrics"
	"github.com/stateloop/stateloop/topology"
)

// The application: test/counter (Go) counts the messages of each id and
// replies with the count; remote/echo (official Go SDK over HTTP) replies
// by sending to its caller; test/quiet never replies.
var (
	counted = functions.NewState("n", functions.IntType)
)

// testApp is the application's HTTP API, served by its Serve.
type testApp struct {
	URL     string
	brokers []string
}

// startApp starts the application with a body limit of 64 bytes.
func startApp(t *testing.T) (testApp, topology.Topology) {
	t.Helper()
	return startAppWith(t, httpapi.Config{MaxBody: 64})
}

// startAppWith starts the application with the HTTP API settings of cfg
// (its Brokers, Topology, Instance, Metrics and Ready are set here).
func startAppWith(t *testing.T, cfg httpapi.Config) (testApp, topology.Topology) {
	t.Helper()
	brokers := kafkatest.StartKfake(t)
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/counter", State: []functions.StateSpec{counted},
		Function: functions.Router(functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			n, _ := counted.Get(ctx)
			counted.Set(ctx, n+1)
			ctx.Reply(functions.StringType.Of(fmt.Sprintf("%s #%d", s, n+1)))
			return nil
		}))})
	// test/typed answers a message of each built-in type with a value of
	// the same type made from it, so that a test sees the function decode
	// what the listener wrote and the listener encode what it answered.
	reg.MustRegister(functions.Spec{Type: "test/typed", Function: functions.Router(
		functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			ctx.Reply(functions.StringType.Of(s + "!"))
			return nil
		}),
		functions.Handle(functions.IntType, func(ctx functions.Context, n int32) error {
			ctx.Reply(functions.IntType.Of(n + 1))
			return nil
		}),
		functions.Handle(functions.LongType, func(ctx functions.Context, n int64) error {
			ctx.Reply(functions.LongType.Of(n + 1))
			return nil
		}),
		functions.Handle(functions.BoolType, func(ctx functions.Context, b bool) error {
			ctx.Reply(functions.BoolType.Of(!b))
			return nil
		}),
		functions.Handle(functions.FloatType, func(ctx functions.Context, x float32) error {
			ctx.Reply(functions.FloatType.Of(x * 2))
			return nil
		}),
		functions.Handle(functions.DoubleType, func(ctx functions.Context, x float64) error {
			ctx.Reply(functions.DoubleType.Of(x * 2))
			return nil
		}),
	)})
	reg.MustRegister(functions.Spec{Type: "test/quiet", Function: functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil })})
	b := statefun.StatefulFunctionsBuilder()
	if err := b.WithSpec(statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("remote/echo"),
		Function: statefun.StatefulFunctionPointer(func(ctx statefun.Context, msg statefun.Message) error {
			ctx.Send(statefun.MessageBuilder{Target: *ctx.Caller(), Value: "echo " + msg.AsString()})
			return nil
		})}); err != nil {
		t.Fatal(err)
	}
	sdk := httptest.NewServer(b.AsHandler())
	t.Cleanup(sdk.Close)
	rc, err := remote.New(remote.Config{URL: sdk.URL + "/{function.name}"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	topo := topology.Topology{App: "api", Partitions: 4, Functions: []functions.TypeName{"test/counter", "test/typed", "test/quiet", "remote/echo"}}
	metrics := prometheus.NewRegistry()
	pm, err := prommetrics.New(topo.App, metrics)
	if err != nil {
		t.Fatal(err)
	}
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond), processor.WithMetrics(pm),
		processor.WithRemoteFunctions(func(fn functions.TypeName) remote.Invoker {
			if fn == "remote/echo" {
				return rc
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg.Brokers, cfg.Topology, cfg.Instance, cfg.Metrics = brokers, topo, "i1", metrics
	cfg.Ready = func() bool { return p.Stats().Ready }
	url := serveAPI(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for !p.Stats().Ready {
		if time.Now().After(deadline) {
			t.Fatal("processor not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return testApp{URL: url, brokers: brokers}, topo
}

// serveAPI starts an HTTP API with cfg on a port of its own until the
// test ends, and returns its URL.
func serveAPI(t *testing.T, cfg httpapi.Config) string {
	t.Helper()
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = api.Run(ctx) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := api.Serve(ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = api.Shutdown(sctx)
		cancel()
		wg.Wait()
		api.Close()
	})
	return "http://" + ln.Addr().String()
}

type response struct {
	status int
	header http.Header
	body   string
}

// post sends body with the message type typeName in the Stateloop-Type
// header (none if "").
func post(t *testing.T, url, typeName, body string) response {
	t.Helper()
	h := http.Header{}
	if typeName != "" {
		h.Set(httpapi.TypeHeader, typeName)
	}
	return postHeaders(t, url, h, body)
}

// postContentType sends body with a Content-Type.
func postContentType(t *testing.T, url, contentType, body string) response {
	t.Helper()
	return postHeaders(t, url, http.Header{"Content-Type": {contentType}}, body)
}

func postHeaders(t *testing.T, url string, h http.Header, body string) response {
	t.Helper()
	return request(t, http.MethodPost, url, h, body)
}

// request sends a request with the headers h (a "Host" in h replaces the
// URL's host in the Host header) and returns the answer.
func request(t *testing.T, method, url string, h http.Header, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	if host := h.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// loopMessageType returns the type of the message in the loop topic's
// record at partition and offset.
func loopMessageType(t *testing.T, brokers []string, topo topology.Topology, partition int32, offset int64) functions.TypeName {
	t.Helper()
	return loopMessage(t, brokers, topo, partition, offset).TypeName()
}

// loopMessage returns the message in the loop topic's record at partition
// and offset.
func loopMessage(t *testing.T, brokers []string, topo topology.Topology, partition int32, offset int64) functions.Message {
	t.Helper()
	for _, r := range kafkatest.Records(t, kafkatest.Client(t, brokers), string(topo.LoopTopic())) {
		if r.Partition == partition && r.Offset == offset {
			env, err := wire.DecodeEnvelope(r.Value)
			if err != nil {
				t.Fatalf("the record at %s/%d@%d does not decode: %v", topo.LoopTopic(), partition, offset, err)
			}
			return env.Argument
		}
	}
	t.Fatalf("no record at %s/%d@%d", topo.LoopTopic(), partition, offset)
	return functions.Message{}
}

func str(t *testing.T, s string) string {
	t.Helper()
	b, err := functions.StringType.Codec().Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPostWaitsForTheReplyOfGoAndSDKFunctions(t *testing.T) {
	srv, _ := startApp(t)
	st := string(functions.StringType.Name())
	for i, want := range []string{"hi #1", "hi #2"} {
		r := post(t, srv.URL+"/v1/functions/test/counter/alice?wait=10s", st, str(t, "hi"))
		got, err := functions.StringType.Codec().Decode([]byte(r.body))
		if r.status != http.StatusOK || err != nil || got != want || r.header.Get(httpapi.TypeHeader) != st {
			t.Errorf("request %d: %d %q (%v), type %q; want 200 %q of type %s", i+1, r.status, got, err, r.header.Get(httpapi.TypeHeader), want, st)
		}
	}
	r := post(t, srv.URL+"/v1/functions/remote/echo/bob?wait=10s", st, str(t, "yo"))
	got, err := functions.StringType.Codec().Decode([]byte(r.body))
	if r.status != http.StatusOK || err != nil || got != "echo yo" || r.header.Get("Stateloop-Replier") != "remote/echo/bob" {
		t.Errorf("SDK function: %d %q (%v), replier %q; want 200 \"echo yo\" from remote/echo/bob", r.status, got, err, r.header.Get("Stateloop-Replier"))
	}
}

func TestPostWithoutWaitIsAcceptedWithItsOffset(t *testing.T) {
	srv, topo := startApp(t)
	r := post(t, srv.URL+"/v1/functions/test/counter/carol", string(functions.StringType.Name()), str(t, "x"))
	var res struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
	}
	if r.status != http.StatusAccepted || json.Unmarshal([]byte(r.body), &res) != nil || res.Topic != string(topo.LoopTopic()) ||
		res.Partition != processor.PartitionFor("carol", 4) {
		t.Errorf("got %d %s; want 202 with the loop topic and partition %d", r.status, r.body, processor.PartitionFor("carol", 4))
	}
	r = post(t, srv.URL+"/v1/functions/test/quiet/dan?wait=300ms", string(functions.StringType.Name()), str(t, "x"))
	if r.status != http.StatusAccepted || !strings.Contains(r.body, "no reply within 300ms") {
		t.Errorf("no reply: got %d %s; want 202 saying there was no reply", r.status, r.body)
	}
}

func TestBadRequestsGetAJSONError(t *testing.T) {
	srv, _ := startApp(t)
	st := string(functions.StringType.Name())
	for _, tc := range []struct {
		name, path, typeName, body string
		status                     int
		says                       string
	}{
		{"unknown function type", "/v1/functions/test/nobody/x", st, "b", 404, "not a function of application api"},
		{"no message type", "/v1/functions/test/counter/x", "", "b", 400, "no message type"},
		{"bad message type", "/v1/functions/test/counter/x", "no-slash", "b", 400, `message type "no-slash"`},
		{"body too large", "/v1/functions/test/counter/x", st, strings.Repeat("b", 65), 413, "larger than 64 bytes"},
		{"bad wait", "/v1/functions/test/counter/x?wait=forever", st, "b", 400, "wait=forever"},
		{"wait too long", "/v1/functions/test/counter/x?wait=2h", st, "b", 400, "up to 1m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, srv.URL+tc.path, tc.typeName, tc.body)
			var e struct {
				Error string `json:"error"`
			}
			if r.status != tc.status || json.Unmarshal([]byte(r.body), &e) != nil || !strings.Contains(e.Error, tc.says) {
				t.Errorf("got %d %s; want %d with an error saying %q", r.status, r.body, tc.status, tc.says)
			}
		})
	}
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz: %v %v, want 200", resp, err)
	}
}

func TestGetStateShowsTheCommittedValues(t *testing.T) {
	srv, _ := startApp(t)
	for i := 0; i < 3; i++ {
		post(t, srv.URL+"/v1/functions/test/counter/erin?wait=10s", string(functions.StringType.Name()), str(t, "x"))
	}
	var got struct {
		Address string `json:"address"`
		State   map[string]struct {
			Type  string `json:"type"`
			Value any    `json:"value"`
		} `json:"state"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/v1/state/test/counter/erin")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err == nil && resp.StatusCode == 200 && got.State["n"].Value == float64(3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/state/test/counter/erin: %d %+v (%v), want n = 3", resp.StatusCode, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.Address != "test/counter/erin" || got.State["n"].Type != "io.statefun.types/int" {
		t.Errorf("got %+v", got)
	}
	for path, want := range map[string]int{"/v1/state/test/counter/nobody": 404, "/v1/state/test/none/x": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestMetricsCountInvocationsPerFunctionType(t *testing.T) {
	srv, _ := startApp(t)
	st := string(functions.StringType.Name())
	for i := 0; i < 2; i++ {
		post(t, srv.URL+"/v1/functions/test/counter/fay?wait=10s", st, str(t, "x"))
	}
	post(t, srv.URL+"/v1/functions/remote/echo/gus?wait=10s", st, str(t, "x"))
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`stateloop_function_invocations_total{app="api",function_type="test/counter",kind="local"} 2`,
		`stateloop_function_invocations_total{app="api",function_type="remote/echo",kind="remote"} 1`,
		`stateloop_function_outgoing_total{app="api",function_type="test/counter",kind="message"} 2`,
		`stateloop_recovered_partitions{app="api"} 4`,
		`stateloop_transactions_committed_total{app="api"}`,
		`stateloop_function_invocation_duration_seconds_count{app="api",function_type="remote/echo",kind="remote"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestIdempotencyKeyMakesARetryCountOnce(t *testing.T) {
	srv, _ := startApp(t)
	send := func(key string) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/functions/test/counter/hal", strings.NewReader(str(t, "x")))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(httpapi.TypeHeader, string(functions.StringType.Name()))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, string(b)}
	}
	first, retry := send("pay-1"), send("pay-1")
	if first.status != http.StatusAccepted || retry.body != first.body {
		t.Errorf("retry answered %d %s, want the first answer %d %s", retry.status, retry.body, first.status, first.body)
	}
	send("pay-2")
	// the count shows how many messages reached the function
	r := post(t, srv.URL+"/v1/functions/test/counter/hal?wait=10s", string(functions.StringType.Name()), str(t, "x"))
	got, err := functions.StringType.Codec().Decode([]byte(r.body))
	if r.status != http.StatusOK || err != nil || got != "x #3" {
		t.Errorf("after pay-1 twice and pay-2: %d %q (%v), want \"x #3\"", r.status, got, err)
	}
}

// Regression test for issue 10, item 11: a message type given as
// Content-Type: application/vnd.<type name>, as docs/operations.md says,
// was always rejected, because mime.ParseMediaType fails on the '/' that
// every type name has. Each built-in type and a namespaced user type must
// reach the loop topic with that type.
func TestContentTypeGivesTheMessageType(t *testing.T) {
	srv, topo := startApp(t)
	for _, tc := range []struct {
		contentType string
		want        functions.TypeName
	}{
		{"application/vnd.io.statefun.types/bool", functions.BoolType.Name()},
		{"application/vnd.io.statefun.types/int", functions.IntType.Name()},
		{"application/vnd.io.statefun.types/long", functions.LongType.Name()},
		{"application/vnd.io.statefun.types/float", functions.FloatType.Name()},
		{"application/vnd.io.statefun.types/double", functions.DoubleType.Name()},
		{"application/vnd.io.statefun.types/string", functions.StringType.Name()},
		{"application/vnd.com.example.shop/add-item", "com.example.shop/add-item"},
		{"Application/VND.com.example.shop/add-item; charset=utf-8", "com.example.shop/add-item"},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/functions/test/quiet/ct", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var res struct {
				Partition int32  `json:"partition"`
				Offset    int64  `json:"offset"`
				Error     string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST with Content-Type %s: %d %+v (%v), want 202", tc.contentType, resp.StatusCode, res, err)
			}
			if got := loopMessageType(t, srv.brokers, topo, res.Partition, res.Offset); got != tc.want {
				t.Errorf("POST with Content-Type %s: the message has type %q, want %q", tc.contentType, got, tc.want)
			}
		})
	}
	for _, ct := range []string{"application/vnd.", "application/vnd.no-slash", "application/json", "text/plain"} {
		r := postContentType(t, srv.URL+"/v1/functions/test/quiet/ct", ct, "x")
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "message type") {
			t.Errorf("POST with Content-Type %q: %d %s, want 400 about the message type", ct, r.status, r.body)
		}
	}
}

// Regression test for issue 10, item 10: a body under the body limit
// whose record is over the producer's max message bytes (a body just under
// 1 MiB: the limit is 1,000,000 bytes, and the envelope adds more) was
// answered 503 "retry later", a permanent failure that a client retries
// for ever. So was a record the broker refuses as too large. Both must be
// 413.
func TestMessageTooLargeForKafkaIs413(t *testing.T) {
	srv, _ := startAppWith(t, httpapi.Config{MaxBody: httpapi.DefaultMaxBody})
	st := string(functions.StringType.Name())
	r := post(t, srv.URL+"/v1/functions/test/quiet/big", st, strings.Repeat("b", httpapi.DefaultMaxBody-100))
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "too large") {
		t.Errorf("a body of 1 MiB - 100 bytes: %d %.300s, want 413 saying the message is too large", r.status, r.body)
	}
	if r := post(t, srv.URL+"/v1/functions/test/quiet/small", st, strings.Repeat("b", 100_000)); r.status != http.StatusAccepted {
		t.Errorf("a body of 100 kB: %d %.300s, want 202", r.status, r.body)
	}

	// the broker's limit for the loop topic is lower than the producer's
	client := kafkatest.Client(t, srv.brokers)
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	limit := "20000"
	if err := admin.AlterConfig(sarama.TopicResource, "api-loop", map[string]*string{"max.message.bytes": &limit}, false); err != nil {
		t.Fatal(err)
	}
	r = post(t, srv.URL+"/v1/functions/test/quiet/big", st, strings.Repeat("b", 50_000))
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "too large") {
		t.Errorf("a body over the topic's max.message.bytes: %d %.300s, want 413 saying the message is too large", r.status, r.body)
	}
}

// A request's traceparent and tracestate reach its loop record as headers
// when the processor traces (TraceContext), and never otherwise; one over
// its bound is left out.
func TestTraceContextOfARequestReachesItsLoopRecordOnlyWhenTracing(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name        string
		tracing     bool
		sent        http.Header
		want        map[string]string
		wantMissing []string
	}{
		{"tracing", true, http.Header{"Traceparent": {parent}, "Tracestate": {"vendor=x"}},
			map[string]string{"traceparent": parent, "tracestate": "vendor=x"}, nil},
		{"tracing, tracestate too long", true, http.Header{"Traceparent": {parent}, "Tracestate": {strings.Repeat("v", 513)}},
			map[string]string{"traceparent": parent}, []string{"tracestate"}},
		{"tracing, traceparent too long", true, http.Header{"Traceparent": {strings.Repeat("0", 257)}, "Tracestate": {"vendor=x"}},
			nil, []string{"traceparent", "tracestate"}},
		{"not tracing", false, http.Header{"Traceparent": {parent}, "Tracestate": {"vendor=x"}},
			nil, []string{"traceparent", "tracestate"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, topo := startAppWith(t, httpapi.Config{TraceContext: tc.tracing})
			h := tc.sent.Clone()
			h.Set(httpapi.TypeHeader, string(functions.StringType.Name()))
			r := postHeaders(t, srv.URL+"/v1/functions/test/quiet/erin", h, str(t, "x"))
			var res struct {
				Partition int32 `json:"partition"`
				Offset    int64 `json:"offset"`
			}
			if r.status != http.StatusAccepted || json.Unmarshal([]byte(r.body), &res) != nil {
				t.Fatalf("got %d %s, want 202 with the record's offset", r.status, r.body)
			}
			// read_committed: the record shows once the processor's open
			// transaction on the partition ends
			client := kafkatest.Client(t, srv.brokers)
			var headers map[string]string
			for deadline := time.Now().Add(10 * time.Second); headers == nil; time.Sleep(20 * time.Millisecond) {
				for _, rec := range kafkatest.Records(t, client, string(topo.LoopTopic())) {
					if rec.Partition == res.Partition && rec.Offset == res.Offset {
						headers = rec.Headers
					}
				}
				if headers == nil && time.Now().After(deadline) {
					t.Fatalf("no loop record at %d@%d after 10s", res.Partition, res.Offset)
				}
			}
			for k, v := range tc.want {
				if headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, headers[k], v)
				}
			}
			for _, k := range tc.wantMissing {
				if v, ok := headers[k]; ok {
					t.Errorf("header %s = %q, want none", k, v)
				}
			}
		})
	}
}

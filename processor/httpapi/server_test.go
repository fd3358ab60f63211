package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/processor/httpapi"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/topology"
)

// The application: test/counter (Go) counts the messages of each id and
// replies with the count; remote/echo (official Go SDK over HTTP) replies
// by sending to its caller; test/quiet never replies.
var (
	counted = functions.NewState("n", functions.IntType)
)

func startApp(t *testing.T) (*httptest.Server, topology.Topology) {
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
	topo := topology.Topology{App: "api", Partitions: 4, Functions: []functions.TypeName{"test/counter", "test/quiet", "remote/echo"}}
	metrics := prometheus.NewRegistry()
	p, err := processor.New(brokers, topo, reg, processor.WithCommitInterval(20*time.Millisecond), processor.WithMetrics(metrics),
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
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	api, err := httpapi.New(httpapi.Config{Brokers: brokers, Topology: topo, Instance: "i1", MaxBody: 64, Metrics: metrics,
		Ready: func() bool { return p.Stats().Ready }})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer wg.Done(); _ = api.Run(ctx) }()
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); wg.Wait(); api.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for !p.Stats().Ready {
		if time.Now().After(deadline) {
			t.Fatal("processor not ready after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return srv, topo
}

type response struct {
	status int
	header http.Header
	body   string
}

func post(t *testing.T, url, typeName, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if typeName != "" {
		req.Header.Set(httpapi.TypeHeader, typeName)
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

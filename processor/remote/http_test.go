package remote_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"google.golang.org/protobuf/proto"
)

func respond(w http.ResponseWriter, from *pb.FromFunction) {
	b, err := proto.Marshal(from)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

func okResult() *pb.FromFunction {
	return result(&pb.FromFunction_InvocationResponse{})
}

func result(r *pb.FromFunction_InvocationResponse) *pb.FromFunction {
	return &pb.FromFunction{Response: &pb.FromFunction_InvocationResult{InvocationResult: r}}
}

func incomplete(specs ...*pb.FromFunction_PersistedValueSpec) *pb.FromFunction {
	return &pb.FromFunction{Response: &pb.FromFunction_IncompleteInvocationContext_{
		IncompleteInvocationContext: &pb.FromFunction_IncompleteInvocationContext{MissingValues: specs}}}
}

func intSpec(name string) *pb.FromFunction_PersistedValueSpec {
	return &pb.FromFunction_PersistedValueSpec{StateName: name, TypeTypename: "io.statefun.types/int"}
}

// withState answers the first request with an IncompleteInvocationContext
// declaring seen (an int) and every later one with then.
func withState(then *pb.FromFunction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req pb.ToFunction
		b := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(b)
		_ = proto.Unmarshal(b, &req)
		if len(req.GetInvocation().GetState()) == 0 {
			respond(w, incomplete(intSpec("seen")))
			return
		}
		respond(w, then)
	}
}

// sequence answers the n-th request with handlers[n], repeating the last.
func sequence(handlers ...http.HandlerFunc) (http.HandlerFunc, *atomic.Int64) {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		handlers[min(i, len(handlers)-1)](w, r)
	}, &n
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, http.StatusText(code)+" from the test", code)
	}
}

func ok(w http.ResponseWriter, _ *http.Request) { respond(w, okResult()) }

var greet = []remote.Call{{Argument: functions.StringType.Of("Bob")}}

func invoke(t *testing.T, c *remote.Client) (*remote.Result, error) {
	t.Helper()
	return c.Invoke(ctxTimeout(t, 20*time.Second), addr("example/greeter", "Bob"), nil, greet)
}

func attempts(err error) int {
	var re *remote.Error
	if errors.As(err, &re) {
		return re.Attempts
	}
	return -1
}

func TestRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		first http.HandlerFunc
	}{
		{"500", status(500)},
		{"503", status(503)},
		{"429", status(429)},
		{"408", status(408)},
		{"slow response", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			select { // longer than the read timeout
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, n := sequence(tc.first, tc.first, ok)
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := newClient(t, remote.Config{URL: srv.URL, CallTimeout: 10 * time.Second, ReadTimeout: 100 * time.Millisecond})
			if _, err := invoke(t, c); err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			if n.Load() != 3 {
				t.Errorf("server saw %d requests, want 3", n.Load())
			}
		})
	}
}

// TestConnectionRefusedThenUp: the endpoint comes up while the client
// retries.
func TestConnectionRefusedThenUp(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostport := l.Addr().String()
	_ = l.Close()
	c := newClient(t, remote.Config{URL: "http://" + hostport + "/{function.name}", CallTimeout: 10 * time.Second})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ok))
	defer srv.Close()
	go func() {
		time.Sleep(200 * time.Millisecond)
		l, err := net.Listen("tcp", hostport)
		if err != nil {
			t.Errorf("listen again on %s: %v", hostport, err)
			return
		}
		srv.Listener = l
		srv.Start()
	}()
	_, err = invoke(t, c)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
}

// TestCallTimeoutExhausted: the error names the endpoint and the address,
// and is not permanent.
func TestCallTimeoutExhausted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(status(503))
	defer srv.Close()
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}", CallTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := invoke(t, c)
	if !errors.Is(err, remote.ErrCallTimeout) || remote.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable ErrCallTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Invoke took %v with a call timeout of 300ms", d)
	}
	for _, want := range []string{srv.URL + "/greeter", "example/greeter/Bob", "503", "call timeout of 300ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := attempts(err); n < 3 {
		t.Errorf("%d attempts, want several", n)
	}

	// An endpoint that is down.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + l.Addr().String()
	_ = l.Close()
	c = newClient(t, remote.Config{URL: down, CallTimeout: 200 * time.Millisecond})
	_, err = invoke(t, c)
	if !errors.Is(err, remote.ErrCallTimeout) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), down) {
		t.Fatalf("got %v, want ErrCallTimeout naming %s and the refused connection", err, down)
	}
}

func TestPermanentErrors(t *testing.T) {
	t.Parallel()
	declared := func(r *pb.FromFunction_InvocationResponse) http.HandlerFunc { return withState(result(r)) }
	typed := func(name, value string) *pb.TypedValue {
		return &pb.TypedValue{Typename: name, HasValue: true, Value: []byte(value)}
	}
	to := &pb.Address{Namespace: "example", Type: "printer", Id: "Bob"}
	valid, _ := proto.Marshal(result(&pb.FromFunction_InvocationResponse{
		OutgoingMessages: []*pb.FromFunction_Invocation{{Target: to, Argument: typed("io.statefun.types/string", "hello there")}}}))
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    []string
	}{
		{"404", status(404), []string{"404", "(not retried)", "URL template"}},
		{"400", status(400), []string{"400 Bad Request", "Bad Request from the test"}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, []string{"302", `"/elsewhere"`}},
		{"text/html", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>a web page</html>"))
		}, []string{`Content-Type is "text/html"`, "application/octet-stream"}},
		{"no content type", func(w http.ResponseWriter, _ *http.Request) { w.Header()["Content-Type"] = nil }, []string{`Content-Type is ""`}},
		{"truncated", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(valid[:len(valid)-3])
		}, []string{"not a FromFunction message"}},
		{"modify with wrong type", declared(&pb.FromFunction_InvocationResponse{StateMutations: []*pb.FromFunction_PersistedValueMutation{{
			MutationType: pb.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen", StateValue: typed("io.statefun.types/long", "\x09\x01\x00\x00\x00\x00\x00\x00\x00")}}}),
			[]string{`state "seen"`, `"io.statefun.types/long"`, "declared it with type io.statefun.types/int"}},
		{"modify undeclared", declared(&pb.FromFunction_InvocationResponse{StateMutations: []*pb.FromFunction_PersistedValueMutation{{
			MutationType: pb.FromFunction_PersistedValueMutation_MODIFY, StateName: "other", StateValue: typed("io.statefun.types/int", "")}}}),
			[]string{`state "other"`, "did not declare"}},
		{"delete undeclared", declared(&pb.FromFunction_InvocationResponse{StateMutations: []*pb.FromFunction_PersistedValueMutation{{StateName: "other"}}}),
			[]string{`state "other"`, "did not declare"}},
		{"modify without value", declared(&pb.FromFunction_InvocationResponse{StateMutations: []*pb.FromFunction_PersistedValueMutation{{
			MutationType: pb.FromFunction_PersistedValueMutation_MODIFY, StateName: "seen"}}}), []string{"without a value"}},
		{"unknown mutation type", declared(&pb.FromFunction_InvocationResponse{StateMutations: []*pb.FromFunction_PersistedValueMutation{{
			MutationType: 7, StateName: "seen"}}}), []string{"unknown mutation type 7"}},
		{"message without type name", func(w http.ResponseWriter, _ *http.Request) {
			respond(w, result(&pb.FromFunction_InvocationResponse{OutgoingMessages: []*pb.FromFunction_Invocation{{Target: to, Argument: typed("", "x")}}}))
		}, []string{"message to example/printer/Bob without a valid type name"}},
		{"message without argument", func(w http.ResponseWriter, _ *http.Request) {
			respond(w, result(&pb.FromFunction_InvocationResponse{OutgoingMessages: []*pb.FromFunction_Invocation{{Target: to}}}))
		}, []string{"without a value"}},
		{"message to an empty id", func(w http.ResponseWriter, _ *http.Request) {
			respond(w, result(&pb.FromFunction_InvocationResponse{OutgoingMessages: []*pb.FromFunction_Invocation{{
				Target: &pb.Address{Namespace: "example", Type: "printer"}, Argument: typed("a/b", "x")}}}))
		}, []string{"invalid address", "empty id"}},
		{"egress without type name", func(w http.ResponseWriter, _ *http.Request) {
			respond(w, result(&pb.FromFunction_InvocationResponse{OutgoingEgresses: []*pb.FromFunction_EgressMessage{{
				EgressNamespace: "example", EgressType: "out", Argument: typed("nameless", "x")}}}))
		}, []string{"egress message to example/out without a valid type name"}},
		{"egress without name", func(w http.ResponseWriter, _ *http.Request) {
			respond(w, result(&pb.FromFunction_InvocationResponse{OutgoingEgresses: []*pb.FromFunction_EgressMessage{{Argument: typed("a/b", "x")}}}))
		}, []string{"invalid egress"}},
		{"cancellation without token", func(w http.ResponseWriter, _ *http.Request) {
			respond(w, result(&pb.FromFunction_InvocationResponse{DelayedInvocations: []*pb.FromFunction_DelayedInvocation{{IsCancellationRequest: true}}}))
		}, []string{"without a cancellation token"}},
		{"negative delay", func(w http.ResponseWriter, _ *http.Request) {
			respond(w, result(&pb.FromFunction_InvocationResponse{DelayedInvocations: []*pb.FromFunction_DelayedInvocation{{
				DelayInMs: -5, Target: to, Argument: typed("a/b", "x")}}}))
		}, []string{"delay of -5 ms"}},
		{"no missing specs", func(w http.ResponseWriter, _ *http.Request) { respond(w, incomplete()) }, []string{"lists no missing state"}},
		{"missing state that was sent", func(w http.ResponseWriter, _ *http.Request) { respond(w, incomplete(intSpec("seen"))) },
			[]string{`state "seen" missing although the request carried it`}},
		{"state type changes", func() http.HandlerFunc {
			h, _ := sequence(
				func(w http.ResponseWriter, _ *http.Request) { respond(w, incomplete(intSpec("seen"))) },
				func(w http.ResponseWriter, _ *http.Request) {
					respond(w, incomplete(intSpec("other"), &pb.FromFunction_PersistedValueSpec{StateName: "seen", TypeTypename: "io.statefun.types/long"}))
				})
			return h
		}(), []string{`declares state "seen" with type io.statefun.types/long`, "registered with type io.statefun.types/int"}},
		{"response too large", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(make([]byte, 2000))
		}, []string{"larger than the limit of 1000 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				tc.handler(w, r)
			}))
			defer srv.Close()
			c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}", CallTimeout: 10 * time.Second, MaxResponseBytes: 1000})
			res, err := invoke(t, c)
			if err == nil {
				t.Fatalf("got %+v, want an error", res)
			}
			if !remote.IsPermanent(err) || errors.Is(err, remote.ErrCallTimeout) {
				t.Errorf("error %v is not permanent", err)
			}
			var re *remote.Error
			if !errors.As(err, &re) || re.URL != srv.URL+"/greeter" || re.Address != addr("example/greeter", "Bob") {
				t.Errorf("error %#v does not name the URL and address", re)
			}
			for _, want := range append(tc.want, srv.URL+"/greeter", "example/greeter/Bob") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if int64(re.Attempts) != n.Load() || n.Load() > 2 {
				t.Errorf("%d attempts, server saw %d; want at most the state round trip", re.Attempts, n.Load())
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := newClient(t, remote.Config{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Invoke(ctx, addr("example/greeter", "Bob"), nil, greet)
	if !errors.Is(err, context.Canceled) || remote.IsPermanent(err) || errors.Is(err, remote.ErrCallTimeout) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Invoke returned %v after the cancel", d)
	}
}

func TestRequest(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body pb.ToFunction
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(b)
		_ = proto.Unmarshal(b, &body)
		ok(w, r)
	}))
	defer srv.Close()
	c := newClient(t, remote.Config{URL: srv.URL + "/v1/{function.name}?x=1"})
	caller := addr("example/sender", "7")
	_, err := c.Invoke(ctxTimeout(t, 5*time.Second), addr("example/greeter", "Bob"), nil,
		[]remote.Call{{Argument: functions.StringType.Of("a")}, {Caller: &caller, Argument: functions.LongType.Of(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.Header.Get("Content-Type") != "application/octet-stream" || got.URL.Path != "/v1/greeter" || got.URL.RawQuery != "x=1" {
		t.Errorf("request %s %s %v", got.Method, got.URL, got.Header)
	}
	b := body.GetInvocation()
	if tg := b.GetTarget(); tg.GetNamespace() != "example" || tg.GetType() != "greeter" || tg.GetId() != "Bob" {
		t.Errorf("target %v", tg)
	}
	inv := b.GetInvocations()
	if len(inv) != 2 || inv[0].GetCaller() != nil || inv[1].GetCaller().GetId() != "7" || inv[1].GetCaller().GetType() != "sender" ||
		!inv[0].GetArgument().GetHasValue() || inv[1].GetArgument().GetTypename() != "io.statefun.types/long" {
		t.Errorf("invocations %v", inv)
	}
}

func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	var cur, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		ok(w, r)
	}))
	defer srv.Close()
	c := newClient(t, remote.Config{URL: srv.URL, MaxInFlight: 3})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := c.Invoke(ctxTimeout(t, 10*time.Second), addr("example/greeter", string(rune('a'+i))), nil, greet); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d, want 2..3", p)
	}
}

func TestEmptyBatch(t *testing.T) {
	t.Parallel()
	c := newClient(t, remote.Config{URL: "http://127.0.0.1:1"})
	_, err := c.Invoke(context.Background(), addr("example/greeter", "Bob"), nil, nil)
	if !remote.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := remote.New(remote.Config{URL: "ftp://x/{function.name}", CallTimeout: -1, TLS: remote.TLSConfig{CertFile: "c.pem"}})
	for _, want := range []string{"scheme must be http or https", "call timeout -1ns", "set both files or neither"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if _, err := remote.New(remote.Config{}); err == nil || !strings.Contains(err.Error(), "URL is empty") {
		t.Errorf("empty config: got %v", err)
	}
	if _, err := remote.New(remote.Config{URL: "http:///path"}); err == nil || !strings.Contains(err.Error(), "no host") {
		t.Errorf("no host: got %v", err)
	}
	if _, err := remote.New(remote.Config{URL: "https://x", TLS: remote.TLSConfig{CAFile: "/does/not/exist"}}); err == nil {
		t.Error("missing CA file accepted")
	}
}

// A request carries the W3C trace context of its batch's first call in its
// traceparent and tracestate headers, on every attempt (StateFun SDKs
// ignore headers they do not know); a batch without one sends neither
// header.
func TestRequestCarriesTheTraceContextOfItsFirstCall(t *testing.T) {
	t.Parallel()
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name                  string
		calls                 []remote.Call
		wantParent, wantState string
	}{
		{"without a trace context", greet, "", ""},
		{"with traceparent and tracestate", []remote.Call{
			{Argument: functions.StringType.Of("a"), TraceParent: parent, TraceState: "vendor=x"},
			{Argument: functions.StringType.Of("b"), TraceParent: "00-11111111111111111111111111111111-2222222222222222-01"},
		}, parent, "vendor=x"},
		{"with traceparent only", []remote.Call{{Argument: functions.StringType.Of("a"), TraceParent: parent}}, parent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var headers []http.Header
			record := func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				headers = append(headers, r.Header.Clone())
				mu.Unlock()
			}
			// the first attempt fails: the retry carries the headers too
			h, _ := sequence(
				func(w http.ResponseWriter, r *http.Request) {
					record(w, r)
					status(http.StatusServiceUnavailable)(w, r)
				},
				func(w http.ResponseWriter, r *http.Request) { record(w, r); ok(w, r) })
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := newClient(t, remote.Config{URL: srv.URL})
			if _, err := c.Invoke(ctxTimeout(t, 20*time.Second), addr("example/greeter", "Bob"), nil, tc.calls); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(headers) != 2 {
				t.Fatalf("%d requests, want 2 (one retry)", len(headers))
			}
			for i, hs := range headers {
				if _, ok := hs["Traceparent"]; ok != (tc.wantParent != "") || hs.Get("traceparent") != tc.wantParent {
					t.Errorf("request %d: traceparent %q (present %v), want %q", i+1, hs.Get("traceparent"), ok, tc.wantParent)
				}
				if _, ok := hs["Tracestate"]; ok != (tc.wantState != "") || hs.Get("tracestate") != tc.wantState {
					t.Errorf("request %d: tracestate %q (present %v), want %q", i+1, hs.Get("tracestate"), ok, tc.wantState)
				}
			}
		})
	}
}

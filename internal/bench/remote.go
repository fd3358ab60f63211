package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/processor/remote"
)

// The remote side runs the counter application of the runtime side in a
// processor, but bench/counter is written with the official StateFun Go
// SDK and served over HTTP by a server in this process, on a loopback port,
// and the processor reaches it through processor.WithRemoteFunctions and a
// remote.Client: StateFun's request-reply protocol, batched per address
// with one request in flight per address.

// sdkCount is the SDK's declaration of the count state: the same name and
// type (io.statefun.types/long) as the embedded function's countState, so
// the two functions read and write the same state record format.
var sdkCount = statefun.ValueSpec{Name: "count", ValueType: statefun.Int64Type}

// sdkCounter returns bench/counter written with the StateFun Go SDK: it
// adds one to the count of its address and writes one record to the
// egress bench/out, topic out, with key = id and value = the input value
// followed by the count, after work rounds of hashing. calls counts its
// invocations. A non-nil fault
// changes the count before it is stored and written (tests use it to see
// the checks fail).
func sdkCounter(out string, work int, calls *atomic.Int64, fault func(int64) int64) statefun.StatefulFunctionSpec {
	egress := statefun.TypeNameFrom(string(OutEgress))
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		calls.Add(1)
		burn(work)
		var n int64
		ctx.Storage().Get(sdkCount, &n)
		n++
		if fault != nil {
			n = fault(n)
		}
		ctx.Storage().Set(sdkCount, n)
		ctx.SendEgress(statefun.KafkaEgressBuilder{
			Target: egress,
			Topic:  out,
			Key:    ctx.Self().Id,
			Value:  outputValue(msg.RawValue(), n),
		})
		return nil
	}
	return statefun.StatefulFunctionSpec{
		FunctionType: statefun.TypeNameFrom(string(CounterType)),
		States:       []statefun.ValueSpec{sdkCount},
		Function:     statefun.StatefulFunctionPointer(fn),
	}
}

// functionServer serves SDK functions over HTTP/1.1 with keep-alive on a
// loopback port, and counts what it serves.
type functionServer struct {
	ln  net.Listener
	srv *http.Server
	url string

	requests atomic.Int64 // HTTP requests received
	conns    atomic.Int64 // connections accepted
	calls    atomic.Int64 // invocations of the function (batched calls)

	served chan error // Serve's result
}

// startFunctionServer listens on a free port of 127.0.0.1 and serves specs
// there; url is the endpoint's URL template for a remote.Config.
func startFunctionServer(specs ...func(calls *atomic.Int64) statefun.StatefulFunctionSpec) (*functionServer, error) {
	fs := &functionServer{served: make(chan error, 1)}
	b := statefun.StatefulFunctionsBuilder()
	for _, spec := range specs {
		if err := b.WithSpec(spec(&fs.calls)); err != nil {
			return nil, fmt.Errorf("bench: remote: function server: %w", err)
		}
	}
	h := b.AsHandler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: remote: function server: %w", err)
	}
	fs.ln = ln
	fs.url = "http://" + ln.Addr().String() + "/{function.name}"
	fs.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fs.requests.Add(1)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				fs.conns.Add(1)
			}
		},
	}
	go func() { fs.served <- fs.srv.Serve(ln) }()
	return fs, nil
}

// close shuts the server down, waiting up to 5s for requests in progress.
func (fs *functionServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := fs.srv.Shutdown(ctx)
	if serr := <-fs.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("function server: %w", err)
	}
	return nil
}

// httpCounts are the function server's counters at one moment.
type httpCounts struct {
	requests, conns, calls int64
}

// remoteSide is the runtime side with bench/counter as a remote function.
type remoteSide struct {
	*runtimeSide
	srv    *functionServer
	client *remote.Client
	fault  func(int64) int64
}

func newRemoteSide(b *bench, run sideRun) *remoteSide {
	app := "bench-" + b.runID + "-remote"
	topo, _ := CounterApp(app, app+"-in", app+"-out", b.cfg.Partitions, 0)
	// no embedded function: bench/counter is served over HTTP only
	rs := &runtimeSide{b: b, label: run.label, threads: run.threads, topo: topo, reg: functions.NewRegistry(), fail: make(chan error, 1)}
	return &remoteSide{runtimeSide: rs, fault: b.cfg.remoteFault}
}

func (s *remoteSide) start(ctx context.Context) error {
	_, out := s.topics()
	srv, err := startFunctionServer(func(calls *atomic.Int64) statefun.StatefulFunctionSpec {
		return sdkCounter(out, s.b.work, calls, s.fault)
	})
	if err != nil {
		return err
	}
	client, err := remote.New(remote.Config{URL: srv.url, MaxInFlight: s.b.cfg.RemoteMaxInFlight})
	if err != nil {
		_ = srv.close()
		return fmt.Errorf("bench: remote: %w", err)
	}
	s.srv, s.client = srv, client
	s.opts = []processor.Option{processor.WithRemoteFunctions(func(t functions.TypeName) remote.Invoker {
		if t == CounterType {
			return client
		}
		return nil
	})}
	if err := s.runtimeSide.start(ctx); err != nil {
		_ = s.runtimeSide.stop()
		client.Close()
		_ = srv.close()
		return err
	}
	return nil
}

func (s *remoteSide) stop() error {
	if s.srv == nil {
		return nil
	}
	err := s.runtimeSide.stop()
	s.client.Close()
	if serr := s.srv.close(); serr != nil {
		err = errors.Join(err, serr)
	}
	s.srv = nil
	return err
}

// http returns the function server's counters so far.
func (s *remoteSide) http() httpCounts {
	return httpCounts{requests: s.srv.requests.Load(), conns: s.srv.conns.Load(), calls: s.srv.calls.Load()}
}

package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/prommetrics"
	"github.com/stateloop/stateloop/topology"
	"github.com/stateloop/stateloop/topology/module"
)

// pollInterval is how often Run looks at the processor's Stats to report
// progress.
const pollInterval = 200 * time.Millisecond

// dialTimeout bounds the check that an external broker is reachable.
const dialTimeout = 3 * time.Second

// brokerGoneWait bounds how long Run waits for the processor to stop after
// the embedded broker died: with no broker its last commit cannot succeed,
// and its local state is safe to leave as after a kill -9.
const brokerGoneWait = 3 * time.Second

// Run runs the application that build makes until ctx is cancelled, with
// the settings of f. It prints progress lines to out and logs to stderr.
//
// It first locks f.DataDir (see [processor.LockDataDir]) and keeps it
// locked until it returns, and prints which data dir and instance id the
// instance uses. Without brokers it then starts an embedded broker on
// f.Listen with its data in <f.DataDir>/broker, in a child process (see
// [embedded.Start]: the program's main must call [embedded.ServeIfChild]
// first, as [Main] does). The partition count of the application is
// f.Partitions unless the topology sets one.
//
// When ctx is cancelled Run stops the processor, which commits its last
// transaction and leaves the consumer group, then closes the embedded
// broker, and returns nil. It returns an error for invalid flags or an
// invalid application (every problem at once), at once when another
// running instance holds the data dir, when the brokers cannot be reached,
// when the embedded broker cannot start or stops by itself (within a few
// seconds of its end, with its reason: the processor is given 3 s to stop),
// and when the processor fails. opts set what the flags do not (see
// [WithProcessorOptions]).
func Run(ctx context.Context, f Flags, build func() (topology.Topology, *functions.Registry), out io.Writer, opts ...Option) error {
	if err := f.Validate(); err != nil {
		return err
	}
	logger := f.Logger(os.Stderr)
	topo, reg := build()
	brokers := SplitBrokers(strings.Join(f.Brokers, ","))
	var moduleOpts []processor.Option
	if len(f.ModuleFiles) > 0 {
		files := strings.Join(f.ModuleFiles, ", ")
		mod, err := LoadModules(f.ModuleFiles, logger)
		if err != nil {
			return err
		}
		defer mod.Close()
		for _, n := range mod.Notes() {
			fmt.Fprintln(out, "note:", n)
		}
		if topo.App == "" {
			first := f.ModuleFiles[0]
			topo.App = cmp.Or(mod.GroupID(), strings.TrimSuffix(filepath.Base(first), filepath.Ext(first)))
			fmt.Fprintf(out, "application name %s (the consumer group and the prefix of its topics; set it with --app)\n", topo.App)
		}
		if len(brokers) == 0 {
			addr, err := mod.Brokers()
			if err != nil {
				return err
			}
			if len(addr) > 0 {
				brokers = addr
				fmt.Fprintf(out, "using the Kafka address that %s names: %s (--brokers overrides it)\n", files, strings.Join(addr, ","))
			}
		}
		if in := mod.PlaygroundIngress(); in != nil {
			f.playgroundPaths = true
			if f.HTTP == "" {
				f.HTTP = net.JoinHostPort("127.0.0.1", strconv.Itoa(in.Port))
				fmt.Fprintf(out, "note: %s: %s: served by the HTTP listener on %s (POST or PUT /{namespace}/{name}/{id}, Content-Type application/vnd.<type name>); "+
					"give --http (and --http-token-file) to listen elsewhere\n", in.Pos, module.KindPlaygroundIngress, f.HTTP)
			} else {
				fmt.Fprintf(out, "note: %s: %s: served by the HTTP listener of --http %s (POST or PUT /{namespace}/{name}/{id}, Content-Type application/vnd.<type name>); port %d is not used\n",
					in.Pos, module.KindPlaygroundIngress, f.HTTP, in.Port)
			}
		}
		if topo, moduleOpts, err = mod.Merge(topo, reg); err != nil {
			return fmt.Errorf("app: module %s: %w", files, err)
		}
	}
	switch {
	case topo.Partitions == 0:
		topo.Partitions = f.Partitions
	case f.Partitions != 0 && f.Partitions != topology.DefaultPartitions && f.Partitions != topo.Partitions:
		fmt.Fprintf(out, "note: application %s sets %d partitions itself; --partitions %d is ignored\n", topo.App, topo.Partitions, f.Partitions)
	}
	if err := topo.Validate(); err != nil {
		return fmt.Errorf("app: invalid application: %w", err)
	}
	popts := append([]processor.Option{processor.WithLogger(logger)}, moduleOpts...)
	tr, err := tracingFromEnv(ctx, topo.App)
	if err != nil {
		return err
	}
	if tr != nil {
		fmt.Fprintf(out, "tracing: exporting spans with %s\n", tr)
		popts = append(popts, processor.WithTracerProvider(tr.tp))
		// after the processor stopped: its last spans are exported too
		defer func() {
			if err := tr.shutdown(); err != nil {
				logger.Warn("spans lost", "err", err)
			}
		}()
	}
	dataDir, err := lockDataDir(f, out)
	if err != nil {
		return err
	}
	if dataDir != nil {
		defer dataDir.Unlock()
		popts = append(popts, processor.WithLockedDataDir(dataDir))
	}
	if f.CommitInterval > 0 {
		popts = append(popts, processor.WithCommitInterval(f.CommitInterval))
	}
	if f.InstanceID != "" {
		popts = append(popts, processor.WithInstanceID(f.InstanceID))
	}
	threads := f.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	popts = append(popts, processor.WithThreads(threads), processor.WithStandbys(f.Standbys),
		processor.WithReplicationFactor(int16(f.ReplicationFactor)), processor.WithMinInsyncReplicas(f.MinInsyncReplicas))

	var broker *embedded.Broker
	if len(brokers) == 0 {
		b, err := startBroker(ctx, f, topo.PartitionCount(), logger, out)
		if err != nil {
			return err
		}
		broker = b
		brokers = []string{b.Addr()}
	}
	fmt.Fprintf(out, "connecting to Kafka at %s\n", strings.Join(brokers, ","))
	if broker == nil {
		if err := checkReachable(ctx, brokers); err != nil {
			return err
		}
	}
	err = run(ctx, f, brokers, topo, reg, popts, collect(opts).processor, broker, out)
	if broker != nil {
		if cerr := broker.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("app: stop the embedded Kafka broker: %w", cerr)
		}
	}
	return err
}

// lockDataDir locks f.DataDir for this instance before anything uses it
// (the embedded broker keeps its data there too) and says which data dir
// and instance id the instance uses. It returns nil without a data dir.
func lockDataDir(f Flags, out io.Writer) (*processor.DataDir, error) {
	if f.DataDir == "" {
		id := cmp.Or(f.InstanceID, "new at every start")
		fmt.Fprintf(out, "no data dir: local state in memory, rebuilt at every start; instance id %s\n", id)
		return nil, nil
	}
	d, err := processor.LockDataDir(f.DataDir)
	if inUse := (*processor.DataDirInUseError)(nil); errors.As(err, &inUse) {
		return nil, fmt.Errorf("app: data dir %s is in use by another running instance (%s): stop it first, "+
			"or pass this one another --data-dir (every instance needs a data dir of its own)", f.DataDir, inUse.Holder())
	}
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	id := f.InstanceID
	if id == "" {
		if id, err = d.InstanceID(); err != nil {
			d.Unlock()
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	fmt.Fprintf(out, "data dir %s, locked while this instance runs; instance id %s\n", f.DataDir, id)
	return d, nil
}

// startBroker starts the embedded broker and prints where it listens.
func startBroker(ctx context.Context, f Flags, partitions int32, logger *slog.Logger, out io.Writer) (*embedded.Broker, error) {
	dir, where := "", "in memory"
	if f.DataDir != "" {
		dir = filepath.Join(f.DataDir, "broker")
		where = "in " + dir
	}
	b, err := embedded.Start(ctx, embedded.Config{
		Listen:     f.Listen,
		DataDir:    dir,
		Partitions: partitions,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("app: start the embedded Kafka broker: %w", err)
	}
	fmt.Fprintf(out, "embedded Kafka broker listening on %s (data %s); connect with --brokers %s\n", b.Addr(), where, b.Addr())
	return b, nil
}

// checkReachable fails fast, with advice, when none of the brokers accepts
// a TCP connection.
func checkReachable(ctx context.Context, brokers []string) error {
	d := net.Dialer{Timeout: dialTimeout}
	var errs []error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			conn.Close()
			return nil
		}
		errs = append(errs, err)
	}
	list := strings.Join(brokers, ",")
	return fmt.Errorf("app: cannot connect to Kafka at %s: is Kafka running there? start one with `stateloop broker`, "+
		"fix --brokers, or leave --brokers out to run an embedded broker: %w", list, errors.Join(errs...))
}

// run runs the processor until ctx is cancelled, the processor fails or
// the embedded broker (if any) stops, reporting progress to out. The
// user's options come after the ones Run makes, so they win.
func run(ctx context.Context, f Flags, brokers []string, topo topology.Topology, reg *functions.Registry, opts, user []processor.Option, broker *embedded.Broker, out io.Writer) error {
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pm, err := prommetrics.New(topo.App, metrics)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	p, err := processor.New(brokers, topo, reg, append(append(opts, processor.WithMetrics(pm)), user...)...)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.HTTP != "" {
		stopHTTP, err := serveHTTP(pctx, f, brokers, topo, p, metrics, out)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()

	var brokerDone <-chan struct{}
	if broker != nil {
		brokerDone = broker.Done()
	}
	ctxDone := ctx.Done()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var progress progress
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("app: application %s: %w", topo.App, err)
			}
			fmt.Fprintf(out, "application %s stopped\n", topo.App)
			return nil
		case <-brokerDone:
			cancel()
			select {
			case <-done:
			case <-time.After(brokerGoneWait):
				fmt.Fprintf(out, "application %s: the processor did not stop within %v of the broker's end; leaving it\n", topo.App, brokerGoneWait)
			}
			berr := broker.Err()
			if berr == nil {
				berr = errors.New("it exited")
			}
			return fmt.Errorf("app: application %s stopped because the embedded Kafka broker stopped: %w", topo.App, berr)
		case <-ctxDone:
			ctxDone = nil
			fmt.Fprintf(out, "stopping application %s: committing the last transaction (press Ctrl-C again to kill)\n", topo.App)
		case <-tick.C:
			progress.report(out, topo, p.Stats())
		}
	}
}

// serveHTTP starts the HTTP listener on f.HTTP: the HTTP ingress, state
// reads, the console, metrics and health checks of package httpapi, with
// the token and the Host names of the --http-* flags, and the paths of
// StateFun playground's ingress if a module file has it.
func serveHTTP(ctx context.Context, f Flags, brokers []string, topo topology.Topology, p *processor.Processor, metrics prometheus.Gatherer, out io.Writer) (stop func(), err error) {
	instance := f.InstanceID
	if instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		instance = "http-" + hex.EncodeToString(b[:])
	}
	token, err := f.httpToken()
	if err != nil {
		return nil, err
	}
	hosts := f.HTTPAllowHosts
	if host, _, err := net.SplitHostPort(f.HTTP); err == nil && isLoopback(host) {
		// on loopback, against DNS rebinding: only the names of this machine
		hosts = append(httpapi.LoopbackHosts(), f.HTTPAllowHosts...)
		if !slices.Contains(hosts, host) {
			hosts = append(hosts, host) // 127.0.0.2, say
		}
	}
	api, err := httpapi.New(httpapi.Config{Brokers: brokers, Topology: topo, Instance: instance,
		Ready: func() bool { return p.Stats().Ready }, Logger: f.Logger(os.Stderr), Metrics: metrics,
		Token: token, OpenMetrics: f.HTTPOpenMetrics, AllowedHosts: hosts, MaxConns: f.HTTPMaxConns, PlaygroundPaths: f.playgroundPaths,
		TraceContext: p.Tracing()})
	if err != nil {
		return nil, fmt.Errorf("app: HTTP listener: %w", err)
	}
	ln, err := net.Listen("tcp", f.HTTP)
	if err != nil {
		api.Close()
		return nil, fmt.Errorf("app: HTTP listener on %s: %w; choose another address with --http", f.HTTP, err)
	}
	go func() {
		if err := api.Serve(ln); err != nil {
			fmt.Fprintf(out, "HTTP listener: %v\n", err)
		}
	}()
	replies := make(chan struct{})
	go func() {
		defer close(replies)
		if err := api.Run(ctx); err != nil {
			fmt.Fprintf(out, "HTTP listener: %v\n", err)
		}
	}()
	access := "no token: anyone on this machine can use it; give one with --http-token-file"
	if token != "" {
		access = "requests need the token: Authorization: Bearer <token>; the console asks for it, or open http://" + ln.Addr().String() + "/#token=<token>"
	}
	fmt.Fprintf(out, "HTTP listener on http://%s (console at /, POST /v1/functions/{namespace}/{name}/{id}, GET /v1/state/..., /metrics, /healthz, /readyz; %s)\n", ln.Addr(), access)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(sctx)
		<-replies
		api.Close()
	}, nil
}

// progress remembers what Run has told the user about readiness.
type progress struct {
	announced bool    // the first "ready" line was printed
	ready     bool    // the processor was ready at the last poll
	owned     []int32 // the partitions reported last
}

func (pr *progress) report(out io.Writer, topo topology.Topology, s processor.Stats) {
	if !s.Ready {
		pr.ready = false
		return
	}
	owned := slices.Sorted(slices.Values(s.Partitions))
	switch {
	case !pr.announced:
		fmt.Fprintf(out, "application %s ready: %d of %d partitions, function types %s%s\n",
			topo.App, len(owned), topo.PartitionCount(), joinTypes(topo.Functions), topics(topo))
	case !pr.ready || !slices.Equal(owned, pr.owned):
		fmt.Fprintf(out, "application %s rebalanced: now %d of %d partitions\n", topo.App, len(owned), topo.PartitionCount())
	}
	pr.announced, pr.ready, pr.owned = true, true, owned
}

func joinTypes(ts []functions.TypeName) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// topics describes the ingress and egress topics for the ready line.
func topics(topo topology.Topology) string {
	var in, eg []string
	for _, i := range topo.Ingresses {
		in = append(in, string(i.Topic))
	}
	for _, e := range topo.Egresses {
		for _, t := range e.Topics {
			eg = append(eg, string(t))
		}
	}
	s := ""
	if len(in) > 0 {
		s += "; reading topics " + strings.Join(in, ", ")
	}
	if len(eg) > 0 {
		s += "; writing topics " + strings.Join(eg, ", ")
	}
	return s
}

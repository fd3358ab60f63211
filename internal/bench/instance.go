package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/stateloop/stateloop/processor"
)

// envInstance names the environment variable that makes the bench's
// binary run one instance of the counter application (CounterApp) instead
// of the bench: the recovery bench starts its instances as child
// processes, so that it can kill one with SIGKILL.
const envInstance = "STATELOOP_BENCH_INSTANCE"

// instanceSpec is what a child instance runs, passed as JSON in
// envInstance.
type instanceSpec struct {
	Brokers        []string      `json:"brokers"`
	App            string        `json:"app"`
	In             string        `json:"in"`
	Out            string        `json:"out"`
	Partitions     int32         `json:"partitions"`
	InstanceID     string        `json:"instance_id"`
	DataDir        string        `json:"data_dir,omitempty"`
	CommitInterval time.Duration `json:"commit_interval"`
	CommitCount    int           `json:"commit_count"`
	SessionTimeout time.Duration `json:"session_timeout,omitempty"`
	TxnTimeout     time.Duration `json:"txn_timeout,omitempty"`
	LogLevel       slog.Level    `json:"log_level"`
}

// ServeInstanceIfChild runs an instance of the recovery bench and exits
// when this process was started as one (the environment has
// STATELOOP_BENCH_INSTANCE); otherwise it returns at once. The program's
// main (and the TestMain of tests that run the recovery bench) must call
// it first.
func ServeInstanceIfChild() {
	raw, ok := os.LookupEnv(envInstance)
	if !ok {
		return
	}
	os.Exit(serveInstance(raw))
}

// serveInstance runs the counter application until SIGTERM or SIGINT, or
// until its standard input closes (the bench is gone), and returns the
// exit status. It prints "ready" on standard output once the processor
// has recovered the state of its partitions.
func serveInstance(raw string) int {
	var spec instanceSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "stateloop-bench instance: bad %s: %v\n", envInstance, err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: spec.LogLevel})).With("instance", spec.InstanceID)
	topo, reg := CounterApp(spec.App, spec.In, spec.Out, spec.Partitions, 0)
	opts := []processor.Option{
		processor.WithCommitInterval(spec.CommitInterval),
		processor.WithCommitCount(spec.CommitCount),
		processor.WithLogger(logger),
		processor.WithInstanceID(spec.InstanceID),
	}
	if spec.DataDir != "" {
		opts = append(opts, processor.WithDataDir(spec.DataDir))
	}
	if spec.SessionTimeout > 0 {
		opts = append(opts, processor.WithSessionTimeout(spec.SessionTimeout))
	}
	if spec.TxnTimeout > 0 {
		opts = append(opts, processor.WithTransactionTimeout(spec.TxnTimeout))
	}
	p, err := processor.New(spec.Brokers, topo, reg, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stateloop-bench instance: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	go func() {
		for ctx.Err() == nil {
			if p.Stats().Ready {
				fmt.Println("ready")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := p.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "stateloop-bench instance: %v\n", err)
		return 1
	}
	return 0
}

// instance is a child process running instanceSpec.
type instance struct {
	spec    instanceSpec
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	started time.Time
	ready   chan struct{} // closed when the child printed "ready"
	readyAt time.Time
	exited  chan struct{} // closed when the child has exited
	mu      sync.Mutex
	err     error // of Wait
}

// startInstance starts a child process running spec; it does not wait for
// it to be ready.
func startInstance(spec instanceSpec) (*instance, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: instance: %w", err)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("bench: instance: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envInstance+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: instance: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: instance: %w", err)
	}
	in := &instance{spec: spec, cmd: cmd, stdin: stdin, ready: make(chan struct{}), exited: make(chan struct{})}
	in.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start instance %s: %w", spec.InstanceID, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				in.mu.Lock()
				in.readyAt = time.Now()
				in.mu.Unlock()
				close(in.ready)
			}
		}
		err := cmd.Wait()
		in.mu.Lock()
		in.err = err
		in.mu.Unlock()
		close(in.exited)
	}()
	return in, nil
}

// waitReady waits until the instance has printed "ready" and returns the
// time from its start.
func (in *instance) waitReady(ctx context.Context, limit time.Duration) (time.Duration, error) {
	select {
	case <-in.ready:
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.readyAt.Sub(in.started), nil
	case <-in.exited:
		return 0, fmt.Errorf("bench: instance %s exited before it was ready: %v", in.spec.InstanceID, in.exitErr())
	case <-time.After(limit):
		return 0, fmt.Errorf("bench: instance %s was not ready after %v", in.spec.InstanceID, limit)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (in *instance) exitErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

// kill ends the instance with SIGKILL and waits until it is gone.
func (in *instance) kill() {
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.exited
}

// stop asks the instance to stop (SIGTERM: it commits and leaves the
// group), kills it if it has not stopped within limit, and reports an
// instance that failed.
func (in *instance) stop(limit time.Duration) error {
	select {
	case <-in.exited:
	default:
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.exited:
		case <-time.After(limit):
			in.kill()
			return fmt.Errorf("bench: instance %s did not stop within %v after SIGTERM; killed", in.spec.InstanceID, limit)
		}
	}
	_ = in.stdin.Close()
	var exit *exec.ExitError
	if err := in.exitErr(); err != nil && !(errors.As(err, &exit) && !exit.Exited()) {
		return fmt.Errorf("bench: instance %s: %w", in.spec.InstanceID, err)
	}
	return nil
}

package embedded

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/stateloop/stateloop/internal/flock"
)

const (
	envChild          = "STATELOOP_EMBEDDED_BROKER"
	defaultListen     = "127.0.0.1:9092"
	defaultPartitions = 8
	defaultLockWait   = 30 * time.Second
	lockFileName      = "broker.lock"

	// closeTimeout bounds how long Close waits for a child that was asked
	// to stop before it kills it.
	closeTimeout = 2 * time.Minute
	// readyTimeout bounds the start-up of a child after it got the data
	// directory lock, in case the context has no deadline. Loading a data
	// dir replays its segments: about 2s for 500 MB.
	readyTimeout = 5 * time.Minute
	// fdParent and fdReady are the file descriptors of the two pipes in
	// the child (cmd.ExtraFiles starts at 3).
	fdParent = 3
	fdReady  = 4
)

// ErrPortInUse is wrapped by the error of Start when the port of
// Config.Listen is taken by another process.
var ErrPortInUse = errors.New("embedded: port in use")

// ErrDataDirInUse is wrapped by the error of Start when another running
// broker still holds Config.DataDir after the wait.
var ErrDataDirInUse = errors.New("embedded: data dir in use")

// Config of an embedded broker.
type Config struct {
	// Listen is the host:port to listen on, "127.0.0.1:9092" when empty.
	// Port 0 picks a free port. The host must be a loopback address
	// (127.0.0.0/8, ::1 or localhost); others are refused.
	Listen string
	// DataDir is where the broker persists its state; "" keeps
	// everything in memory.
	DataDir string
	// Partitions is the number of partitions of auto-created topics
	// (default 8).
	Partitions int32
	// InProcess runs kfake inside this process instead of a child
	// process. It is meant for tests: a kill -9 of this process can then
	// tear a transaction commit apart in DataDir.
	InProcess bool
	// Logger receives the broker's log lines (default: discard).
	Logger *slog.Logger

	// lockWait overrides defaultLockWait, for tests.
	lockWait time.Duration
}

// Broker is a running embedded broker.
type Broker struct {
	addr   string
	logger *slog.Logger
	done   chan struct{}

	closeOnce sync.Once
	closing   atomic.Bool

	mu      sync.Mutex
	err     error
	waitErr error // of the child process, once it exited

	// in process
	cluster      *kfake.Cluster
	closeJournal func()
	lock         *dirLock

	// child process
	cmd   *exec.Cmd
	alive *os.File // write end of the pipe the child watches
	out   *logForwarder
}

// settings is a validated Config.
type settings struct {
	host       string
	port       int
	dataDir    string
	partitions int32
	inProcess  bool
	logger     *slog.Logger
	lockWait   time.Duration
}

// Start starts an embedded broker and returns once it accepts TCP
// connections on Addr. ctx bounds the start-up only.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if _, ok := os.LookupEnv(envChild); ok {
		return nil, errors.New("embedded: this process was started as an embedded broker, but main did not call embedded.ServeIfChild first")
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if s.dataDir != "" {
		if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("embedded: creating data dir: %w", err)
		}
	}
	if s.inProcess {
		return startInProcess(ctx, s)
	}
	return startChild(ctx, s)
}

// Addr returns the "127.0.0.1:<port>" the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Done returns a channel that is closed when the broker has stopped, after
// Close or because its child process died.
func (b *Broker) Done() <-chan struct{} { return b.done }

// Err returns why the broker stopped: nil before Done is closed and after a
// clean Close.
func (b *Broker) Err() error {
	select {
	case <-b.done:
	default:
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close stops the broker gracefully and waits until it has stopped. A
// child process is told to stop through its pipe and SIGTERM; if it has not
// exited after two minutes it is killed.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		if b.cluster != nil {
			b.cluster.Close()
			b.closeJournal()
			b.lock.release()
			b.stopped(nil)
			return
		}
		b.stopChild(closeTimeout)
	})
	<-b.done
	return b.Err()
}

// stopped records why the broker stopped and closes done.
func (b *Broker) stopped(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
	close(b.done)
}

func (cfg Config) settings() (settings, error) {
	s := settings{
		partitions: cfg.Partitions,
		inProcess:  cfg.InProcess,
		logger:     cfg.Logger,
		lockWait:   cfg.lockWait,
	}
	listen := cfg.Listen
	if listen == "" {
		listen = defaultListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return s, fmt.Errorf("embedded: listen address %q: %w", listen, err)
	}
	s.port, err = strconv.Atoi(port)
	if err != nil || s.port < 0 || s.port > 65535 {
		return s, fmt.Errorf("embedded: listen address %q: bad port %q", listen, port)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return s, fmt.Errorf("embedded: listen address %q is not a loopback address: the embedded broker has no authentication, so it only listens on 127.0.0.1, ::1 or localhost", listen)
	}
	s.host = ip.String()
	if s.partitions == 0 {
		s.partitions = defaultPartitions
	}
	if s.partitions < 0 {
		return s, fmt.Errorf("embedded: partitions must be positive, got %d", s.partitions)
	}
	if cfg.DataDir != "" {
		s.dataDir, err = filepath.Abs(cfg.DataDir)
		if err != nil {
			return s, fmt.Errorf("embedded: data dir: %w", err)
		}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.lockWait <= 0 {
		s.lockWait = defaultLockWait
	}
	return s, nil
}

// kfakeOptions are the options of the kfake cluster, in this process or in
// the child.
func kfakeOptions(host string, port int, dataDir string, partitions int32, logger *slog.Logger, wrap func(net.Listener) net.Listener) []kfake.Opt {
	opts := []kfake.Opt{
		kfake.Ports(port), // also makes it a single broker
		// kfake always listens on 127.0.0.1; put the host we were asked
		// for in its place and keep the port.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil {
				return nil, err
			}
			return wrap(ln), nil
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.BrokerConfigs(map[string]string{
			// kfake applies retention.ms to every topic, compacted ones
			// included, whenever its cleaner runs; keep records.
			"log.retention.ms": "-1",
			// Keep the offsets of groups without members. kfake turns
			// the minutes into a time.Duration, so stay below 292
			// years.
			"offsets.retention.minutes": strconv.Itoa(100 * 365 * 24 * 60),
		}),
		kfake.WithLogger(kfakeLogger{logger}),
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	return opts
}

// newCluster starts kfake with the embedded broker's fixes (installFixes)
// and translates its start-up errors; the func it returns stops what it
// started besides kfake. With a data directory, it first closes the transactions a crash left open, before
// anyone else can connect (see guardTransactions), and keeps a journal of
// transaction ends from then on (see txnJournal).
func newCluster(host string, port int, dataDir string, partitions int32, logger *slog.Logger) (*kfake.Cluster, func(), error) {
	start := func() (*kfake.Cluster, *gatedListener, error) {
		var gate *gatedListener
		wrap := func(ln net.Listener) net.Listener {
			if dataDir == "" {
				return ln
			}
			gate = newGatedListener(ln)
			return gate
		}
		cl, err := kfake.NewCluster(kfakeOptions(host, port, dataDir, partitions, logger, wrap)...)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, nil, portInUse(port, err)
			}
			return nil, nil, fmt.Errorf("embedded: starting kfake: %w", err)
		}
		return cl, gate, nil
	}
	if dataDir != "" {
		if err := repairSegments(dataDir, logger); err != nil {
			return nil, nil, fmt.Errorf("embedded: repair the data in %s: %w", dataDir, err)
		}
	}
	cl, gate, err := start()
	if err != nil {
		return nil, nil, err
	}
	if gate == nil {
		return cl, installFixes(cl, logger), nil
	}
	began := time.Now()
	committing, err := readJournal(dataDir)
	if err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("embedded: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	rep, err := guardTransactions(ctx, cl.ListenAddrs()[0], dataDir, gate, committing, logger)
	if err == nil && len(rep.Completed) > 0 {
		// kfake holds the records of the completed commits as aborted
		// until it reads them from disk again, with their new markers
		cl.Close()
		if err = forgetSnapshots(dataDir, rep.Completed); err == nil {
			cl, gate, err = start()
			if err != nil {
				return nil, nil, err
			}
		}
	}
	var j *txnJournal
	if err == nil {
		j, err = startJournal(cl, dataDir, logger)
		saveAutoCreatedTopics(cl)
	}
	if err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("embedded: close the transactions a crash left open in %s: %w", dataDir, err)
	}
	stopFixes := installFixes(cl, logger)
	gate.open()
	logger.Debug("embedded: transaction guard done", "partitions", rep.Scanned, "batches", rep.Batches,
		"aborted", rep.Aborted, "committed", rep.Committed, "ongoing", rep.Ongoing, "took", time.Since(began).String())
	return cl, func() { stopFixes(); _ = j.close() }, nil
}

func startInProcess(ctx context.Context, s settings) (*Broker, error) {
	b := &Broker{logger: s.logger, done: make(chan struct{})}
	if s.dataDir != "" {
		lock, err := acquireDirLock(ctx, s.dataDir, s.lockWait, s.logger, lockOwner{PID: os.Getpid()})
		if err != nil {
			return nil, err
		}
		b.lock = lock
	}
	cl, closeJournal, err := newCluster(s.host, s.port, s.dataDir, s.partitions, s.logger)
	if err != nil {
		b.lock.release()
		return nil, err
	}
	b.cluster, b.closeJournal = cl, closeJournal
	b.addr = cl.ListenAddrs()[0]
	if err := waitDial(ctx, b.addr); err != nil {
		cl.Close()
		closeJournal()
		b.lock.release()
		return nil, err
	}
	s.logger.Info("embedded broker started in process", "addr", b.addr, "data_dir", s.dataDir)
	return b, nil
}

// childSpec is what the child gets in envChild.
type childSpec struct {
	Host       string        `json:"host"`
	Port       int           `json:"port"`
	DataDir    string        `json:"data_dir,omitempty"`
	Partitions int32         `json:"partitions"`
	LogLevel   slog.Level    `json:"log_level"`
	LockWait   time.Duration `json:"lock_wait"`
	ParentPID  int           `json:"parent_pid"`
}

// readyMsg is the single line the child writes to fdReady.
type readyMsg struct {
	Addr  string `json:"addr,omitempty"`
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

const (
	kindPortInUse    = "port_in_use"
	kindDataDirInUse = "data_dir_in_use"
)

func startChild(ctx context.Context, s settings) (*Broker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("embedded: finding this executable to start the broker process: %w", err)
	}
	spec, err := json.Marshal(childSpec{
		Host:       s.host,
		Port:       s.port,
		DataDir:    s.dataDir,
		Partitions: s.partitions,
		LogLevel:   minLevel(s.logger),
		LockWait:   s.lockWait,
		ParentPID:  os.Getpid(),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: encoding the broker config: %w", err)
	}
	aliveR, aliveW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("embedded: creating pipe: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		aliveR.Close()
		aliveW.Close()
		return nil, fmt.Errorf("embedded: creating pipe: %w", err)
	}

	out := newLogForwarder(s.logger)
	cmd := exec.Command(selfExe(exe))
	cmd.Args = []string{exe}
	cmd.Env = append(withoutEnv(os.Environ(), envChild), envChild+"="+string(spec))
	cmd.ExtraFiles = []*os.File{aliveR, readyW} // fdParent, fdReady
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = childSysProcAttr()
	cmd.WaitDelay = 5 * time.Second

	b := &Broker{logger: s.logger, done: make(chan struct{}), cmd: cmd, alive: aliveW, out: out}
	started := make(chan error, 1)
	go b.superviseChild(started)
	err = <-started
	aliveR.Close()
	readyW.Close()
	if err != nil {
		aliveW.Close()
		readyR.Close()
		return nil, fmt.Errorf("embedded: starting the broker process %s: %w", exe, err)
	}
	pid := cmd.Process.Pid
	s.logger.Debug("embedded broker process started", "pid", pid)

	type result struct {
		msg readyMsg
		err error
	}
	ready := make(chan result, 1)
	go func() {
		defer readyR.Close()
		var r result
		line, err := bufio.NewReader(readyR).ReadBytes('\n')
		if err != nil {
			r.err = err
		} else {
			r.err = json.Unmarshal(line, &r.msg)
		}
		ready <- r
	}()

	timeout := time.NewTimer(s.lockWait + readyTimeout)
	defer timeout.Stop()
	var r result
	select {
	case <-ctx.Done():
		b.abort()
		return nil, fmt.Errorf("embedded: waiting for the broker process to start: %w", ctx.Err())
	case <-timeout.C:
		b.abort()
		return nil, fmt.Errorf("embedded: the broker process %d did not start within %v%s", pid, s.lockWait+readyTimeout, out.tailText())
	case r = <-ready:
	}

	switch {
	case r.err != nil:
		// The child died (or wrote garbage) before it was ready.
		b.abort()
		b.mu.Lock()
		werr := b.waitErr
		b.mu.Unlock()
		switch {
		case werr == nil && errors.Is(r.err, io.EOF):
			werr = errors.New("exit status 0")
		case werr == nil:
			werr = r.err
		}
		return nil, fmt.Errorf("embedded: the broker process %d exited before it was ready (does main call embedded.ServeIfChild first?): %w%s", pid, werr, out.tailText())
	case r.msg.Error != "":
		b.abort()
		return nil, childStartError(r.msg)
	}

	b.addr = r.msg.Addr
	if err := waitDial(ctx, b.addr); err != nil {
		b.abort()
		return nil, err
	}
	s.logger.Info("embedded broker started", "addr", b.addr, "pid", pid, "data_dir", s.dataDir)
	return b, nil
}

// superviseChild starts the child and waits for it. It keeps its goroutine
// locked to one OS thread for the child's lifetime: the kernel sends the
// parent death signal when the thread that forked the child exits, and Go
// terminates a thread whose locked goroutine exits, so an unlocked start
// could get the child signalled while this process lives on.
func (b *Broker) superviseChild(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	werr := b.cmd.Wait()
	b.out.flush()
	pid := b.cmd.Process.Pid
	var err error
	switch {
	case !b.closing.Load():
		if werr == nil {
			werr = errors.New("exit status 0")
		}
		reason := b.out.lastReason()
		if reason != "" {
			reason = " (" + reason + ")"
		}
		err = fmt.Errorf("embedded: the broker process %d stopped unexpectedly%s: %w%s", pid, reason, werr, b.out.tailText())
	case werr != nil:
		err = fmt.Errorf("embedded: the broker process %d did not shut down cleanly: %w%s", pid, werr, b.out.tailText())
	}
	b.mu.Lock()
	b.err = err
	b.waitErr = werr
	b.mu.Unlock()
	close(b.done)
}

// stopChild asks the child to stop and waits for it, killing it after
// timeout.
func (b *Broker) stopChild(timeout time.Duration) {
	_ = b.alive.Close()
	_ = terminate(b.cmd.Process)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.done:
		return
	case <-t.C:
	}
	b.logger.Error("embedded broker process did not stop, killing it", "pid", b.cmd.Process.Pid, "waited", timeout)
	_ = b.cmd.Process.Kill()
	<-b.done
}

// abort stops a child that failed to start.
func (b *Broker) abort() {
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		b.stopChild(10 * time.Second)
	})
	<-b.done
}

// childStartError turns the error line of a child into an error.
func childStartError(m readyMsg) error {
	var kind, cause error
	switch m.Kind {
	case kindPortInUse:
		kind, cause = ErrPortInUse, syscall.EADDRINUSE
	case kindDataDirInUse:
		kind = ErrDataDirInUse
	default:
		return errors.New(m.Error)
	}
	return &startError{msg: m.Error, errs: []error{kind, cause}}
}

// startError is an error of Start that wraps a kind (ErrPortInUse,
// ErrDataDirInUse) without repeating its text.
type startError struct {
	msg  string
	errs []error
}

func (e *startError) Error() string { return e.msg }

func (e *startError) Unwrap() []error {
	var errs []error
	for _, err := range e.errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func portInUse(port int, cause error) error {
	return &startError{
		msg:  fmt.Sprintf("embedded: port %d is in use: pass --listen 127.0.0.1:0 or another port, or --brokers to use a running Kafka (%v)", port, cause),
		errs: []error{ErrPortInUse, cause},
	}
}

// waitDial returns once addr accepts a TCP connection.
func waitDial(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	var d net.Dialer
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			conn.Close()
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("embedded: the broker does not accept connections on %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// minLevel returns the lowest level logger handles, for the child's
// logger; at least warnings, which also end up in error messages.
func minLevel(logger *slog.Logger) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo} {
		if logger.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelWarn
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// kfakeLogger sends kfake's log lines to slog. kfake logs every failed
// request at info level, so its info is our debug.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var l slog.Level
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	case kfake.LogLevelInfo:
		l = slog.LevelDebug
	default:
		l = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !k.l.Enabled(ctx, l) {
		return
	}
	k.l.Log(ctx, l, fmt.Sprintf(format, args...), "component", "kfake")
}

// lockOwner is what broker.lock records about the process holding it.
type lockOwner struct {
	PID       int `json:"pid"`                  // the stateloop process
	BrokerPID int `json:"broker_pid,omitempty"` // its broker child, if any
}

// dirLock is the flock on <DataDir>/broker.lock.
type dirLock struct{ f *os.File }

// acquireDirLock locks dir, waiting up to wait for a previous owner to
// release it.
func acquireDirLock(ctx context.Context, dir string, wait time.Duration, logger *slog.Logger, owner lockOwner) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded: creating data dir: %w", err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded: opening lock file: %w", err)
	}
	deadline := time.Now().Add(wait)
	waiting := false
	for {
		err := flock.TryLock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, flock.ErrHeld) {
			f.Close()
			return nil, fmt.Errorf("embedded: locking %s: %w", path, err)
		}
		holder := readLockOwner(path)
		if !waiting {
			logger.Info("data dir is used by another broker, waiting for it to shut down", "data_dir", dir, "pid", holder.PID, "broker_pid", holder.BrokerPID, "max_wait", wait)
			waiting = true
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, dataDirInUse(dir, holder)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("embedded: waiting for data dir %s: %w", dir, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if waiting {
		logger.Info("data dir released by the previous broker", "data_dir", dir)
	}
	data, _ := json.Marshal(owner)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(data, '\n'), 0)
	}
	return &dirLock{f: f}, nil
}

// release unlocks; the lock file stays, since removing it would race with a
// process that has it open and waits for the lock.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
}

func readLockOwner(path string) lockOwner {
	var o lockOwner
	data, err := os.ReadFile(path)
	if err == nil {
		_ = json.Unmarshal(data, &o)
	}
	return o
}

func dataDirInUse(dir string, o lockOwner) error {
	who := "pid unknown"
	if o.PID != 0 {
		who = "pid " + strconv.Itoa(o.PID)
		if o.BrokerPID != 0 && o.BrokerPID != o.PID {
			who += ", broker pid " + strconv.Itoa(o.BrokerPID)
		}
	}
	return &startError{
		msg:  fmt.Sprintf("embedded: data dir %s is used by another running stateloop (%s): stop it, or pass another data dir or --brokers", dir, who),
		errs: []error{ErrDataDirInUse},
	}
}

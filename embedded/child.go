package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"
)

// ServeIfChild must be called first thing in main, and in TestMain of any
// test binary that starts brokers in child processes. If this process was
// started by Start as a broker child, ServeIfChild runs the broker until
// its parent goes away or it gets SIGTERM, SIGINT or SIGHUP, closes it
// gracefully and exits the process; otherwise it returns at once.
func ServeIfChild() {
	raw, ok := os.LookupEnv(envChild)
	if !ok {
		return
	}
	os.Exit(serveChild(raw))
}

// serveChild runs the broker of a child process and returns its exit code.
func serveChild(raw string) int {
	// A log line written to the pipe of a dead parent must not kill us
	// with SIGPIPE while kfake writes its snapshot.
	ignoreSIGPIPE()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, stopSignals()...)

	ready := os.NewFile(fdReady, "stateloop-broker-ready")
	parent := os.NewFile(fdParent, "stateloop-broker-parent")
	if !isPipe(parent) || !isPipe(ready) {
		// Not started by Start (someone exported envChild?): without
		// the pipes we would never notice the parent going away, and
		// descriptor 4 may be a file we must not write to.
		fmt.Fprintf(os.Stderr, "embedded: %s is set, but this process was not started by embedded.Start\n", envChild)
		return 2
	}

	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		writeReady(ready, readyMsg{Error: fmt.Sprintf("embedded: bad %s: %v", envChild, err)})
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: spec.LogLevel})).
		With("broker_pid", os.Getpid())

	// stop is closed on the first reason to stop; later signals are
	// swallowed, so nothing but SIGKILL ends us before kfake is closed.
	stop := make(chan struct{})
	var (
		stopOnce sync.Once
		reason   string
	)
	stopWith := func(r string) {
		stopOnce.Do(func() {
			reason = r
			close(stop)
		})
	}
	go func() {
		for s := range sigs {
			stopWith("got signal " + s.String())
		}
	}()
	go func() {
		// The parent never writes; EOF means it closed its end or
		// died.
		_, _ = io.Copy(io.Discard, parent)
		stopWith("parent process closed the pipe or exited")
	}()
	if spec.ParentPID != 0 && os.Getppid() != spec.ParentPID {
		stopWith("parent process exited before the broker started")
	}
	stopCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()

	var lock *dirLock
	if spec.DataDir != "" {
		var err error
		lock, err = acquireDirLock(stopCtx, spec.DataDir, spec.LockWait, logger, lockOwner{PID: spec.ParentPID, BrokerPID: os.Getpid()})
		if err != nil {
			m := readyMsg{Error: err.Error()}
			if errors.Is(err, ErrDataDirInUse) {
				m.Kind = kindDataDirInUse
			}
			writeReady(ready, m)
			logger.Warn("embedded broker not started", "err", err)
			return 1
		}
		defer lock.release()
	}
	select {
	case <-stop:
		logger.Info("embedded broker not started", "reason", reason)
		return 0
	default:
	}

	cl, closeJournal, err := newCluster(spec.Host, spec.Port, spec.DataDir, spec.Partitions, logger)
	if err != nil {
		m := readyMsg{Error: err.Error()}
		if errors.Is(err, ErrPortInUse) {
			m.Kind = kindPortInUse
		}
		writeReady(ready, m)
		logger.Warn("embedded broker not started", "err", err)
		return 1
	}
	addr := cl.ListenAddrs()[0]
	if err := writeReady(ready, readyMsg{Addr: addr}); err != nil {
		stopWith("cannot report to the parent process: " + err.Error())
	}
	logger.Debug("embedded broker serving", "addr", addr, "data_dir", spec.DataDir)

	<-stop
	logger.Info("embedded broker stopping", "reason", reason)
	start := time.Now()
	cl.Close()
	closeJournal()
	logger.Info("embedded broker stopped", "took", time.Since(start).String())
	return 0
}

func isPipe(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

// writeReady writes the single line that tells the parent how the start
// went.
func writeReady(f *os.File, m readyMsg) error {
	if f == nil {
		return errors.New("embedded: no ready pipe")
	}
	defer f.Close()
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	return err
}

// logForwarder receives the stdout and stderr of a child, re-logs its JSON
// log lines to the parent's logger and keeps the last warnings, errors and
// non-JSON lines (a panic) for error messages.
type logForwarder struct {
	logger *slog.Logger

	mu     sync.Mutex
	buf    []byte
	tail   []string
	reason string
}

const (
	maxTail     = 10
	maxLineSize = 64 << 10
)

func newLogForwarder(logger *slog.Logger) *logForwarder {
	return &logForwarder{logger: logger}
}

func (f *logForwarder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		f.line(f.buf[:i])
		f.buf = append(f.buf[:0], f.buf[i+1:]...)
	}
	if len(f.buf) > maxLineSize {
		f.line(f.buf)
		f.buf = f.buf[:0]
	}
	return len(p), nil
}

// flush handles a last line without a newline.
func (f *logForwarder) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		f.line(f.buf)
		f.buf = f.buf[:0]
	}
}

func (f *logForwarder) line(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	ctx := context.Background()
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil || rec["msg"] == nil {
		f.logger.Warn("embedded broker output", "line", string(line))
		f.addTail(string(line))
		return
	}
	msg, _ := rec["msg"].(string)
	var level slog.Level
	if s, ok := rec["level"].(string); !ok || level.UnmarshalText([]byte(s)) != nil {
		level = slog.LevelInfo
	}
	if r, ok := rec["reason"].(string); ok {
		f.reason = r
	}
	delete(rec, "msg")
	delete(rec, "level")
	delete(rec, "time")
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]any, 0, 2*len(keys)+2)
	attrs = append(attrs, "component", "embedded-broker")
	for _, k := range keys {
		attrs = append(attrs, k, rec[k])
	}
	if f.logger.Enabled(ctx, level) {
		f.logger.Log(ctx, level, msg, attrs...)
	}
	if level >= slog.LevelWarn {
		var sb strings.Builder
		sb.WriteString(msg)
		for _, k := range keys {
			if k == "broker_pid" {
				continue
			}
			fmt.Fprintf(&sb, " %s=%v", k, rec[k])
		}
		f.addTail(sb.String())
	}
}

func (f *logForwarder) addTail(s string) {
	if len(f.tail) == maxTail {
		f.tail = append(f.tail[:0], f.tail[1:]...)
	}
	f.tail = append(f.tail, s)
}

// tailText returns the kept lines for an error message, "" if none.
func (f *logForwarder) tailText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tail) == 0 {
		return ""
	}
	return "; last output: " + strings.Join(f.tail, " | ")
}

// lastReason returns the reason the child logged for stopping, if any.
func (f *logForwarder) lastReason() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reason
}

package smoke

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// StartFunc returns the command that runs one worker process with cfg: a
// program that calls [ServeWorker] with cfg.Args(). The command must not be
// started yet; the driver sets its standard input, output and error (and,
// where the platform has them and the command sets none, process
// attributes that stop the worker when the driver dies), starts it, kills
// it with SIGKILL and starts it again through this function.
//
// The stateloop-smoke command re-executes itself (`stateloop-smoke worker`); a
// test re-executes its test binary.
type StartFunc func(cfg WorkerConfig) (*exec.Cmd, error)

// logTail is how many lines of a worker's standard error an error message
// quotes.
const logTail = 20

// worker is one worker process of the driver, across its restarts.
type worker struct {
	cfg   WorkerConfig
	start StartFunc
	log   io.Writer // where the worker's standard error goes, line by line
	// exited receives the error of a worker that exited without being
	// asked to
	exited chan<- error

	mu       sync.Mutex
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	done     chan struct{} // closed when the current process has exited
	ready    bool
	expected bool // the current process was killed or stopped on purpose
	starts   int
	tail     []string
}

// run starts a new incarnation of the worker.
func (w *worker) run() error {
	cmd, err := w.start(w.cfg)
	if err != nil {
		return fmt.Errorf("smoke: worker %s: %w", w.cfg.Instance, err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = workerSysProcAttr()
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("smoke: worker %s: %w", w.cfg.Instance, err)
	}
	cmd.Stdout = &lineWriter{fn: func(line string) {
		if strings.TrimSpace(line) == ReadyLine {
			w.mu.Lock()
			if w.cmd == cmd {
				w.ready = true
			}
			w.mu.Unlock()
			return
		}
		w.logLine(line)
	}}
	cmd.Stderr = &lineWriter{fn: w.logLine}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("smoke: start worker %s: %w", w.cfg.Instance, err)
	}
	done := make(chan struct{})
	w.mu.Lock()
	w.cmd, w.stdin, w.done, w.ready, w.expected = cmd, stdin, done, false, false
	w.starts++
	w.mu.Unlock()
	go func() {
		err := cmd.Wait()
		w.mu.Lock()
		expected := w.expected || w.cmd != cmd
		tail := strings.Join(w.tail, "\n")
		w.mu.Unlock()
		close(done)
		if !expected {
			if err == nil {
				err = errors.New("exit status 0")
			}
			w.exited <- fmt.Errorf("smoke: worker %s exited by itself: %w; the end of its log:\n%s", w.cfg.Instance, err, tail)
		}
	}()
	return nil
}

func (w *worker) logLine(line string) {
	w.mu.Lock()
	w.tail = append(w.tail, line)
	if len(w.tail) > logTail {
		w.tail = w.tail[len(w.tail)-logTail:]
	}
	w.mu.Unlock()
	if w.log != nil {
		fmt.Fprintf(w.log, "%s: %s\n", w.cfg.Instance, line)
	}
}

// isReady reports whether the current process said it is ready.
func (w *worker) isReady() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ready
}

// kill kills the current process with SIGKILL and waits until it has
// exited.
func (w *worker) kill() {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.expected = true
	w.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// stop asks the current process to stop (it commits and leaves the group
// when its standard input closes) and kills it if it has not exited after
// grace.
func (w *worker) stop(grace time.Duration) {
	w.mu.Lock()
	cmd, done, stdin := w.cmd, w.done, w.stdin
	w.expected = true
	w.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = stdin.Close()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// lineWriter calls fn with every complete line written to it; it is the
// standard output or error of a worker, written by one goroutine.
type lineWriter struct {
	buf bytes.Buffer
	fn  func(line string)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf.Write(p)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.buf.Next(i + 1))
		l.fn(strings.TrimRight(line, "\r\n"))
	}
}

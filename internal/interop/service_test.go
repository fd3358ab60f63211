package interop_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateloop/stateloop/internal/kafkatest"
)

// service is a function service (python/server.py, js/server.js) running
// as a child process on a port of 127.0.0.1.
type service struct {
	URL  string // http://127.0.0.1:PORT
	out  *kafkatest.SyncBuffer
	stop func()
}

// serviceStats is what a service answers on GET /_stats: requests and
// injected failures per function name.
type serviceStats struct {
	Requests map[string]int `json:"requests"`
	Failures map[string]int `json:"failures"`
}

// startService starts argv plus --port PORT and args on a free port and
// waits until it answers. The service exits when its standard input
// closes: on stop, at the end of the test, or when the test binary dies.
// Its output is logged if the test fails.
func startService(t *testing.T, name string, env []string, argv []string, args ...string) *service {
	t.Helper()
	var lastErr error
	for try := 0; try < 3; try++ { // the free port may be taken before the service binds it
		s, err := tryStartService(t, name, env, argv, args)
		if err == nil {
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("start the %s function service: %v", name, lastErr)
	return nil
}

func tryStartService(t *testing.T, name string, env, argv, args []string) (*service, error) {
	port := freePort(t)
	cmd := exec.Command(argv[0], append(append(argv[1:len(argv):len(argv)], "--port", strconv.Itoa(port)), args...)...)
	cmd.Env = append(os.Environ(), env...)
	out := &kafkatest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stdin.Close()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	s := &service{URL: fmt.Sprintf("http://127.0.0.1:%d", port), out: out, stop: stop}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.stats(); err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			stop()
			return nil, fmt.Errorf("%s exited before answering (%v); its output:\n%s", strings.Join(cmd.Args, " "), err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s does not answer on %s after 30s; its output:\n%s", strings.Join(cmd.Args, " "), s.URL, out)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("output of the %s function service (%s):\n%s", name, strings.Join(cmd.Args, " "), out)
		}
	})
	return s, nil
}

// stats asks the service for its request and failure counts.
func (s *service) stats() (serviceStats, error) {
	var st serviceStats
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(s.URL + "/_stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /_stats: %s: %s", resp.Status, b)
	}
	return st, json.Unmarshal(b, &st)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

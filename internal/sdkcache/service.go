package sdkcache

import (
	"fmt"
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

// Service is a function service (an SDK's HTTP server) running as a child
// process of a test on a port of 127.0.0.1.
type Service struct {
	URL  string // http://127.0.0.1:PORT
	Out  *kafkatest.SyncBuffer
	Stop func() // closes its standard input and waits for it to exit
}

// Serve starts argv plus "--port PORT" and args on a free port and waits
// until GET health (a path like "/health") answers 200. The service must
// exit when its standard input closes: on Stop, at the end of the test, or
// when the test binary dies. Its output is logged if the test fails; name
// names it in messages.
func Serve(t testing.TB, name string, env []string, argv []string, health string, args ...string) *Service {
	t.Helper()
	var lastErr error
	for try := 0; try < 3; try++ { // the free port may be taken before the service binds it
		s, err := tryServe(t, name, env, argv, health, args)
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

func tryServe(t testing.TB, name string, env, argv []string, health string, args []string) (*Service, error) {
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
	s := &Service{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Out: out, Stop: stop}
	c := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := c.Get(s.URL + health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
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
			return nil, fmt.Errorf("%s does not answer on %s%s after 30s; its output:\n%s", strings.Join(cmd.Args, " "), s.URL, health, out)
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

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

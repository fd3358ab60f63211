package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/httpapi"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// slowConn opens a connection to addr that sends the start of a request
// and then nothing more: only a part of the header (slow header), or the
// header and part of a body that is announced 1 MB long (slow body).
func slowConn(t *testing.T, addr string, slowBody bool) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	start := "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\nX-Slow: "
	if slowBody {
		start = "POST /v1/functions/test/quiet/slow HTTP/1.1\r\nHost: " + addr + "\r\n" +
			"Stateloop-Type: io.statefun.types/string\r\nContent-Length: 1000000\r\n\r\nsome bytes"
	}
	if _, err := io.WriteString(c, start); err != nil {
		t.Fatal(err)
	}
	return c
}

// healthz asks GET /healthz and returns how long the answer took, failing
// the test unless it is 200 within timeout.
func healthz(t *testing.T, url string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := (&http.Client{Timeout: timeout}).Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v (after %v)", err, time.Since(start))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d", resp.StatusCode)
	}
	return time.Since(start)
}

// waitClosed waits up to timeout for the server to close c, reading (and
// dropping) whatever it answers first, and reports whether it did.
func waitClosed(c net.Conn, timeout time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// Regression test for issue 10, item 9: the listener had a header timeout
// only, so a connection that sent its header and then its body slowly (or
// not at all) was held for ever: 400 of them stayed open, 20,000 used up
// the process's file descriptors, and /healthz stopped answering. Slow
// connections must be cut after the read timeouts, and /healthz must
// answer while they are open.
func TestSlowClientsAreCutAndHealthStillAnswers(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo := topology.Topology{App: "slow", Partitions: 4, Functions: []functions.TypeName{"test/quiet"}}
	a := startAPI(t, brokers, topo, httpapi.Config{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second})
	var conns []net.Conn
	for i := range 400 {
		conns = append(conns, slowConn(t, a.addr, i%2 == 1))
	}
	if took := healthz(t, a.url, 5*time.Second); took > 2*time.Second {
		t.Errorf("GET /healthz with 400 slow connections open took %v, want under 2 s", took)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[string]int{}
	for i, c := range conns {
		wg.Go(func() {
			if !waitClosed(c, 20*time.Second) {
				kind := "slow header"
				if i%2 == 1 {
					kind = "slow body"
				}
				mu.Lock()
				open[kind]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(open) > 0 {
		t.Errorf("connections still open 20 s after they stopped sending: %v; want every one closed after the read timeouts (1 s, 2 s)", open)
	}
}

// TestConnectionCapHoldsExtraConnectionsUntilOneCloses: with MaxConns
// connections open, another waits to be accepted (it takes no file
// descriptor meanwhile) and is served as soon as one closes.
func TestConnectionCapHoldsExtraConnectionsUntilOneCloses(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	topo := topology.Topology{App: "capped", Partitions: 4, Functions: []functions.TypeName{"test/quiet"}}
	const maxConns = 20
	a := startAPI(t, brokers, topo, httpapi.Config{MaxConns: maxConns})
	// maxConns keep-alive connections, each served once: all accepted
	var held []net.Conn
	for range maxConns {
		c, err := net.Dial("tcp", a.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", a.addr); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("a connection under the cap: %v %v, want 200", resp, err)
		}
		resp.Body.Close()
		held = append(held, c)
	}

	answered := make(chan time.Time, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(a.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		answered <- time.Now()
	}()
	select {
	case <-answered:
		t.Fatalf("a connection over the cap of %d was served while %d others were open", maxConns, maxConns)
	case <-time.After(500 * time.Millisecond):
	}
	closed := time.Now()
	held[0].Close()
	select {
	case at := <-answered:
		t.Logf("the waiting connection was served %v after one closed", at.Sub(closed))
	case <-time.After(10 * time.Second):
		t.Fatal("the connection over the cap was not served within 10 s after another closed")
	}
}

// TestWaitOutlastsTheWriteTimeout: a request with ?wait= longer than the
// write and read timeouts still gets its answer.
func TestWaitOutlastsTheWriteTimeout(t *testing.T) {
	srv, _ := startAppWith(t, httpapi.Config{MaxBody: 64, ReadTimeout: time.Second, WriteTimeout: time.Second})
	st := string(functions.StringType.Name())
	start := time.Now()
	r := post(t, srv.URL+"/v1/functions/test/quiet/w?wait=3s", st, str(t, "x"))
	if r.status != http.StatusAccepted || !strings.Contains(r.body, "no reply within 3s") {
		t.Errorf("?wait=3s with 1 s timeouts: %d %s after %v, want 202 saying there was no reply within 3s", r.status, r.body, time.Since(start))
	}
}

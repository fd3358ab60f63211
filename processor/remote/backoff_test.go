package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"google.golang.org/protobuf/proto"
)

// fakeTransport answers every request with next(attempt) and records when
// each attempt came, in the bubble's fake time.
type fakeTransport struct {
	mu    sync.Mutex
	times []time.Time
	next  func(attempt int) *http.Response
}

func (f *fakeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	n := len(f.times)
	f.mu.Unlock()
	resp := f.next(n)
	resp.Request = r
	return resp, nil
}

func response(code int, header http.Header, body []byte) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: code, Status: http.StatusText(code), Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
}

func okResponse() *http.Response {
	b, _ := proto.Marshal(&pb.FromFunction{Response: &pb.FromFunction_InvocationResult{InvocationResult: &pb.FromFunction_InvocationResponse{}}})
	return response(200, http.Header{"Content-Type": {"application/octet-stream"}}, b)
}

func fakeClient(t *testing.T, cfg Config, f *fakeTransport) *Client {
	t.Helper()
	cfg.URL = "http://functions.test/{function.name}"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.hc.Transport = f
	return c
}

var bob = functions.Address{Type: "example/greeter", ID: "Bob"}

func invokeBob(c *Client) error {
	_, err := c.Invoke(context.Background(), bob, nil, []Call{{Argument: functions.StringType.Of("Bob")}})
	return err
}

// TestBackoffWithinBudget runs StateFun's default budget of one minute in
// fake time: the delays double from 10ms up to 2s (with jitter), and the
// call gives up before the budget ends.
func TestBackoffWithinBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTransport{next: func(int) *http.Response { return response(503, nil, []byte("busy")) }}
		c := fakeClient(t, Config{}, f)
		start := time.Now()
		err := invokeBob(c)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrCallTimeout) {
			t.Fatalf("got %v, want ErrCallTimeout", err)
		}
		if elapsed > time.Minute || elapsed < 55*time.Second {
			t.Errorf("gave up after %v, want just under 1m", elapsed)
		}
		ceiling := initialBackoff
		for i := 1; i < len(f.times); i++ {
			gap := f.times[i].Sub(f.times[i-1])
			if gap < ceiling/2 || gap > ceiling {
				t.Errorf("delay before attempt %d = %v, want within [%v, %v]", i+1, gap, ceiling/2, ceiling)
			}
			ceiling = min(2*ceiling, maxBackoff)
		}
		if n := len(f.times); n < 30 || n > 60 {
			t.Errorf("%d attempts in a minute", n)
		}
	})
}

// TestRetryAfter: a Retry-After header stretches the delay; one beyond
// the remaining budget ends the call at once.
func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTransport{next: func(n int) *http.Response {
			if n == 1 {
				return response(429, http.Header{"Retry-After": {"5"}}, nil)
			}
			return okResponse()
		}}
		c := fakeClient(t, Config{}, f)
		if err := invokeBob(c); err != nil {
			t.Fatal(err)
		}
		if gap := f.times[1].Sub(f.times[0]); gap != 5*time.Second {
			t.Errorf("second attempt after %v, want 5s", gap)
		}

		f = &fakeTransport{next: func(int) *http.Response { return response(503, http.Header{"Retry-After": {"120"}}, nil) }}
		c = fakeClient(t, Config{}, f)
		start := time.Now()
		err := invokeBob(c)
		if !errors.Is(err, ErrCallTimeout) || time.Since(start) != 0 || len(f.times) != 1 {
			t.Errorf("got %v after %v and %d attempts, want ErrCallTimeout at once", err, time.Since(start), len(f.times))
		}
	})
}

// TestFirstCallGate: until a call of a type has succeeded, calls of that
// type wait for it (it learns the state specs for all); afterwards they
// run together.
func TestFirstCallGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		inFlight := 0
		release := make(chan struct{})
		c := fakeClient(t, Config{}, &fakeTransport{})
		c.hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			inFlight++
			mu.Unlock()
			<-release
			mu.Lock()
			inFlight--
			mu.Unlock()
			resp := okResponse()
			resp.Request = r
			return resp, nil
		})
		wave := func(want int) {
			var wg sync.WaitGroup
			for range 5 {
				wg.Go(func() {
					if err := invokeBob(c); err != nil {
						t.Error(err)
					}
				})
			}
			synctest.Wait()
			mu.Lock()
			if inFlight != want {
				t.Errorf("%d requests in flight, want %d", inFlight, want)
			}
			mu.Unlock()
			close(release)
			wg.Wait()
			release = make(chan struct{})
		}
		wave(1)
		wave(5)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

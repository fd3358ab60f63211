package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote/pb"
	"google.golang.org/protobuf/proto"
)

// maxStateRounds bounds the missing-state round trips of one Invoke. Each
// round must teach the client a new state name, so a function needs at
// most one round per redeployment; this only stops a broken peer.
const maxStateRounds = 4

// Client invokes the remote functions served by one HTTP endpoint, with
// StateFun's request-reply protocol. It keeps a pool of keep-alive
// connections and, per function type, the state specs it has learned.
//
// A Client is safe for concurrent use; each Invoke runs on the caller's
// goroutine. Close it to release idle connections.
type Client struct {
	cfg       Config
	hc        *http.Client
	transport http.RoundTripper
	slots     chan struct{}      // bounds in-flight HTTP requests
	types     sync.Map           // functions.TypeName → *typeState
	declared  []driver.StateInfo // Protocol2: Config.States sorted by name
}

// New returns a client for the endpoint cfg describes.
//
// It returns every problem with cfg at once (joined with errors.Join): an
// empty or non-http(s) URL, negative timeouts or limits, a TLS client
// certificate without its key (or the reverse), and TLS files that cannot
// be read or parsed. It does not connect.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if cfg.WriteTimeout > 0 {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &writeDeadlineConn{Conn: conn, timeout: cfg.WriteTimeout}, nil
		}
	}
	t := &http.Transport{
		// No proxy: functions are reached directly, as in StateFun.
		DialContext:         dial,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: cfg.ConnectTimeout,
		// HTTP/1.1 keep-alive, one pool for this endpoint sized for the
		// requests it may have in flight.
		MaxIdleConns:          cfg.MaxInFlight,
		MaxIdleConnsPerHost:   cfg.MaxInFlight,
		MaxConnsPerHost:       cfg.MaxInFlight,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ReadTimeout,
		// Bodies are protobuf; the SDKs do not compress them.
		DisableCompression: true,
	}
	c := &Client{cfg: cfg, transport: t, slots: make(chan struct{}, cfg.MaxInFlight)}
	if cfg.Protocol == Protocol2 {
		c.declared = slices.SortedFunc(slices.Values(cfg.States), func(a, b driver.StateInfo) int { return strings.Compare(a.Name, b.Name) })
	}
	c.hc = &http.Client{
		Transport: t,
		// A redirect would turn the POST into a GET; report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Close closes the client's idle connections. Invocations still running
// finish; a closed Client can still be used.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
}

// MaxBatch returns the most calls one request carries (the endpoint's
// MaxNumBatchRequests); negative means no limit. A [Batcher] uses it. A nil
// Client returns 0 (the Batcher's default).
func (c *Client) MaxBatch() int {
	if c == nil {
		return 0
	}
	return c.cfg.MaxNumBatchRequests
}

// URL returns the URL that requests for function type t go to.
func (c *Client) URL(t functions.TypeName) string { return c.typeState(t).url }

// Specs returns the state values the client has learned that function
// type t declares (from the function's IncompleteInvocationContext), or
// for Protocol2 the declared Config.States, sorted by name. The slice is
// shared: do not change it.
func (c *Client) Specs(t functions.TypeName) []driver.StateInfo {
	if c.cfg.Protocol == Protocol2 {
		return c.declared
	}
	return c.typeState(t).snapshot()
}

// Invoke sends batch, one or more calls in arrival order, to target and
// returns the checked effects of the whole batch, in the protocol of
// Config.Protocol.
//
// state holds the address's stored values by state name, as the runtime
// keeps them. Invoke sends the value of every state the function type has
// declared so far (an absent one as unset) and ignores the rest. When the
// function answers that it declares state the request did not carry,
// Invoke learns the missing specs and sends the same batch again. Invoke
// reads state but neither keeps nor changes it.
//
// Transient failures (connection errors, timeouts, HTTP 408, 409, 420,
// 429, 499 and 5xx, as StateFun's HTTP transport) are retried with
// exponential backoff and jitter until the call timeout is spent, which
// bounds the whole Invoke after it starts sending. While no call of a
// function type has succeeded yet, calls of that type wait for each other,
// so that one of them learns the state specs for all.
//
// Errors are an *[Error] naming the URL and target, wrapping:
// [ErrCallTimeout] when the budget ran out; the context's error when ctx
// ended first; otherwise a permanent error ([IsPermanent]) wrapping
// [ErrProtocol] (an HTTP status that is not retried, a wrong content type,
// an undecodable or invalid response, a response in the other version of
// the protocol, which names that mismatch) or [ErrStateType] (a stored value
// whose type name differs from the declared one, or a declaration whose
// type changed). An empty batch is a permanent error too. A nil Client
// (say, a Route func that returns a nil *Client from a map as an
// [Invoker]) returns an error wrapping [ErrNoInvoker].
func (c *Client) Invoke(ctx context.Context, target functions.Address, state map[string]driver.StoredValue, batch []Call) (*Result, error) {
	if c == nil {
		return nil, fmt.Errorf("%w %s", ErrNoInvoker, target.Type)
	}
	ts := c.typeState(target.Type)
	inv := &invocation{c: c, ts: ts, target: target}
	if len(batch) == 0 {
		return nil, inv.fail(functions.Permanent(errors.New("empty batch: nothing to invoke")))
	}
	inv.traceParent, inv.traceState = batch[0].TraceParent, batch[0].TraceState
	if c.cfg.Protocol == Protocol2 {
		return c.invoke2(ctx, inv, state, batch)
	}
	if !ts.warm.Load() {
		select {
		case ts.gate <- struct{}{}:
			defer func() { <-ts.gate }()
		case <-ts.ready:
		case <-ctx.Done():
			return nil, inv.fail(ctx.Err())
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()

	req := &pb.ToFunction_InvocationBatchRequest{Target: toAddress(target), Invocations: make([]*pb.ToFunction_Invocation, len(batch))}
	for i, call := range batch {
		pi := &pb.ToFunction_Invocation{Argument: &pb.TypedValue{
			Typename: string(call.Argument.TypeName()), HasValue: true, Value: call.Argument.Bytes(),
		}}
		if call.Caller != nil {
			pi.Caller = toAddress(*call.Caller)
		}
		req.Invocations[i] = pi
	}
	msg := &pb.ToFunction{Request: &pb.ToFunction_Invocation_{Invocation: req}}
	for round := 0; ; round++ {
		specs := ts.snapshot()
		var err error
		if req.State, err = attachState(specs, state, req.State[:0]); err != nil {
			return nil, inv.fail(err)
		}
		// A fresh body each round: the transport may still read the
		// previous one after its response arrived.
		body, err := proto.Marshal(msg)
		if err != nil { // only for invalid UTF-8 in a string field
			return nil, inv.fail(functions.Permanent(fmt.Errorf("encode request (address ids, type names and state names must be valid UTF-8): %w", err)))
		}
		from := &pb.FromFunction{}
		if err := inv.post(ctx, callCtx, body, func(b []byte) error { return proto.Unmarshal(b, from) }); err != nil {
			return nil, inv.fail(err)
		}
		if err := checkNot2(from); err != nil {
			return nil, inv.fail(err)
		}
		switch r := from.GetResponse().(type) {
		case *pb.FromFunction_InvocationResult, nil:
			// Regression: an empty FromFunction, which the SDKs send for
			// a call without effects (the Python SDK 3.3 never marks the
			// result as set), was refused as a protocol violation.
			// StateFun takes it as an empty result.
			res, err := resultFrom(from.GetInvocationResult(), specs)
			if err != nil {
				return nil, inv.fail(err)
			}
			ts.setWarm()
			return res, nil
		case *pb.FromFunction_IncompleteInvocationContext_:
			if round+1 >= maxStateRounds {
				return nil, inv.fail(protocolError("function still reports missing state after %d rounds: check the function's state specs", maxStateRounds))
			}
			if err := ts.learn(r.IncompleteInvocationContext.GetMissingValues(), specs); err != nil {
				return nil, inv.fail(err)
			}
		}
	}
}

// attachState builds the request's state list: every learned spec, with
// the stored value if there is one.
func attachState(specs []driver.StateInfo, state map[string]driver.StoredValue, out []*pb.ToFunction_PersistedValue) ([]*pb.ToFunction_PersistedValue, error) {
	for _, s := range specs {
		pv := &pb.ToFunction_PersistedValue{StateName: s.Name}
		if v, ok := state[s.Name]; ok {
			if v.TypeName != s.TypeName {
				return nil, functions.Permanent(newDetail(ErrStateType, nil, fmt.Sprintf(
					"state %q is stored with type %s, but the function declares it with type %s: migrate the stored state or declare the old type again",
					s.Name, v.TypeName, s.TypeName)))
			}
			pv.StateValue = &pb.TypedValue{Typename: string(s.TypeName), HasValue: true, Value: v.Value}
		}
		out = append(out, pv)
	}
	return out, nil
}

// invocation is the bookkeeping of one Invoke.
type invocation struct {
	c        *Client
	ts       *typeState
	target   functions.Address
	attempts int
	status   int
	// the W3C trace context the requests carry ("": none)
	traceParent, traceState string
}

func (inv *invocation) fail(err error) error {
	return &Error{URL: inv.ts.url, Address: inv.target, Attempts: inv.attempts, Status: inv.status, Err: err}
}

// writeDeadlineConn sets a write deadline before each write, which
// net/http has no setting for.
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

package remote

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/stateloop/stateloop/functions"
)

// Invoker sends a batch of calls to one address and returns the effects.
// [*Client] implements it; tests use fakes. Invoke is called from a new
// goroutine per request and must honour ctx.
//
// An Invoker that also has a MaxBatch() int method (as *Client has)
// bounds the batches of its addresses itself; see [BatcherConfig].
type Invoker interface {
	Invoke(ctx context.Context, target functions.Address, state map[string]functions.StoredValue, batch []Call) (*Result, error)
}

// ErrNoInvoker is the completion error of calls to a function type that
// [BatcherConfig.Route] has no invoker for.
var ErrNoInvoker = errors.New("remote: no endpoint serves the function type")

// BatcherConfig configures a [Batcher].
type BatcherConfig struct {
	// Route returns the invoker for a function type, nil if there is none
	// (such calls complete with [ErrNoInvoker]). Required.
	Route func(functions.TypeName) Invoker
	// State returns the current state of an address, after every
	// completion the worker has marked [Batcher.Done]. It is called on the
	// worker's goroutine, at the moment a request is dispatched; the
	// Batcher hands a shallow copy of the map to the request. Required.
	State func(functions.Address) (map[string]functions.StoredValue, error)
	// MaxBatch bounds the calls in one request and is the backlog per
	// address at which Submit reports backpressure, for invokers without
	// a MaxBatch method. Default 1000 (StateFun's maxNumBatchRequests);
	// negative means no limit.
	MaxBatch int
	// MaxInFlight is the number of running requests (completions not yet
	// marked Done included) at which Submit reports backpressure.
	// Default 32768 (StateFun's statefun.async.max-per-task); negative
	// means no limit.
	MaxInFlight int
	// OnCounts, if set, is called with the new [TypeCounts] of a function
	// type each time they change: by Submit, Done and Close, on their
	// goroutine (the worker's). A runtime sets its gauges from it.
	OnCounts func(functions.TypeName, TypeCounts)
}

// TypeCounts are what a [Batcher] holds for one function type, StateFun's
// per-type metrics of remote functions.
type TypeCounts struct {
	// InFlight counts the requests dispatched and not yet Done: at most
	// one per address (StateFun's inflight-async-ops).
	InFlight int
	// Queued counts the calls waiting behind a request to their address
	// (StateFun's backlog-messages).
	Queued int
	// Blocked counts the addresses whose queue holds a full batch.
	Blocked int
}

// Completion is a finished request: its calls and either the result or
// the error. Hand it back to [Batcher.Done] (or [Batcher.Retry]) once the
// result is applied.
type Completion struct {
	Address functions.Address
	Calls   []Call
	Result  *Result
	Err     error
	// Took is how long the request took, retries included.
	Took time.Duration

	seq uint64
}

// Batcher schedules calls to remote functions the way StateFun does: at
// most one request in flight per address; calls that arrive meanwhile
// queue up and go out together, up to the batch limit, as the next request
// once the worker has applied the previous one. Requests of different
// addresses run concurrently.
//
// A Batcher belongs to one goroutine (the worker's): Submit, Done, Retry,
// Drain, Close and the getters must all be called from it; only the
// requests run elsewhere, and their results come back on
// [Batcher.Completions]. The worker loop looks like this:
//
//	for {
//		select {
//		case rec := <-records: // only while !b.Backpressure()
//			b.Submit(addr, remote.Call{Caller: caller, Argument: msg})
//		case c := <-b.Completions():
//			apply(c)  // state into the overlay, messages, egress, timers
//			b.Done(c) // dispatches the address's next batch, reading State
//		}
//		// before committing a transaction:
//		b.Drain(ctx, func(c remote.Completion) { apply(c); b.Done(c) })
//	}
//
// When ctx (of [NewBatcher]) ends, running requests fail with its error
// and completions not yet received are dropped; the Batcher is then of no
// further use.
type Batcher struct {
	ctx   context.Context
	cfg   BatcherConfig
	done  chan Completion
	addrs map[functions.Address]*pending
	seq   uint64

	inFlight int // dispatched and not yet Done
	queued   int // calls waiting in queues
	blocked  int // addresses whose queue is at their batch limit
	// the same per function type; types with all three at zero are left
	// out
	types map[functions.TypeName]TypeCounts
}

// pending is an address with a request in flight (or a completion not yet
// Done) and the calls queued behind it.
type pending struct {
	inv      Invoker
	maxBatch int
	seq      uint64 // of the request in flight
	queue    []Call
	blocked  bool
}

// NewBatcher returns a Batcher whose requests run with ctx. It returns an
// error if cfg lacks Route or State.
func NewBatcher(ctx context.Context, cfg BatcherConfig) (*Batcher, error) {
	var errs []error
	if cfg.Route == nil {
		errs = append(errs, errors.New("remote: batcher needs a Route func"))
	}
	if cfg.State == nil {
		errs = append(errs, errors.New("remote: batcher needs a State func"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxNumBatchRequests
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 32768
	}
	return &Batcher{ctx: ctx, cfg: cfg, done: make(chan Completion, 64), addrs: make(map[functions.Address]*pending),
		types: make(map[functions.TypeName]TypeCounts)}, nil
}

// Completions delivers finished requests, one per dispatched request, in
// the order they finish.
func (b *Batcher) Completions() <-chan Completion { return b.done }

// Submit hands a call for to to the Batcher: it starts a request at once
// if to has none in flight, and queues the call otherwise. It reports
// whether the worker should stop taking new input (see
// [Batcher.Backpressure]); the call is accepted either way.
func (b *Batcher) Submit(to functions.Address, call Call) (backpressure bool) {
	p := b.addrs[to]
	if p == nil {
		p = &pending{inv: b.cfg.Route(to.Type), maxBatch: b.cfg.MaxBatch}
		if m, ok := p.inv.(interface{ MaxBatch() int }); ok {
			p.maxBatch = m.MaxBatch()
		}
		b.addrs[to] = p
		b.count(to.Type, 1, 0, 0)
		b.dispatch(to, p, []Call{call}, 0)
		return b.Backpressure()
	}
	p.queue = append(p.queue, call)
	blocked := 0
	if !p.blocked && p.maxBatch > 0 && len(p.queue) >= p.maxBatch {
		p.blocked = true
		blocked = 1
	}
	b.count(to.Type, 0, 1, blocked)
	return b.Backpressure()
}

// count changes the counts of function type t (and the totals) by the
// deltas given, and reports the new counts to OnCounts.
func (b *Batcher) count(t functions.TypeName, inFlight, queued, blocked int) {
	b.inFlight += inFlight
	b.queued += queued
	b.blocked += blocked
	c := b.types[t]
	c.InFlight += inFlight
	c.Queued += queued
	c.Blocked += blocked
	if c == (TypeCounts{}) {
		delete(b.types, t)
	} else {
		b.types[t] = c
	}
	if b.cfg.OnCounts != nil {
		b.cfg.OnCounts(t, c)
	}
}

// Backpressure reports whether some address has a full batch queued
// behind its request, or the requests in flight reached MaxInFlight. The
// worker should then stop consuming input and only handle completions
// until Backpressure turns false.
func (b *Batcher) Backpressure() bool {
	return b.blocked > 0 || (b.cfg.MaxInFlight > 0 && b.inFlight >= b.cfg.MaxInFlight)
}

// Done marks c as applied: the address's next batch, if calls are queued,
// is dispatched now with the state State returns. It panics if c is not
// the address's outstanding completion (Done twice, or a completion that
// did not come from this Batcher), which would break the one-request-per-
// address order.
func (b *Batcher) Done(c Completion) {
	p := b.outstanding(c, "Done")
	if len(p.queue) == 0 {
		delete(b.addrs, c.Address)
		b.count(c.Address.Type, -1, 0, 0)
		return
	}
	n := len(p.queue)
	if p.maxBatch > 0 {
		n = min(n, p.maxBatch)
	}
	next := p.queue[:n:n]
	if n == len(p.queue) {
		p.queue = nil
	} else {
		p.queue = p.queue[n:]
	}
	unblocked := 0
	if p.blocked && (p.maxBatch <= 0 || len(p.queue) < p.maxBatch) {
		p.blocked = false
		unblocked = 1
	}
	b.count(c.Address.Type, 0, -n, -unblocked)
	b.dispatch(c.Address, p, next, 0)
}

// Retry sends the calls of a failed completion again after delay, before
// anything queued for the address, with the state State returns then. It
// panics like Done for a completion that is not outstanding.
func (b *Batcher) Retry(c Completion, delay time.Duration) {
	p := b.outstanding(c, "Retry")
	b.dispatch(c.Address, p, c.Calls, delay)
}

// Drain handles completions with handle until no request is in flight and
// nothing is queued, e.g. before a transaction commits. handle must call
// Done or Retry for each completion. Drain returns ctx's error if ctx ends
// first.
func (b *Batcher) Drain(ctx context.Context, handle func(Completion)) error {
	for b.Busy() {
		select {
		case c := <-b.done:
			handle(c)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close forgets every address, so that the counts of every function type
// drop to zero (and are reported so to OnCounts), for a runtime that gives
// up on what the Batcher holds: after a failed transaction, or when its
// session ends. It does not stop the running requests (cancel the context
// of [NewBatcher] for that). The Batcher is of no use afterwards.
func (b *Batcher) Close() {
	for t, c := range b.types {
		b.count(t, -c.InFlight, -c.Queued, -c.Blocked)
	}
	clear(b.addrs)
}

// Busy reports whether a request is in flight or a completion is not yet
// Done.
func (b *Batcher) Busy() bool { return len(b.addrs) > 0 }

// Counts returns the counts of function type t.
func (b *Batcher) Counts(t functions.TypeName) TypeCounts { return b.types[t] }

// Blocked returns the number of addresses whose queue holds a full batch.
func (b *Batcher) Blocked() int { return b.blocked }

// InFlight returns the number of requests dispatched and not yet Done.
func (b *Batcher) InFlight() int { return b.inFlight }

// Queued returns the number of calls waiting behind a request.
func (b *Batcher) Queued() int { return b.queued }

func (b *Batcher) outstanding(c Completion, op string) *pending {
	p := b.addrs[c.Address]
	if p == nil || p.seq != c.seq || c.seq == 0 {
		panic(fmt.Sprintf("remote: Batcher.%s for %s: not its outstanding completion", op, c.Address))
	}
	p.seq = 0
	return p
}

// dispatch starts a request on its own goroutine. State is read here, on
// the worker's goroutine.
func (b *Batcher) dispatch(to functions.Address, p *pending, calls []Call, delay time.Duration) {
	b.seq++
	p.seq = b.seq
	c := Completion{Address: to, Calls: calls, seq: b.seq}
	inv := p.inv
	state, err := b.cfg.State(to)
	if err != nil {
		c.Err = fmt.Errorf("remote: read state of %s: %w", to, err)
	} else if inv == nil {
		c.Err = fmt.Errorf("%w %s", ErrNoInvoker, to.Type)
	}
	state = maps.Clone(state)
	go func() {
		if c.Err == nil && delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-b.ctx.Done():
				t.Stop()
			}
		}
		if c.Err == nil {
			start := time.Now()
			c.Result, c.Err = inv.Invoke(b.ctx, to, state, calls)
			c.Took = time.Since(start)
		}
		select {
		case b.done <- c:
		case <-b.ctx.Done():
		}
	}()
}

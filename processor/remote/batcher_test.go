package remote_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor/remote"
)

// stepInvoker hands every request to the test, which answers it.
type stepInvoker struct{ reqs chan *stepReq }

type stepReq struct {
	target functions.Address
	state  map[string]functions.StoredValue
	batch  []remote.Call
	reply  chan stepReply
}

type stepReply struct {
	res *remote.Result
	err error
}

func newStepInvoker() *stepInvoker { return &stepInvoker{reqs: make(chan *stepReq)} }

func (s *stepInvoker) Invoke(ctx context.Context, target functions.Address, state map[string]functions.StoredValue, batch []remote.Call) (*remote.Result, error) {
	r := &stepReq{target: target, state: state, batch: batch, reply: make(chan stepReply, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep.res, rep.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *stepInvoker) next(t *testing.T) *stepReq {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request dispatched")
		return nil
	}
}

func (s *stepInvoker) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.reqs:
		t.Fatalf("unexpected request for %s with %d calls", r.target, len(r.batch))
	case <-time.After(50 * time.Millisecond):
	}
}

func completion(t *testing.T, b *remote.Batcher) remote.Completion {
	t.Helper()
	select {
	case c := <-b.Completions():
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no completion")
		return remote.Completion{}
	}
}

// store is the worker's state in these tests.
type store map[functions.Address]map[string]functions.StoredValue

func (s store) read(a functions.Address) (map[string]functions.StoredValue, error) { return s[a], nil }

func long(v int64) functions.Message { return functions.LongType.Of(v) }

func values(t *testing.T, calls []remote.Call) []int64 {
	var out []int64
	for _, c := range calls {
		out = append(out, mustAs(t, functions.LongType, c.Argument))
	}
	return out
}

func newBatcher(t *testing.T, inv remote.Invoker, st store, cfg remote.BatcherConfig) *remote.Batcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.Route = func(functions.TypeName) remote.Invoker { return inv }
	cfg.State = st.read
	b, err := remote.NewBatcher(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatcherOnePerAddress: a second call to a busy address waits and
// goes out in the next request, with the state after the first result
// was applied; other addresses run meanwhile.
func TestBatcherOnePerAddress(t *testing.T) {
	t.Parallel()
	inv := newStepInvoker()
	st := store{}
	b := newBatcher(t, inv, st, remote.BatcherConfig{})
	a, other := addr("example/counter", "a"), addr("example/counter", "b")

	b.Submit(a, call(long(1)))
	r1 := inv.next(t)
	if r1.target != a || !slices.Equal(values(t, r1.batch), []int64{1}) {
		t.Fatalf("first request %s %v", r1.target, values(t, r1.batch))
	}
	b.Submit(a, call(long(2)))
	b.Submit(a, call(long(3)))
	inv.none(t)
	b.Submit(other, call(long(9)))
	r2 := inv.next(t)
	if r2.target != other {
		t.Fatalf("request for %s, want %s", r2.target, other)
	}
	if b.InFlight() != 2 || b.Queued() != 2 || !b.Busy() {
		t.Errorf("in flight %d, queued %d, want 2, 2", b.InFlight(), b.Queued())
	}

	written := functions.StoredValue{TypeName: "io.statefun.types/long", Value: []byte("after first")}
	r1.reply <- stepReply{res: &remote.Result{State: []functions.StateChange{{Name: "n", Value: written}}}}
	c := completion(t, b)
	if c.Address != a || c.Err != nil || len(c.Calls) != 1 {
		t.Fatalf("completion %+v", c)
	}
	inv.none(t) // nothing until the worker has applied the result
	st[a] = applyState(st[a], c.Result.State)
	b.Done(c)
	r3 := inv.next(t)
	if r3.target != a || !slices.Equal(values(t, r3.batch), []int64{2, 3}) {
		t.Fatalf("next request %s %v, want a [2 3]", r3.target, values(t, r3.batch))
	}
	if diff := cmp.Diff(map[string]functions.StoredValue{"n": written}, r3.state); diff != "" {
		t.Errorf("state of the second request (-want +got):\n%s", diff)
	}
	r3.reply <- stepReply{res: &remote.Result{}}
	r2.reply <- stepReply{res: &remote.Result{}}
	for range 2 {
		b.Done(completion(t, b))
	}
	if b.Busy() || b.InFlight() != 0 || b.Queued() != 0 {
		t.Errorf("busy after all completions: in flight %d, queued %d", b.InFlight(), b.Queued())
	}
}

// TestBatcherCapAndBackpressure: batches carry at most MaxBatch calls, and
// Submit reports backpressure while an address has a full batch queued.
func TestBatcherCapAndBackpressure(t *testing.T) {
	t.Parallel()
	inv := newStepInvoker()
	b := newBatcher(t, inv, store{}, remote.BatcherConfig{MaxBatch: 3})
	a := addr("example/counter", "a")
	if b.Submit(a, call(long(0))) {
		t.Error("backpressure with one call in flight")
	}
	r := inv.next(t)
	var bp []bool
	for i := int64(1); i <= 7; i++ {
		bp = append(bp, b.Submit(a, call(long(i))))
	}
	if diff := cmp.Diff([]bool{false, false, true, true, true, true, true}, bp); diff != "" {
		t.Errorf("backpressure per Submit (-want +got):\n%s", diff)
	}
	var batches [][]int64
	wantPressure := []bool{true, false, false, false}
	for i := 0; ; i++ {
		r.reply <- stepReply{res: &remote.Result{}}
		b.Done(completion(t, b))
		if i < len(wantPressure) && b.Backpressure() != wantPressure[i] {
			t.Errorf("after completion %d: backpressure %v, want %v (queued %d)", i+1, b.Backpressure(), wantPressure[i], b.Queued())
		}
		if !b.Busy() {
			break
		}
		r = inv.next(t)
		batches = append(batches, values(t, r.batch))
	}
	if diff := cmp.Diff([][]int64{{1, 2, 3}, {4, 5, 6}, {7}}, batches); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

// maxBatchInvoker bounds its batches itself, as *remote.Client does.
type maxBatchInvoker struct{ *stepInvoker }

func (maxBatchInvoker) MaxBatch() int { return 2 }

func TestBatcherInvokerMaxBatch(t *testing.T) {
	t.Parallel()
	inv := newStepInvoker()
	b := newBatcher(t, maxBatchInvoker{inv}, store{}, remote.BatcherConfig{MaxBatch: 100})
	a := addr("example/counter", "a")
	b.Submit(a, call(long(0)))
	r := inv.next(t)
	b.Submit(a, call(long(1)))
	if !b.Submit(a, call(long(2))) {
		t.Error("no backpressure at the invoker's MaxBatch")
	}
	b.Submit(a, call(long(3)))
	r.reply <- stepReply{res: &remote.Result{}}
	b.Done(completion(t, b))
	if r = inv.next(t); len(r.batch) != 2 {
		t.Errorf("batch of %d, want the invoker's 2", len(r.batch))
	}
}

func TestBatcherMaxInFlight(t *testing.T) {
	t.Parallel()
	inv := newStepInvoker()
	b := newBatcher(t, inv, store{}, remote.BatcherConfig{MaxInFlight: 2})
	if b.Submit(addr("example/counter", "a"), call(long(1))) {
		t.Error("backpressure at 1 in flight")
	}
	if !b.Submit(addr("example/counter", "b"), call(long(1))) {
		t.Error("no backpressure at 2 in flight")
	}
	r := inv.next(t)
	r.reply <- stepReply{res: &remote.Result{}}
	b.Done(completion(t, b))
	if b.Backpressure() {
		t.Error("backpressure after a request finished")
	}
}

// TestBatcherRetry: a failed batch can be sent again, before the calls
// queued behind it.
func TestBatcherRetry(t *testing.T) {
	t.Parallel()
	inv := newStepInvoker()
	b := newBatcher(t, inv, store{}, remote.BatcherConfig{})
	a := addr("example/counter", "a")
	b.Submit(a, call(long(1)))
	r := inv.next(t)
	b.Submit(a, call(long(2)))
	r.reply <- stepReply{err: errors.New("flaky")}
	c := completion(t, b)
	if c.Err == nil {
		t.Fatal("no error in completion")
	}
	b.Retry(c, 10*time.Millisecond)
	r = inv.next(t)
	if !slices.Equal(values(t, r.batch), []int64{1}) {
		t.Errorf("retried batch %v, want [1]", values(t, r.batch))
	}
	r.reply <- stepReply{res: &remote.Result{}}
	b.Done(completion(t, b))
	if r = inv.next(t); !slices.Equal(values(t, r.batch), []int64{2}) {
		t.Errorf("next batch %v, want [2]", values(t, r.batch))
	}
}

func TestBatcherErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := remote.NewBatcher(ctx, remote.BatcherConfig{}); err == nil {
		t.Error("NewBatcher without Route and State succeeded")
	}
	failing := func(a functions.Address) (map[string]functions.StoredValue, error) {
		return nil, errors.New("disk on fire")
	}
	b, err := remote.NewBatcher(ctx, remote.BatcherConfig{
		Route: func(t functions.TypeName) remote.Invoker { return nil },
		State: failing,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Submit(addr("example/unknown", "a"), call(long(1)))
	if c := completion(t, b); c.Err == nil || c.Result != nil {
		t.Errorf("completion %+v, want an error", c)
	} else {
		b.Done(c)
	}

	b, _ = remote.NewBatcher(ctx, remote.BatcherConfig{
		Route: func(t functions.TypeName) remote.Invoker { return nil },
		State: store{}.read,
	})
	b.Submit(addr("example/unknown", "a"), call(long(1)))
	c := completion(t, b)
	if !errors.Is(c.Err, remote.ErrNoInvoker) {
		t.Errorf("got %v, want ErrNoInvoker", c.Err)
	}
	b.Done(c)
	defer func() {
		if recover() == nil {
			t.Error("a second Done did not panic")
		}
	}()
	b.Done(c)
}

// counterInvoker adds up the calls' values in state "n" at once.
type counterInvoker struct {
	mu      sync.Mutex
	batches map[functions.Address][][]int64
}

func (f *counterInvoker) Invoke(_ context.Context, target functions.Address, state map[string]functions.StoredValue, batch []remote.Call) (*remote.Result, error) {
	var n int64
	if v, ok := state["n"]; ok {
		n, _ = functions.LongType.Codec().Decode(v.Value)
	}
	var vals []int64
	for _, c := range batch {
		v, _ := functions.LongType.As(c.Argument)
		vals = append(vals, v)
		n += v
	}
	f.mu.Lock()
	f.batches[target] = append(f.batches[target], vals)
	f.mu.Unlock()
	time.Sleep(time.Millisecond)
	b, _ := functions.LongType.Codec().Encode(n)
	return &remote.Result{State: []functions.StateChange{{Name: "n", Value: functions.StoredValue{TypeName: functions.LongType.Name(), Value: b}}}}, nil
}

// TestBatcherDrain: a worker loop that submits calls to several
// addresses, handles completions as they come, and drains at the end;
// every call counts once, in order per address, and the state of each
// request includes all earlier results.
func TestBatcherDrain(t *testing.T) {
	t.Parallel()
	inv := &counterInvoker{batches: map[functions.Address][][]int64{}}
	st := store{}
	b := newBatcher(t, inv, st, remote.BatcherConfig{MaxBatch: 8})
	apply := func(c remote.Completion) {
		if c.Err != nil {
			t.Errorf("completion error: %v", c.Err)
		}
		st[c.Address] = applyState(st[c.Address], c.Result.State)
		b.Done(c)
	}
	addrs := []functions.Address{addr("example/counter", "a"), addr("example/counter", "b"), addr("example/counter", "c")}
	want := map[functions.Address]int64{}
	for i := range int64(600) {
		a := addrs[i%3]
		want[a] += i
		for bp := b.Submit(a, call(long(i))); bp; bp = b.Backpressure() {
			apply(completion(t, b)) // backpressure: handle completions until it eases
		}
		select {
		case c := <-b.Completions():
			apply(c)
		default:
		}
	}
	if err := b.Drain(ctxTimeout(t, 10*time.Second), apply); err != nil {
		t.Fatal(err)
	}
	if b.Busy() {
		t.Fatal("busy after Drain")
	}
	for _, a := range addrs {
		n, _ := functions.LongType.Codec().Decode(st[a]["n"].Value)
		if n != want[a] {
			t.Errorf("%s: n = %d, want %d", a, n, want[a])
		}
		var seq []int64
		for _, bt := range inv.batches[a] {
			if len(bt) > 8 {
				t.Errorf("%s: batch of %d calls", a, len(bt))
			}
			seq = append(seq, bt...)
		}
		if !slices.IsSorted(seq) || len(seq) != 200 {
			t.Errorf("%s: calls out of order or missing: %d calls", a, len(seq))
		}
	}
}

// TestBatcherWithSDK runs the Batcher with the real client against SDK
// functions: batches form behind slow requests, and each request carries
// the state the previous results left.
func TestBatcherWithSDK(t *testing.T) {
	t.Parallel()
	n := statefun.ValueSpec{Name: "n", ValueType: statefun.Int64Type}
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		var v int64
		ctx.Storage().Get(n, &v)
		ctx.Storage().Set(n, v+msg.AsInt64())
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	srv := newSDKServer(t, statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("example/counter"),
		States: []statefun.ValueSpec{n}, Function: statefun.StatefulFunctionPointer(fn)})
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}", MaxNumBatchRequests: 16})
	st := store{}
	b := newBatcher(t, c, st, remote.BatcherConfig{})
	apply := func(c remote.Completion) {
		if c.Err != nil {
			t.Fatalf("completion error: %v", c.Err)
		}
		st[c.Address] = applyState(st[c.Address], c.Result.State)
		b.Done(c)
	}
	want := map[functions.Address]int64{}
	for i := range int64(300) {
		a := addr("example/counter", fmt.Sprint(i%4))
		want[a] += i
		for bp := b.Submit(a, call(long(i))); bp; bp = b.Backpressure() {
			apply(completion(t, b))
		}
	}
	if err := b.Drain(ctxTimeout(t, 20*time.Second), apply); err != nil {
		t.Fatal(err)
	}
	for a, w := range want {
		got, _ := functions.LongType.Codec().Decode(st[a]["n"].Value)
		if got != w {
			t.Errorf("%s: n = %d, want %d", a, got, w)
		}
	}
	reqs := srv.recorded()
	maxBatch := 0
	for _, r := range reqs {
		maxBatch = max(maxBatch, len(r.req.GetInvocation().GetInvocations()))
	}
	if len(reqs) >= 300 || maxBatch > 16 || maxBatch < 2 {
		t.Errorf("%d requests for 300 calls, largest batch %d; want batches of 2..16", len(reqs), maxBatch)
	}
	t.Logf("%d requests for 300 calls to 4 addresses, largest batch %d", len(reqs), maxBatch)
}

// TestBatcherTypedNilClient: a Route func that returns a nil *Client as an
// Invoker (a missing map entry) makes an error completion, not a panic.
func TestBatcherTypedNilClient(t *testing.T) {
	t.Parallel()
	clients := map[functions.TypeName]*remote.Client{}
	b, err := remote.NewBatcher(ctxTimeout(t, 5*time.Second), remote.BatcherConfig{
		Route: func(t functions.TypeName) remote.Invoker { return clients[t] },
		State: store{}.read,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Submit(addr("example/unknown", "a"), call(long(1)))
	if c := completion(t, b); !errors.Is(c.Err, remote.ErrNoInvoker) {
		t.Errorf("got %v, want ErrNoInvoker", c.Err)
	}
}

// TestBatcherCountsPerFunctionType: regression for issue 10 item 12, the
// runtime's remote gauges read 0 while messages waited: it set them only
// when a request completed, and for all function types together. The
// Batcher keeps the counts per function type and reports every change to
// OnCounts as it happens: on Submit, on Done, and on Close, which drops
// them to zero.
func TestBatcherCountsPerFunctionType(t *testing.T) {
	t.Parallel()
	inv := newStepInvoker()
	reported := map[functions.TypeName]remote.TypeCounts{}
	b := newBatcher(t, inv, store{}, remote.BatcherConfig{MaxBatch: 2, OnCounts: func(t functions.TypeName, c remote.TypeCounts) { reported[t] = c }})
	counter, other := functions.TypeName("example/counter"), functions.TypeName("example/other")
	check := func(when string, want map[functions.TypeName]remote.TypeCounts) {
		t.Helper()
		if diff := cmp.Diff(want, reported); diff != "" {
			t.Errorf("%s: reported counts (-want +got):\n%s", when, diff)
		}
		for typ, c := range want {
			if got := b.Counts(typ); got != c {
				t.Errorf("%s: Counts(%s) = %+v, want %+v", when, typ, got, c)
			}
		}
	}

	a, c := addr(string(counter), "a"), addr(string(counter), "c")
	b.Submit(a, call(long(1)))
	ra := inv.next(t)
	check("one call", map[functions.TypeName]remote.TypeCounts{counter: {InFlight: 1}})
	b.Submit(a, call(long(2)))
	b.Submit(a, call(long(3))) // a full batch of 2 waits: blocked
	b.Submit(c, call(long(4)))
	inv.next(t) // c's request, never answered
	b.Submit(addr(string(other), "o"), call(long(5)))
	ro := inv.next(t)
	check("three addresses", map[functions.TypeName]remote.TypeCounts{counter: {InFlight: 2, Queued: 2, Blocked: 1}, other: {InFlight: 1}})

	ra.reply <- stepReply{res: &remote.Result{}}
	b.Done(completion(t, b)) // dispatches a's queued batch
	inv.next(t)
	check("a's next batch dispatched", map[functions.TypeName]remote.TypeCounts{counter: {InFlight: 2}, other: {InFlight: 1}})
	ro.reply <- stepReply{res: &remote.Result{}}
	b.Done(completion(t, b))
	check("other done", map[functions.TypeName]remote.TypeCounts{counter: {InFlight: 2}, other: {}})

	b.Submit(c, call(long(6)))
	b.Close()
	check("closed", map[functions.TypeName]remote.TypeCounts{counter: {}, other: {}})
	if b.InFlight() != 0 || b.Queued() != 0 || b.Blocked() != 0 || b.Busy() {
		t.Errorf("after Close: in flight %d, queued %d, blocked %d, busy %v, want nothing", b.InFlight(), b.Queued(), b.Blocked(), b.Busy())
	}
}

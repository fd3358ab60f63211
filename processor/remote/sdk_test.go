package remote_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote"
)

// The functions below are written with the official StateFun Go SDK and
// served over HTTP by newSDKServer; the tests invoke them with our client.

var (
	seenSpec    = statefun.ValueSpec{Name: "seen", ValueType: statefun.Int32Type}
	greeterType = statefun.TypeNameFrom("example/greeter")
	printerType = statefun.TypeNameFrom("example/printer")
	greetEgress = statefun.TypeNameFrom("example/greetings")
)

// greeter counts the names it greets and sends each greeting to the
// printer with the same id, telling who called it.
func greeter(ctx statefun.Context, msg statefun.Message) error {
	var seen int32
	ctx.Storage().Get(seenSpec, &seen)
	seen++
	ctx.Storage().Set(seenSpec, seen)
	caller := "ingress"
	if c := ctx.Caller(); c != nil {
		caller = c.FunctionType.String() + "/" + c.Id
	}
	ctx.Send(statefun.MessageBuilder{
		Target: statefun.Address{FunctionType: printerType, Id: ctx.Self().Id},
		Value:  fmt.Sprintf("hello %s #%d from %s", msg.AsString(), seen, caller),
	})
	return nil
}

func greeterSpec() statefun.StatefulFunctionSpec {
	return statefun.StatefulFunctionSpec{FunctionType: greeterType, States: []statefun.ValueSpec{seenSpec}, Function: statefun.StatefulFunctionPointer(greeter)}
}

// TestSDKMissingStateRoundTrip: the first call carries no state, the SDK
// answers with its missing specs, the client learns them and sends the
// same call again; later calls carry the stored value from the start.
func TestSDKMissingStateRoundTrip(t *testing.T) {
	srv := newSDKServer(t, greeterSpec())
	c := newClient(t, remote.Config{URL: srv.URL + "/fn/{function.name}"})
	ctx := ctxTimeout(t, 10*time.Second)
	bob := addr("example/greeter", "Bob")

	res, err := c.Invoke(ctx, bob, nil, []remote.Call{call(functions.StringType.Of("Bob"))})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	reqs := srv.recorded()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2 (missing-state round trip)", len(reqs))
	}
	if got := reqs[0].req.GetInvocation().GetState(); len(got) != 0 {
		t.Errorf("first request carries state %v, want none", got)
	}
	st := reqs[1].req.GetInvocation().GetState()
	if len(st) != 1 || st[0].GetStateName() != "seen" || st[0].GetStateValue() != nil {
		t.Errorf("second request state = %v, want seen unset", st)
	}
	if reqs[0].path != "/fn/greeter" {
		t.Errorf("request path %q, want /fn/greeter", reqs[0].path)
	}
	wantSpecs := []driver.StateInfo{{Name: "seen", TypeName: "io.statefun.types/int"}}
	if diff := cmp.Diff(wantSpecs, c.Specs("example/greeter")); diff != "" {
		t.Errorf("learned specs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSpecs, res.Specs); diff != "" {
		t.Errorf("result specs (-want +got):\n%s", diff)
	}
	checkSeen(t, res, 1)
	if len(res.Messages) != 1 || res.Messages[0].To != addr("example/printer", "Bob") {
		t.Fatalf("messages = %+v, want one to example/printer/Bob", res.Messages)
	}
	if got := mustAs(t, functions.StringType, res.Messages[0].Message); got != "hello Bob #1 from ingress" {
		t.Errorf("greeting %q", got)
	}

	// The next call carries the value: one request, and the SDK sees it.
	srv.reset()
	state := applyState(nil, res.State)
	caller := addr("example/caller", "7")
	res, err = c.Invoke(ctx, bob, state, []remote.Call{{Caller: &caller, Argument: functions.StringType.Of("Bob")}})
	if err != nil {
		t.Fatalf("second Invoke: %v", err)
	}
	if n := len(srv.recorded()); n != 1 {
		t.Errorf("second call took %d requests, want 1", n)
	}
	checkSeen(t, res, 2)
	if got := mustAs(t, functions.StringType, res.Messages[0].Message); got != "hello Bob #2 from example/caller/7" {
		t.Errorf("greeting %q", got)
	}

	// Another address of the same type needs no round trip either.
	srv.reset()
	if _, err := c.Invoke(ctx, addr("example/greeter", "Alice"), nil, []remote.Call{call(functions.StringType.Of("Alice"))}); err != nil {
		t.Fatalf("Invoke Alice: %v", err)
	}
	if n := len(srv.recorded()); n != 1 {
		t.Errorf("call for a new address took %d requests, want 1", n)
	}
}

func checkSeen(t *testing.T, res *remote.Result, want int32) {
	t.Helper()
	if len(res.State) != 1 || res.State[0].Name != "seen" || res.State[0].Deleted {
		t.Fatalf("state changes = %+v, want seen modified", res.State)
	}
	v := res.State[0].Value
	if v.TypeName != "io.statefun.types/int" {
		t.Errorf("seen stored with type %s", v.TypeName)
	}
	if got := mustAs(t, functions.IntType, functions.NewMessage(v.TypeName, v.Value)); got != want {
		t.Errorf("seen = %d, want %d", got, want)
	}
}

// TestSDKConcurrentFirstCalls: calls to many addresses of a fresh type at
// once make one missing-state round trip in all, not one per address.
func TestSDKConcurrentFirstCalls(t *testing.T) {
	srv := newSDKServer(t, greeterSpec())
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}"})
	ctx := ctxTimeout(t, 10*time.Second)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.Invoke(ctx, addr("example/greeter", fmt.Sprint(i)), nil, []remote.Call{call(functions.StringType.Of("x"))})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(srv.recorded()); got != n+1 {
		t.Errorf("got %d requests for %d first calls, want %d", got, n, n+1)
	}
}

// TestSDKMessagesAndEgress: a message to another address and a record to
// a Kafka egress, built with statefun.KafkaEgressBuilder.
func TestSDKMessagesAndEgress(t *testing.T) {
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		ctx.Send(statefun.MessageBuilder{Target: statefun.Address{FunctionType: greeterType, Id: "Alice"}, Value: int64(42)})
		ctx.SendEgress(statefun.KafkaEgressBuilder{Target: greetEgress, Topic: "greetings", Key: "Alice", Value: "hi " + msg.AsString()})
		return nil
	}
	srv := newSDKServer(t, statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("example/sender"), Function: statefun.StatefulFunctionPointer(fn)})
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}"})
	res, err := c.Invoke(ctxTimeout(t, 10*time.Second), addr("example/sender", "1"), nil, []remote.Call{call(functions.StringType.Of("Alice"))})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if n := len(srv.recorded()); n != 1 {
		t.Errorf("a function without state took %d requests, want 1", n)
	}
	if len(res.State) != 0 || len(res.Specs) != 0 {
		t.Errorf("state %v specs %v, want none", res.State, res.Specs)
	}
	if len(res.Messages) != 1 || res.Messages[0].To != addr("example/greeter", "Alice") {
		t.Fatalf("messages = %+v", res.Messages)
	}
	if got := mustAs(t, functions.LongType, res.Messages[0].Message); got != 42 {
		t.Errorf("message value %d, want 42", got)
	}
	if len(res.Egress) != 1 || res.Egress[0].Egress != "example/greetings" {
		t.Fatalf("egress = %+v", res.Egress)
	}
	rec := mustAs(t, functions.KafkaRecordType, res.Egress[0].Message)
	if diff := cmp.Diff(functions.KafkaRecord{Topic: "greetings", Key: "Alice", Value: []byte("hi Alice")}, rec); diff != "" {
		t.Errorf("kafka record (-want +got):\n%s", diff)
	}
}

// TestSDKDelayedMessages: a delayed message with and without a
// cancellation token, and a cancellation.
func TestSDKDelayedMessages(t *testing.T) {
	fn := func(ctx statefun.Context, _ statefun.Message) error {
		tok, err := statefun.NewCancellationToken("reminder-1")
		if err != nil {
			return err
		}
		old, _ := statefun.NewCancellationToken("reminder-0")
		to := statefun.Address{FunctionType: greeterType, Id: "Bob"}
		ctx.SendAfterWithCancellationToken(90*time.Second, tok, statefun.MessageBuilder{Target: to, Value: "later"})
		ctx.SendAfter(1500*time.Microsecond, statefun.MessageBuilder{Target: to, Value: "soon"}) // the wire has whole ms
		ctx.CancelDelayedMessage(old)
		return nil
	}
	srv := newSDKServer(t, statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("example/delayer"), Function: statefun.StatefulFunctionPointer(fn)})
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}"})
	res, err := c.Invoke(ctxTimeout(t, 10*time.Second), addr("example/delayer", "1"), nil, []remote.Call{call(functions.StringType.Of("go"))})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	bob := addr("example/greeter", "Bob")
	want := []driver.DelayedMessage{
		{Delay: 90 * time.Second, To: bob, Message: functions.StringType.Of("later"), Token: "reminder-1"},
		{Delay: time.Millisecond, To: bob, Message: functions.StringType.Of("soon")},
		{Token: "reminder-0", Cancel: true},
	}
	if diff := cmp.Diff(want, res.Delayed, cmp.Comparer(sameMessage)); diff != "" {
		t.Errorf("delayed (-want +got):\n%s", diff)
	}
}

func sameMessage(a, b functions.Message) bool {
	return a.TypeName() == b.TypeName() && string(a.Bytes()) == string(b.Bytes())
}

// TestSDKExpirationSpecs: the expiration a function declares arrives in
// the learned specs; a deletion arrives as a deleted state change.
func TestSDKExpirationSpecs(t *testing.T) {
	last := statefun.ValueSpec{Name: "last", ValueType: statefun.StringType, Expiration: statefun.ExpireAfterWrite(time.Hour)}
	hits := statefun.ValueSpec{Name: "hits", ValueType: statefun.Int64Type, Expiration: statefun.ExpireAfterCall(90 * time.Second)}
	flag := statefun.ValueSpec{Name: "flag", ValueType: statefun.BoolType}
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		var n int64
		ctx.Storage().Get(hits, &n)
		ctx.Storage().Set(hits, n+1)
		ctx.Storage().Set(last, msg.AsString())
		ctx.Storage().Remove(flag)
		return nil
	}
	srv := newSDKServer(t, statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("example/session"),
		States: []statefun.ValueSpec{last, hits, flag}, Function: statefun.StatefulFunctionPointer(fn)})
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}"})
	state := map[string]driver.StoredValue{"flag": {TypeName: "io.statefun.types/bool", Value: []byte{8, 1}}}
	res, err := c.Invoke(ctxTimeout(t, 10*time.Second), addr("example/session", "s1"), state, []remote.Call{call(functions.StringType.Of("x"))})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	wantSpecs := []driver.StateInfo{
		{Name: "flag", TypeName: "io.statefun.types/bool"},
		{Name: "hits", TypeName: "io.statefun.types/long", Expiration: remote.Expiration{Mode: remote.ExpireAfterCall, After: 90 * time.Second}},
		{Name: "last", TypeName: "io.statefun.types/string", Expiration: remote.Expiration{Mode: remote.ExpireAfterWrite, After: time.Hour}},
	}
	if diff := cmp.Diff(wantSpecs, res.Specs); diff != "" {
		t.Errorf("specs (-want +got):\n%s", diff)
	}
	got := map[string]driver.StateChange{}
	for _, s := range res.State {
		got[s.Name] = s
	}
	if s := got["flag"]; !s.Deleted || s.Value.TypeName != "io.statefun.types/bool" {
		t.Errorf("flag change %+v, want deleted", s)
	}
	if s := got["hits"]; s.Deleted || mustAs(t, functions.LongType, functions.NewMessage(s.Value.TypeName, s.Value.Value)) != 1 {
		t.Errorf("hits change %+v, want 1", s)
	}
	if s := got["last"]; s.Deleted || mustAs(t, functions.StringType, functions.NewMessage(s.Value.TypeName, s.Value.Value)) != "x" {
		t.Errorf("last change %+v, want x", s)
	}
	// The request carried the stored flag, typed as declared.
	reqs := srv.recorded()
	for _, pv := range reqs[len(reqs)-1].req.GetInvocation().GetState() {
		if pv.GetStateName() == "flag" && (!pv.GetStateValue().GetHasValue() || string(pv.GetStateValue().GetValue()) != "\x08\x01") {
			t.Errorf("flag sent as %v", pv.GetStateValue())
		}
	}
}

// TestSDKBatch: several calls for one address go in one request; the SDK
// runs them in order over shared state and returns the final value once.
func TestSDKBatch(t *testing.T) {
	n := statefun.ValueSpec{Name: "n", ValueType: statefun.Int64Type}
	fn := func(ctx statefun.Context, msg statefun.Message) error {
		var v int64
		ctx.Storage().Get(n, &v)
		v += msg.AsInt64()
		ctx.Storage().Set(n, v)
		ctx.Send(statefun.MessageBuilder{Target: ctx.Self(), Value: v})
		return nil
	}
	srv := newSDKServer(t, statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("example/counter"),
		States: []statefun.ValueSpec{n}, Function: statefun.StatefulFunctionPointer(fn)})
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}"})
	ctx := ctxTimeout(t, 10*time.Second)
	counter := addr("example/counter", "c")
	state := map[string]driver.StoredValue{"n": {TypeName: "io.statefun.types/long", Value: mustEncode(functions.LongType, 100)}}
	var batch []remote.Call
	for i := 1; i <= 5; i++ {
		batch = append(batch, call(functions.LongType.Of(int64(i))))
	}
	res, err := c.Invoke(ctx, counter, state, batch)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	reqs := srv.recorded()
	if got := len(reqs[len(reqs)-1].req.GetInvocation().GetInvocations()); got != 5 {
		t.Errorf("last request carries %d invocations, want 5", got)
	}
	var sums []int64
	for _, m := range res.Messages {
		sums = append(sums, mustAs(t, functions.LongType, m.Message))
	}
	if diff := cmp.Diff([]int64{101, 103, 106, 110, 115}, sums); diff != "" {
		t.Errorf("running sums (-want +got):\n%s", diff)
	}
	if len(res.State) != 1 || mustAs(t, functions.LongType, functions.NewMessage(res.State[0].Value.TypeName, res.State[0].Value.Value)) != 115 {
		t.Errorf("state changes %+v, want n = 115 once", res.State)
	}
}

func mustEncode[T any](typ functions.Type[T], v T) []byte {
	b, err := typ.Codec().Encode(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestSDKStoredTypeMismatch: a stored value whose type name differs from
// the declaration is not sent; the error is permanent and says why.
func TestSDKStoredTypeMismatch(t *testing.T) {
	srv := newSDKServer(t, greeterSpec())
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}"})
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := c.Invoke(ctx, addr("example/greeter", "warm"), nil, []remote.Call{call(functions.StringType.Of("x"))}); err != nil {
		t.Fatal(err)
	}
	srv.reset()
	state := map[string]driver.StoredValue{"seen": {TypeName: "io.statefun.types/long", Value: mustEncode(functions.LongType, 3)}}
	_, err := c.Invoke(ctx, addr("example/greeter", "Bob"), state, []remote.Call{call(functions.StringType.Of("Bob"))})
	if !errors.Is(err, remote.ErrStateType) || !remote.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent ErrStateType", err)
	}
	for _, want := range []string{"example/greeter/Bob", srv.URL + "/greeter", `"seen"`, "io.statefun.types/long", "io.statefun.types/int"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if n := len(srv.recorded()); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

// TestSDKFunctionError: a function error is an HTTP 500 from the SDK,
// retried until the call timeout; the error carries the SDK's message.
func TestSDKFunctionError(t *testing.T) {
	fn := func(statefun.Context, statefun.Message) error { return errors.New("boom in the function") }
	srv := newSDKServer(t, statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("example/failing"), Function: statefun.StatefulFunctionPointer(fn)})
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}", CallTimeout: 300 * time.Millisecond})
	_, err := c.Invoke(ctxTimeout(t, 10*time.Second), addr("example/failing", "1"), nil, []remote.Call{call(functions.StringType.Of("x"))})
	if !errors.Is(err, remote.ErrCallTimeout) || remote.IsPermanent(err) {
		t.Fatalf("got %v, want ErrCallTimeout", err)
	}
	var re *remote.Error
	if !errors.As(err, &re) || re.Status != 500 || re.Attempts < 2 {
		t.Fatalf("got %#v, want status 500 after retries", re)
	}
	if !strings.Contains(err.Error(), "boom in the function") {
		t.Errorf("error %q lacks the function's message", err)
	}
	if n := len(srv.recorded()); n != re.Attempts {
		t.Errorf("server saw %d requests, error says %d attempts", n, re.Attempts)
	}
}

// TestSDKAbsentVersusEmpty: the SDK tells an absent value (sent unset)
// from a present one of zero bytes (an int 0, sent with has_value), and
// setting an int to 0 comes back as a MODIFY with zero bytes, not as a
// deletion: a runtime must store it as present.
func TestSDKAbsentVersusEmpty(t *testing.T) {
	count := statefun.ValueSpec{Name: "count", ValueType: statefun.Int32Type}
	fn := func(ctx statefun.Context, _ statefun.Message) error {
		var v int32
		seen := "absent"
		if ctx.Storage().Get(count, &v) {
			seen = fmt.Sprintf("present %d", v)
		}
		ctx.Storage().Set(count, int32(0))
		ctx.Send(statefun.MessageBuilder{Target: ctx.Self(), Value: seen})
		return nil
	}
	srv := newSDKServer(t, statefun.StatefulFunctionSpec{FunctionType: statefun.TypeNameFrom("example/probe"),
		States: []statefun.ValueSpec{count}, Function: statefun.StatefulFunctionPointer(fn)})
	c := newClient(t, remote.Config{URL: srv.URL + "/{function.name}"})
	ctx := ctxTimeout(t, 10*time.Second)
	probe := addr("example/probe", "p")
	for _, tc := range []struct {
		state map[string]driver.StoredValue
		want  string
	}{
		{nil, "absent"},
		{map[string]driver.StoredValue{"count": {TypeName: "io.statefun.types/int"}}, "present 0"},
		{map[string]driver.StoredValue{"count": {TypeName: "io.statefun.types/int", Value: mustEncode(functions.IntType, 7)}}, "present 7"},
	} {
		res, err := c.Invoke(ctx, probe, tc.state, []remote.Call{call(functions.StringType.Of("x"))})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustAs(t, functions.StringType, res.Messages[0].Message); got != tc.want {
			t.Errorf("function saw %q, want %q", got, tc.want)
		}
		if len(res.State) != 1 || res.State[0].Deleted || len(res.State[0].Value.Value) != 0 {
			t.Errorf("state changes %+v, want count modified to zero bytes", res.State)
		}
	}
}

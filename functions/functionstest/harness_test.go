package functionstest_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/functions/functionstest"
	"github.com/stateloop/stateloop/topology"
)

var (
	counterType = functions.TypeName("test/counter")
	remote      = functions.Address{Type: "test/remote", ID: "r"} // not registered
	out         = functions.TypeName("test/out")

	count = functions.NewState("count", functions.LongType)
	label = functions.NewState("label", functions.StringType)
)

// cmpMessages compares Messages by type name and bytes.
var cmpMessages = cmp.Comparer(func(a, b functions.Message) bool {
	return a.TypeName() == b.TypeName() && string(a.Bytes()) == string(b.Bytes())
})

// counter adds the long it receives to count, tells remote the new total
// and writes it to egress out. A negative number fails the invocation
// after recording all of that.
func counter(ctx functions.Context, n int64) error {
	c, _ := count.Get(ctx)
	count.Set(ctx, c+n)
	ctx.Send(remote, functions.LongType.Of(c+n))
	ctx.SendEgress(out, functions.LongType.Of(c+n))
	if n < 0 {
		return errors.New("negative")
	}
	return nil
}

func newCounter(t *testing.T) *functionstest.Harness {
	t.Helper()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{
		Type:     counterType,
		Function: functions.Router(functions.Handle(functions.LongType, counter)),
		State:    []functions.StateSpec{count, label},
		Egresses: []functions.TypeName{out},
	})
	return functionstest.New(reg)
}

func addr(id string) functions.Address { return functions.Address{Type: counterType, ID: id} }

// TestInvoke checks that Invoke applies state changes and returns and
// records the effects of each invocation.
func TestInvoke(t *testing.T) {
	h := newCounter(t)
	a := addr("a")
	for i, n := range []int64{2, 3} {
		res, err := h.Invoke(a, functions.LongType.Of(n))
		if err != nil {
			t.Fatalf("Invoke %d: %v", i, err)
		}
		total := []int64{2, 5}[i]
		want := &functionstest.Result{
			Messages: []functions.OutgoingMessage{{To: remote, Message: functions.LongType.Of(total)}},
			Egress:   []functions.EgressMessage{{Egress: out, Message: functions.LongType.Of(total)}},
			State:    []driver.StateChange{{Name: "count", Value: driver.StoredValue{TypeName: functions.LongType.Name(), Value: functions.LongType.Of(total).Bytes()}}},
		}
		if diff := cmp.Diff(want, res, cmpMessages); diff != "" {
			t.Errorf("Invoke %d: Result (-want +got):\n%s", i, diff)
		}
	}
	if got, ok := functionstest.StateOf(h, a, count); !ok || got != 5 {
		t.Errorf("StateOf count: got %d, %v, want 5, true", got, ok)
	}
	if got, ok := functionstest.StateOf(h, a, label); ok {
		t.Errorf("StateOf label: got %q, true, want unset", got)
	}
	wantSent := []functions.OutgoingMessage{{To: remote, Message: functions.LongType.Of(2)}, {To: remote, Message: functions.LongType.Of(5)}}
	if diff := cmp.Diff(wantSent, h.Sent(), cmpMessages); diff != "" {
		t.Errorf("Sent (-want +got):\n%s", diff)
	}
	wantEgress := []functions.EgressMessage{{Egress: out, Message: functions.LongType.Of(2)}, {Egress: out, Message: functions.LongType.Of(5)}}
	if diff := cmp.Diff(wantEgress, h.Egress(), cmpMessages); diff != "" {
		t.Errorf("Egress (-want +got):\n%s", diff)
	}
}

// TestInvokeStatePerAddress checks that each address has its own state.
func TestInvokeStatePerAddress(t *testing.T) {
	h := newCounter(t)
	for _, id := range []string{"a", "b", "a"} {
		if _, err := h.Invoke(addr(id), functions.LongType.Of(1)); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]int64{"a": 2, "b": 1} {
		if got, _ := functionstest.StateOf(h, addr(id), count); got != want {
			t.Errorf("StateOf %s: got %d, want %d", id, got, want)
		}
	}
}

// TestInvokeErrorChangesNothing checks that a failed invocation leaves
// state and recordings as they were, as the runtime drops its effects.
func TestInvokeErrorChangesNothing(t *testing.T) {
	h := newCounter(t)
	a := addr("a")
	if _, err := h.Invoke(a, functions.LongType.Of(2)); err != nil {
		t.Fatal(err)
	}
	res, err := h.Invoke(a, functions.LongType.Of(-1))
	var ie *functions.InvocationError
	if !errors.As(err, &ie) || res != nil {
		t.Fatalf("Invoke(-1): got %v, %v, want nil, an *InvocationError", res, err)
	}
	if got, _ := functionstest.StateOf(h, a, count); got != 2 {
		t.Errorf("StateOf count after the failure: got %d, want 2", got)
	}
	if len(h.Sent()) != 1 || len(h.Egress()) != 1 {
		t.Errorf("after the failure: got %d sent, %d egress, want 1, 1 (from the first invocation)", len(h.Sent()), len(h.Egress()))
	}
}

func TestInvokeErrors(t *testing.T) {
	tests := []struct {
		name   string
		to     functions.Address
		msg    functions.Message
		wantIs error
		want   string
	}{
		{"unregistered type", remote, functions.LongType.Of(1), functions.ErrUnknownFunction, "unknown function type"},
		{"empty id", functions.Address{Type: counterType}, functions.LongType.Of(1), nil, "empty id"},
		{"invalid type", functions.Address{Type: "bad", ID: "x"}, functions.LongType.Of(1), functions.ErrInvalidTypeName, "invalid type name"},
		{"message that failed to encode", addr("a"), functions.NewType("test/bad", failing{}).Of(1), errEncode, "message"},
		{"message without a type", addr("a"), functions.Message{}, functions.ErrInvalidTypeName, "message"},
		{"unhandled message type", addr("a"), functions.StringType.Of("x"), functions.ErrUnhandledType, "unhandled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newCounter(t)
			res, err := h.Invoke(tt.to, tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Errorf("Invoke: got %v, %v, want an error containing %q (wrapping %v)", res, err, tt.want, tt.wantIs)
			}
			if len(h.Sent())+len(h.Egress()) != 0 {
				t.Errorf("recorded %v, %v, want nothing", h.Sent(), h.Egress())
			}
		})
	}
}

var errEncode = errors.New("cannot encode")

type failing struct{}

func (failing) Encode(int) ([]byte, error) { return nil, errEncode }
func (failing) Decode([]byte) (int, error) { return 0, nil }

// TestInvokeFrom checks that the invoked function sees the caller, and that
// Invoke has none.
func TestInvokeFrom(t *testing.T) {
	type seen struct {
		caller functions.Address
		ok     bool
	}
	var got []seen
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/f", Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
		c, ok := ctx.Caller()
		got = append(got, seen{c, ok})
		return nil
	})})
	h := functionstest.New(reg)
	f := functions.Address{Type: "test/f", ID: "1"}
	if _, err := h.Invoke(f, functions.StringType.Of("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.InvokeFrom(remote, f, functions.StringType.Of("x")); err != nil {
		t.Fatal(err)
	}
	if want := []seen{{}, {remote, true}}; !cmp.Equal(want, got, cmp.AllowUnexported(seen{})) {
		t.Errorf("callers: got %+v, want %+v", got, want)
	}
	if _, err := h.InvokeFrom(functions.Address{}, f, functions.StringType.Of("x")); err == nil {
		t.Errorf("InvokeFrom with an invalid caller: got nil error, want one")
	}
}

// TestReplyWithoutACallerIsDropped: the harness shows a reply that the
// runtime drops (the message had no caller) in Result.DroppedReplies, and
// records it nowhere else.
func TestReplyWithoutACallerIsDropped(t *testing.T) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/f", Function: functions.FunctionFunc(func(ctx functions.Context, m functions.Message) error {
		ctx.Reply(m)
		return nil
	})})
	h := functionstest.New(reg)
	f := functions.Address{Type: "test/f", ID: "1"}
	res, err := h.Invoke(f, functions.StringType.Of("x"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]functions.Message{functions.StringType.Of("x")}, res.DroppedReplies, cmpMessages); diff != "" || len(res.Messages) != 0 || len(h.Sent()) != 0 {
		t.Errorf("got messages %v, sent %v, dropped replies diff (-want +got):\n%s", res.Messages, h.Sent(), diff)
	}
	res, err = h.InvokeFrom(remote, f, functions.StringType.Of("y"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DroppedReplies) != 0 || len(res.Messages) != 1 || res.Messages[0].To != remote {
		t.Errorf("with a caller: got messages %v, dropped replies %v; want one message to %s", res.Messages, res.DroppedReplies, remote)
	}
}

// TestReset checks that Reset forgets recorded messages but keeps state.
func TestReset(t *testing.T) {
	h := newCounter(t)
	if _, err := h.Invoke(addr("a"), functions.LongType.Of(4)); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	if len(h.Sent()) != 0 || len(h.Egress()) != 0 {
		t.Errorf("after Reset: got %v, %v, want nothing recorded", h.Sent(), h.Egress())
	}
	if got, _ := functionstest.StateOf(h, addr("a"), count); got != 4 {
		t.Errorf("StateOf after Reset: got %d, want 4", got)
	}
}

// TestSentIsACopy checks that changing a returned slice does not change
// the harness's record.
func TestSentIsACopy(t *testing.T) {
	h := newCounter(t)
	if _, err := h.Invoke(addr("a"), functions.LongType.Of(4)); err != nil {
		t.Fatal(err)
	}
	h.Sent()[0].To = functions.Address{}
	h.Egress()[0].Egress = ""
	if h.Sent()[0].To != remote || h.Egress()[0].Egress != out {
		t.Errorf("after changing the returned slices: got %v, %v, want them unchanged", h.Sent()[0].To, h.Egress()[0].Egress)
	}
}

func TestSetState(t *testing.T) {
	h := newCounter(t)
	a := addr("a")
	if err := functionstest.SetState(h, a, count, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Invoke(a, functions.LongType.Of(2)); err != nil {
		t.Fatal(err)
	}
	if got, _ := functionstest.StateOf(h, a, count); got != 42 {
		t.Errorf("StateOf after SetState(40) and adding 2: got %d, want 42", got)
	}
	if got, _ := functionstest.StateOf(h, addr("b"), count); got != 0 {
		t.Errorf("StateOf of another address: got %d, want 0", got)
	}
}

func TestSetStateErrors(t *testing.T) {
	tests := []struct {
		name   string
		set    func(h *functionstest.Harness) error
		wantIs error
	}{
		{"unregistered type", func(h *functionstest.Harness) error { return functionstest.SetState(h, remote, count, 1) }, functions.ErrUnknownFunction},
		{"invalid address", func(h *functionstest.Harness) error {
			return functionstest.SetState(h, functions.Address{Type: counterType}, count, 1)
		}, nil},
		{"undeclared state", func(h *functionstest.Harness) error {
			return functionstest.SetState(h, addr("a"), functions.NewState("other", functions.LongType), 1)
		}, functions.ErrUndeclaredState},
		{"declared with another type", func(h *functionstest.Harness) error {
			return functionstest.SetState(h, addr("a"), functions.NewState("count", functions.IntType), 1)
		}, functions.ErrUndeclaredState},
		{"value does not encode", func(h *functionstest.Harness) error {
			return functionstest.SetState(h, addr("a"), functions.NewState("label", functions.StringType), "\xff")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newCounter(t)
			err := tt.set(h)
			if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Errorf("SetState: got %v, want an error (wrapping %v)", err, tt.wantIs)
			}
			if _, ok := functionstest.StateOf(h, addr("a"), count); ok {
				t.Errorf("StateOf after a failed SetState: got set, want unset")
			}
		})
	}
}

// TestStateOfPanicsOnAnotherType checks that reading a state with another
// declaration than the function's is reported, not silently unset.
func TestStateOfPanicsOnAnotherType(t *testing.T) {
	h := newCounter(t)
	if err := functionstest.SetState(h, addr("a"), count, 1); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "stored with type io.statefun.types/long") {
			t.Errorf("StateOf with another type: got panic %v, want one naming the stored type", p)
		}
	}()
	functionstest.StateOf(h, addr("a"), functions.NewState("count", functions.StringType))
}

// TestStateIsCopied checks that stored state behaves like the runtime's:
// a function that changes its decoded value in place without Set does not
// change what is stored.
func TestStateIsCopied(t *testing.T) {
	raw := functions.NewState("raw", functions.NewType("test/raw", codec.Bytes()))
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/raw", State: []functions.StateSpec{raw}, Function: functions.FunctionFunc(
		func(ctx functions.Context, _ functions.Message) error {
			if b, ok := raw.Get(ctx); ok {
				b[0] = 'X' // not Set: must not stick
			}
			return nil
		})})
	h := functionstest.New(reg)
	a := functions.Address{Type: "test/raw", ID: "1"}
	v := []byte("abc")
	if err := functionstest.SetState(h, a, raw, v); err != nil {
		t.Fatal(err)
	}
	v[1] = 'Y' // nor may the caller's slice
	if _, err := h.Invoke(a, functions.StringType.Of("x")); err != nil {
		t.Fatal(err)
	}
	if got, _ := functionstest.StateOf(h, a, raw); string(got) != "abc" {
		t.Errorf("StateOf: got %q, want %q", got, "abc")
	}
}

// pingPong registers test/ping and test/pong. Each receives a long n,
// counts its invocations in state, and if n > 0 sends n-1 to the other, with
// the same ID; ping also tells remote when n reaches 0. hops records
// "caller->self:n" for every invocation.
func pingPong(t *testing.T, hops *[]string) *functionstest.Harness {
	t.Helper()
	reg := functions.NewRegistry()
	for _, pair := range [][2]functions.TypeName{{"test/ping", "test/pong"}, {"test/pong", "test/ping"}} {
		self, peer := pair[0], pair[1]
		reg.MustRegister(functions.Spec{
			Type:     self,
			State:    []functions.StateSpec{count},
			Egresses: []functions.TypeName{out},
			Function: functions.Router(functions.Handle(functions.LongType, func(ctx functions.Context, n int64) error {
				from := "ingress"
				if c, ok := ctx.Caller(); ok {
					from = c.Type.Name()
				}
				*hops = append(*hops, fmt.Sprintf("%s->%s:%d", from, ctx.Self().Type.Name(), n))
				c, _ := count.Get(ctx)
				count.Set(ctx, c+1)
				if n > 0 {
					ctx.Send(functions.Address{Type: peer, ID: ctx.Self().ID}, functions.LongType.Of(n-1))
				} else if self == "test/ping" {
					ctx.Send(remote, functions.StringType.Of("done"))
					ctx.SendEgress(out, functions.StringType.Of("done"))
				}
				if n < 0 {
					return errors.New("negative")
				}
				return nil
			})),
		})
	}
	return functionstest.New(reg)
}

// TestRunCycle checks that Run delivers messages between functions, A to B
// and back, with the sender as caller, until they stop; and that only the
// message to an unregistered type stays in Sent.
func TestRunCycle(t *testing.T) {
	var hops []string
	h := pingPong(t, &hops)
	ping := functions.Address{Type: "test/ping", ID: "x"}
	if err := h.Run(ping, functions.LongType.Of(4), 10); err != nil {
		t.Fatal(err)
	}
	want := []string{"ingress->ping:4", "ping->pong:3", "pong->ping:2", "ping->pong:1", "pong->ping:0"}
	if diff := cmp.Diff(want, hops); diff != "" {
		t.Errorf("invocations (-want +got):\n%s", diff)
	}
	if n, _ := functionstest.StateOf(h, ping, count); n != 3 {
		t.Errorf("ping count: got %d, want 3", n)
	}
	if n, _ := functionstest.StateOf(h, functions.Address{Type: "test/pong", ID: "x"}, count); n != 2 {
		t.Errorf("pong count: got %d, want 2", n)
	}
	wantSent := []functions.OutgoingMessage{{To: remote, Message: functions.StringType.Of("done")}}
	if diff := cmp.Diff(wantSent, h.Sent(), cmpMessages); diff != "" {
		t.Errorf("Sent (-want +got):\n%s", diff)
	}
	if len(h.Egress()) != 1 {
		t.Errorf("Egress: got %d records, want 1", len(h.Egress()))
	}
}

// TestRunBreadthFirst checks the delivery order: every message of one
// invocation before the messages those cause.
func TestRunBreadthFirst(t *testing.T) {
	var order []string
	tree := map[string][]string{"root": {"a", "b"}, "a": {"a1", "a2"}, "b": {"b1"}}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/tree", Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
		order = append(order, ctx.Self().ID)
		for _, child := range tree[ctx.Self().ID] {
			ctx.Send(functions.Address{Type: "test/tree", ID: child}, functions.StringType.Of(""))
		}
		return nil
	})})
	h := functionstest.New(reg)
	if err := h.Run(functions.Address{Type: "test/tree", ID: "root"}, functions.StringType.Of(""), 10); err != nil {
		t.Fatal(err)
	}
	if want := []string{"root", "a", "b", "a1", "a2", "b1"}; !cmp.Equal(want, order) {
		t.Errorf("order: got %v, want %v", order, want)
	}
	if len(h.Sent()) != 0 {
		t.Errorf("Sent: got %v, want nothing: every message was delivered", h.Sent())
	}
}

// TestRunMaxInvocations checks that Run stops a conversation that goes on
// too long, after exactly maxInvocations invocations, and keeps the
// undelivered message in Sent.
func TestRunMaxInvocations(t *testing.T) {
	var hops []string
	h := pingPong(t, &hops)
	err := h.Run(functions.Address{Type: "test/ping", ID: "x"}, functions.LongType.Of(100), 3)
	if !errors.Is(err, functionstest.ErrTooManyInvocations) {
		t.Fatalf("Run: got %v, want ErrTooManyInvocations", err)
	}
	if len(hops) != 3 {
		t.Errorf("invocations: got %v, want 3", hops)
	}
	wantSent := []functions.OutgoingMessage{{To: functions.Address{Type: "test/pong", ID: "x"}, Message: functions.LongType.Of(97)}}
	if diff := cmp.Diff(wantSent, h.Sent(), cmpMessages); diff != "" {
		t.Errorf("Sent (-want +got):\n%s", diff)
	}
	if err := h.Run(functions.Address{Type: "test/ping", ID: "y"}, functions.LongType.Of(0), 1); err != nil {
		t.Errorf("Run with exactly enough invocations: got %v, want nil", err)
	}
	if err := h.Run(functions.Address{Type: "test/ping", ID: "y"}, functions.LongType.Of(0), 0); err == nil {
		t.Errorf("Run with maxInvocations 0: got nil, want an error")
	}
}

// TestRunFirstInvocationFails checks that Run returns the error of its
// first invocation as Invoke would, with nothing applied.
func TestRunFirstInvocationFails(t *testing.T) {
	var hops []string
	h := pingPong(t, &hops)
	pong := functions.Address{Type: "test/pong", ID: "x"}
	err := h.Run(pong, functions.LongType.Of(-1), 10)
	var ie *functions.InvocationError
	if !errors.As(err, &ie) || ie.Address != pong {
		t.Fatalf("Run: got %v, want the *InvocationError of %s", err, pong)
	}
	if _, ok := functionstest.StateOf(h, pong, count); ok {
		t.Errorf("pong count after its failure: got set, want unset")
	}
	if len(h.Sent())+len(h.Egress()) != 0 {
		t.Errorf("recorded %v, %v, want nothing", h.Sent(), h.Egress())
	}
}

// TestRunErrorInTheMiddle checks that a failure deep in a conversation
// keeps the effects of the invocations before it, and reports which one
// failed.
func TestRunErrorInTheMiddle(t *testing.T) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/a", State: []functions.StateSpec{count}, Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
		count.Set(ctx, 1)
		ctx.Send(functions.Address{Type: "test/b", ID: "1"}, functions.StringType.Of("go"))
		ctx.Send(functions.Address{Type: "test/c", ID: "1"}, functions.StringType.Of("never delivered"))
		return nil
	})})
	reg.MustRegister(functions.Spec{Type: "test/b", State: []functions.StateSpec{count}, Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
		count.Set(ctx, 1)
		return errors.New("b fails")
	})})
	reg.MustRegister(functions.Spec{Type: "test/c", Function: functions.FunctionFunc(func(functions.Context, functions.Message) error {
		t.Errorf("test/c was invoked after test/b failed")
		return nil
	})})
	h := functionstest.New(reg)
	err := h.Run(functions.Address{Type: "test/a", ID: "1"}, functions.StringType.Of("start"), 10)
	if err == nil || !strings.Contains(err.Error(), "b fails") || !strings.Contains(err.Error(), "from test/a/1") {
		t.Fatalf("Run: got %v, want b's error, saying who sent the message", err)
	}
	if n, _ := functionstest.StateOf(h, functions.Address{Type: "test/a", ID: "1"}, count); n != 1 {
		t.Errorf("a's count: got %d, want 1 (a succeeded)", n)
	}
	if _, ok := functionstest.StateOf(h, functions.Address{Type: "test/b", ID: "1"}, count); ok {
		t.Errorf("b's count: got set, want unset (b failed)")
	}
	wantSent := []functions.OutgoingMessage{{To: functions.Address{Type: "test/c", ID: "1"}, Message: functions.StringType.Of("never delivered")}}
	if diff := cmp.Diff(wantSent, h.Sent(), cmpMessages); diff != "" {
		t.Errorf("Sent (-want +got):\n%s", diff)
	}
}

// TestKafkaEgress checks the egress records of a function that writes to
// a Kafka egress, decoded with KafkaRecordType.
func TestKafkaEgress(t *testing.T) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/greeter", Egresses: []functions.TypeName{"test/greetings"}, Function: functions.Router(functions.Handle(functions.StringType,
		func(ctx functions.Context, name string) error {
			ctx.SendEgress("test/greetings", functions.KafkaMessage("greetings", name, []byte("Hello "+name+"!")))
			return nil
		}))})
	h := functionstest.New(reg)
	for _, name := range []string{"Bob", "Alice"} {
		if _, err := h.Invoke(functions.Address{Type: "test/greeter", ID: name}, functions.StringType.Of(name)); err != nil {
			t.Fatal(err)
		}
	}
	var got []functions.KafkaRecord
	for _, e := range h.Egress() {
		if e.Egress != "test/greetings" {
			t.Errorf("egress: got %s, want test/greetings", e.Egress)
		}
		rec, err := functions.KafkaRecordType.As(e.Message)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	want := []functions.KafkaRecord{
		{Topic: "greetings", Key: "Bob", Value: []byte("Hello Bob!")},
		{Topic: "greetings", Key: "Alice", Value: []byte("Hello Alice!")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

// TestConcurrentUse invokes from many goroutines, for the race detector.
func TestConcurrentUse(t *testing.T) {
	h := newCounter(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			a := addr(fmt.Sprint(i))
			for range 10 {
				if _, err := h.Invoke(a, functions.LongType.Of(1)); err != nil {
					t.Error(err)
				}
			}
			_ = h.Sent()
			_, _ = functionstest.StateOf(h, a, count)
		})
	}
	wg.Wait()
	for i := range 8 {
		if n, _ := functionstest.StateOf(h, addr(fmt.Sprint(i)), count); n != 10 {
			t.Errorf("count of %d: got %d, want 10", i, n)
		}
	}
	if got := len(h.Sent()); got != 80 {
		t.Errorf("Sent: got %d messages, want 80", got)
	}
}

func TestNewNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("New(nil): got no panic, want one")
		}
	}()
	functionstest.New(nil)
}

// TestHarnessRejectsAnUndeclaredEgress: regression for issue 10 item 13,
// the harness accepted SendEgress to an egress the function's Spec does
// not declare, which the runtime dead-letters.
func TestHarnessRejectsAnUndeclaredEgress(t *testing.T) {
	t.Parallel()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/sender", Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
		ctx.SendEgress("test/undeclared", functions.StringType.Of("x"))
		return nil
	})})
	h := functionstest.New(reg)
	if _, err := h.Invoke(functions.Address{Type: "test/sender", ID: "a"}, functions.StringType.Of("m")); err == nil || !strings.Contains(err.Error(), "undeclared egress test/undeclared") {
		t.Errorf("Invoke: got %v, want an error about the undeclared egress", err)
	}
	if len(h.Egress()) != 0 {
		t.Errorf("Egress: got %v, want nothing recorded", h.Egress())
	}
}

// TestNewWithTopologyChecksTheRegistry: regression for issue 10 item 13,
// the harness could not tell that a function sends to an egress the
// application does not have, or that a registered type is missing from
// the topology; both only failed in the runtime. With WithTopology, New
// checks them as processor.New does and panics listing each problem.
func TestNewWithTopologyChecksTheRegistry(t *testing.T) {
	t.Parallel()
	nop := functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil })
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/sender", Function: nop, Egresses: []functions.TypeName{"test/out", "test/missing"}})
	reg.MustRegister(functions.Spec{Type: "test/forgotten", Function: nop})
	topo := topology.Topology{
		App:       "app",
		Functions: []functions.TypeName{"test/sender"},
		Egresses:  []topology.Egress{{ID: "test/out", Topics: []topology.Topic{"out"}}},
	}
	got := func() (p any) {
		defer func() { p = recover() }()
		functionstest.New(reg, functionstest.WithTopology(topo))
		return nil
	}()
	err, ok := got.(error)
	if !ok {
		t.Fatalf("New with a registry that does not match the topology: got panic %v, want an error", got)
	}
	for _, want := range []string{
		"functionstest: New: ",
		"function type test/sender declares egress test/missing, which the topology does not have",
		"function type test/forgotten is registered but not in the topology",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: got %q, want it to contain %q", err, want)
		}
	}

	// a matching registry passes, and sends to the declared egress
	reg = functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/sender", Egresses: []functions.TypeName{"test/out"},
		Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
			ctx.SendEgress("test/out", functions.StringType.Of("x"))
			return nil
		})})
	h := functionstest.New(reg, functionstest.WithTopology(topo))
	if _, err := h.Invoke(functions.Address{Type: "test/sender", ID: "a"}, functions.StringType.Of("m")); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if len(h.Egress()) != 1 {
		t.Errorf("Egress: got %v, want one record", h.Egress())
	}
}

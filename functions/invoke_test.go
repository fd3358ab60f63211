package functions_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
)

var (
	self   = functions.Address{Type: "test/f", ID: "me"}
	other  = functions.Address{Type: "test/g", ID: "you"}
	egress = functions.TypeName("test/out")

	countState = functions.NewState("count", functions.LongType)
	nameState  = functions.NewState("name", functions.StringType)
	failState  = functions.NewState("fails", failingType)
)

// cmpMessages compares Messages by type name and bytes.
var cmpMessages = cmp.Comparer(func(a, b functions.Message) bool {
	return a.TypeName() == b.TypeName() && bytes.Equal(a.Bytes(), b.Bytes()) && errors.Is(a.Err(), b.Err())
})

// register returns a registry with fn as test/f, declaring count, name
// and fails (in that order), and the egress test/out.
func register(t testing.TB, fn functions.FunctionFunc) *functions.Registry {
	t.Helper()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: self.Type, Function: fn, State: []functions.StateSpec{countState, nameState, failState},
		Egresses: []functions.TypeName{egress}})
	return reg
}

func invoke(reg *functions.Registry, state map[string]driver.StoredValue) (driver.Effects, error) {
	return driver.Invoke(context.Background(), reg, driver.Invocation{Target: self, Message: functions.StringType.Of("hi"), State: state})
}

func stored[T any](t functions.Type[T], v T) driver.StoredValue {
	m := t.Of(v)
	return driver.StoredValue{TypeName: m.TypeName(), Value: m.Bytes()}
}

// TestInvokeEffects checks that a successful invocation returns every
// recorded effect, in the order recorded.
func TestInvokeEffects(t *testing.T) {
	reg := register(t, func(ctx functions.Context, msg functions.Message) error {
		ctx.Send(other, functions.StringType.Of("one"))
		ctx.SendEgress(egress, functions.KafkaMessage("topic", "k", []byte("v")))
		ctx.Send(ctx.Self(), functions.LongType.Of(2))
		nameState.Set(ctx, "Bob")
		countState.Set(ctx, 5)
		return nil
	})
	got, err := invoke(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := driver.Effects{
		// Declaration order (count, name), not the order of the Set calls.
		State: []driver.StateChange{
			{Name: "count", Value: driver.StoredValue{TypeName: "io.statefun.types/long", Value: []byte{0x09, 5, 0, 0, 0, 0, 0, 0, 0}}},
			{Name: "name", Value: driver.StoredValue{TypeName: "io.statefun.types/string", Value: []byte{0x0a, 3, 'B', 'o', 'b'}}},
		},
		Messages: []functions.OutgoingMessage{
			{To: other, Message: functions.StringType.Of("one")},
			{To: self, Message: functions.LongType.Of(2)},
		},
		Egress: []functions.EgressMessage{{Egress: egress, Message: functions.KafkaMessage("topic", "k", []byte("v"))}},
	}
	if diff := cmp.Diff(want, got, cmpMessages); diff != "" {
		t.Errorf("Effects (-want +got):\n%s", diff)
	}
}

// TestInvokeFunctionError checks that a returned error drops every effect
// and comes back as an *InvocationError wrapping it.
func TestInvokeFunctionError(t *testing.T) {
	boom := errors.New("boom")
	reg := register(t, func(ctx functions.Context, msg functions.Message) error {
		ctx.Send(other, functions.StringType.Of("one"))
		ctx.SendEgress(egress, functions.StringType.Of("two"))
		countState.Set(ctx, 5)
		return boom
	})
	effects, err := invoke(reg, nil)
	var ie *functions.InvocationError
	if !errors.As(err, &ie) || !errors.Is(err, boom) {
		t.Fatalf("Invoke: got %v, want an *InvocationError wrapping %v", err, boom)
	}
	if ie.Address != self || ie.Panic || ie.Stack != "" {
		t.Errorf("InvocationError: got address %v, panic %v, stack %q, want %v, false, \"\"", ie.Address, ie.Panic, ie.Stack, self)
	}
	if diff := cmp.Diff(driver.Effects{}, effects, cmpMessages, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Effects of a failed invocation (-want +got):\n%s", diff)
	}
}

func TestInvokeUnknownFunction(t *testing.T) {
	reg := functions.NewRegistry()
	_, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: other, Message: functions.StringType.Of("hi")})
	if !errors.Is(err, functions.ErrUnknownFunction) {
		t.Errorf("Invoke of an unregistered type: got %v, want ErrUnknownFunction", err)
	}
}

var errPanicValue = errors.New("panic value")

func panicError(ctx functions.Context, msg functions.Message) error {
	ctx.Send(other, functions.StringType.Of("lost"))
	panic(errPanicValue)
}

func panicString(functions.Context, functions.Message) error { panic("boom") }

func panicInt(functions.Context, functions.Message) error { panic(42) }

// panicIndex reads past the end of the message's bytes: a runtime error,
// as a nil map or pointer would cause.
func panicIndex(_ functions.Context, msg functions.Message) error {
	b := msg.Bytes()
	_ = b[len(b)]
	return nil
}

func panicInHandler(functions.Context, string) error { panic("in handler") }

// TestInvokePanic checks that a panic becomes an *InvocationError with
// Panic set, the panic value as Err, no effects, and a Stack whose first
// frame is the function that panicked.
func TestInvokePanic(t *testing.T) {
	tests := []struct {
		name      string
		fn        functions.Function
		wantFrame string // the function in the first frame
		check     func(err error) bool
	}{
		{"error value", functions.FunctionFunc(panicError), "functions_test.panicError(", func(err error) bool { return err == errPanicValue }},
		{"string value", functions.FunctionFunc(panicString), "functions_test.panicString(", func(err error) bool { return err.Error() == "boom" }},
		{"int value", functions.FunctionFunc(panicInt), "functions_test.panicInt(", func(err error) bool { return err.Error() == "42" }},
		{"runtime error", functions.FunctionFunc(panicIndex), "functions_test.panicIndex(", func(err error) bool {
			var re runtime.Error
			return errors.As(err, &re)
		}},
		{"in a Router handler", functions.Router(functions.Handle(functions.StringType, panicInHandler)), "functions_test.panicInHandler(", func(err error) bool { return err.Error() == "in handler" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := functions.NewRegistry()
			reg.MustRegister(functions.Spec{Type: self.Type, Function: tt.fn})
			effects, err := invoke(reg, nil)
			var ie *functions.InvocationError
			if !errors.As(err, &ie) {
				t.Fatalf("Invoke: got %v, want an *InvocationError", err)
			}
			if !ie.Panic || !tt.check(ie.Err) {
				t.Errorf("InvocationError: got Panic %v, Err %#v, want true and the panic value", ie.Panic, ie.Err)
			}
			if !strings.Contains(ie.Error(), "panic") {
				t.Errorf("Error(): got %q, want it to say panic", ie.Error())
			}
			lines := strings.Split(ie.Stack, "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[0], "goroutine ") || !strings.Contains(lines[1], tt.wantFrame) {
				t.Errorf("Stack: got\n%s\nwant a goroutine header and then a frame of %s", ie.Stack, tt.wantFrame)
			}
			if len(effects.Messages) != 0 {
				t.Errorf("Effects.Messages: got %v, want none", effects.Messages)
			}
		})
	}
}

// TestInvokeStickyErrors checks that an invalid effect fails the
// invocation even though the function returns nil, that the first one
// sticks, and that no effects are returned.
func TestInvokeStickyErrors(t *testing.T) {
	undeclared := functions.NewState("undeclared", functions.LongType)
	tests := []struct {
		name    string
		misuse  func(ctx functions.Context)
		wantErr string
		wantIs  error
	}{
		{"send to an invalid type", func(ctx functions.Context) {
			ctx.Send(functions.Address{Type: "bad", ID: "x"}, functions.StringType.Of("x"))
		}, "send to bad/x", functions.ErrInvalidTypeName},
		{"send to an empty id", func(ctx functions.Context) { ctx.Send(functions.Address{Type: "test/g"}, functions.StringType.Of("x")) }, "empty id", nil},
		{"send a message that failed to encode", func(ctx functions.Context) { ctx.Send(other, failingType.Of("x")) }, "encode test/failing", errEncode},
		{"send a zero message", func(ctx functions.Context) { ctx.Send(other, functions.Message{}) }, "no valid type name", nil},
		{"send a message with a bad type name", func(ctx functions.Context) { ctx.Send(other, functions.NewMessage("bad", nil)) }, "no valid type name", nil},
		{"egress with an invalid name", func(ctx functions.Context) { ctx.SendEgress("bad", functions.StringType.Of("x")) }, "send to egress", functions.ErrInvalidTypeName},
		{"egress a message that failed to encode", func(ctx functions.Context) { ctx.SendEgress(egress, failingType.Of("x")) }, "send to egress test/out", errEncode},
		{"egress not declared", func(ctx functions.Context) { ctx.SendEgress("test/other", functions.StringType.Of("x")) }, "undeclared egress test/other", functions.ErrUndeclaredEgress},
		{"get undeclared state", func(ctx functions.Context) { undeclared.Get(ctx) }, `"undeclared"`, functions.ErrUndeclaredState},
		{"set undeclared state", func(ctx functions.Context) { undeclared.Set(ctx, 1) }, `"undeclared"`, functions.ErrUndeclaredState},
		{"clear undeclared state", func(ctx functions.Context) { undeclared.Clear(ctx) }, `"undeclared"`, functions.ErrUndeclaredState},
		{"set state that fails to encode", func(ctx functions.Context) { failState.Set(ctx, "x") }, `encode state "fails"`, errEncode},
		{"get declared state name with another type", func(ctx functions.Context) { functions.NewState("count", functions.StringType).Get(ctx) }, `"count"`, functions.ErrUndeclaredState},
		{"set declared state name with another type", func(ctx functions.Context) { functions.NewState("count", functions.StringType).Set(ctx, "x") }, `"count"`, functions.ErrUndeclaredState},
		{"clear declared state name with another type", func(ctx functions.Context) { functions.NewState("count", functions.StringType).Clear(ctx) }, `"count"`, functions.ErrUndeclaredState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := register(t, func(ctx functions.Context, msg functions.Message) error {
				countState.Set(ctx, 1)
				ctx.Send(other, functions.StringType.Of("before"))
				tt.misuse(ctx)
				ctx.Send(other, functions.StringType.Of("after"))
				ctx.Send(functions.Address{}, functions.StringType.Of("second misuse"))
				return nil
			})
			effects, err := invoke(reg, map[string]driver.StoredValue{"count": stored(functions.LongType, 7)})
			var ie *functions.InvocationError
			if !errors.As(err, &ie) || ie.Panic {
				t.Fatalf("Invoke: got %v, want a non-panic *InvocationError", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "send to /:") {
				t.Errorf("Invoke: got %q, want the first misuse's error, containing %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Invoke: got %v, want it to wrap %v", err, tt.wantIs)
			}
			if len(effects.State)+len(effects.Messages)+len(effects.Egress) != 0 {
				t.Errorf("Effects: got %+v, want none", effects)
			}
		})
	}
}

// TestInvokeStateDecodedFirst checks that stored state that does not
// decode, or was stored with another type, fails the invocation with a
// *DecodeError before the function is called.
func TestInvokeStateDecodedFirst(t *testing.T) {
	tests := []struct {
		name      string
		state     map[string]driver.StoredValue
		wantState string
		wantType  functions.TypeName
		wantIs    error
	}{
		{"corrupt bytes", map[string]driver.StoredValue{"count": {TypeName: functions.LongType.Name(), Value: []byte{0x09, 1, 2}}}, "count", functions.LongType.Name(), codec.ErrCorrupt},
		{"wrong wire type", map[string]driver.StoredValue{"name": {TypeName: functions.StringType.Name(), Value: []byte{0x08, 1}}}, "name", functions.StringType.Name(), codec.ErrCorrupt},
		{"another type name", map[string]driver.StoredValue{"count": stored(functions.IntType, 5)}, "count", functions.IntType.Name(), nil},
		{"another type name with the same bytes", map[string]driver.StoredValue{"name": {TypeName: "test/other", Value: []byte{0x0a, 1, 'x'}}}, "name", "test/other", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called := false
			reg := register(t, func(functions.Context, functions.Message) error {
				called = true
				return nil
			})
			_, err := invoke(reg, tt.state)
			var de *functions.DecodeError
			var ie *functions.InvocationError
			if !errors.As(err, &de) || !errors.As(err, &ie) {
				t.Fatalf("Invoke: got %v, want a *DecodeError in an *InvocationError", err)
			}
			if de.State != tt.wantState || de.TypeName != tt.wantType {
				t.Errorf("DecodeError: got state %q, type %s, want %q, %s", de.State, de.TypeName, tt.wantState, tt.wantType)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Invoke: got %v, want it to wrap %v", err, tt.wantIs)
			}
			if !functions.IsPermanent(err) {
				t.Errorf("IsPermanent(%v): got false, want true", err)
			}
			if called {
				t.Errorf("the function was called, want it not called")
			}
		})
	}
}

// TestInvokeIgnoresUndeclaredStoredState checks that stored values of
// names the function does not declare (say, state removed from the Spec)
// do not fail the invocation and produce no change.
func TestInvokeIgnoresUndeclaredStoredState(t *testing.T) {
	reg := register(t, func(functions.Context, functions.Message) error { return nil })
	effects, err := invoke(reg, map[string]driver.StoredValue{"gone": {TypeName: "x/y", Value: []byte{0xff}}})
	if err != nil || len(effects.State) != 0 {
		t.Errorf("Invoke: got %+v, %v, want no state changes, nil", effects, err)
	}
}

// TestStateGetSetClear checks what a function sees of its state within one
// invocation, and the changes it produces.
func TestStateGetSetClear(t *testing.T) {
	type seen struct {
		Value int64
		OK    bool
	}
	var got []seen
	get := func(ctx functions.Context) {
		v, ok := countState.Get(ctx)
		got = append(got, seen{v, ok})
	}
	tests := []struct {
		name        string
		stored      map[string]driver.StoredValue
		fn          func(ctx functions.Context)
		wantSeen    []seen
		wantChanges []driver.StateChange
	}{
		{
			name:     "unset",
			fn:       get,
			wantSeen: []seen{{0, false}},
		},
		{
			name:     "stored value, untouched: no change",
			stored:   map[string]driver.StoredValue{"count": stored(functions.LongType, 7)},
			fn:       get,
			wantSeen: []seen{{7, true}},
		},
		{
			name:   "get after set sees the new value",
			stored: map[string]driver.StoredValue{"count": stored(functions.LongType, 7)},
			fn: func(ctx functions.Context) {
				get(ctx)
				countState.Set(ctx, 8)
				get(ctx)
			},
			wantSeen:    []seen{{7, true}, {8, true}},
			wantChanges: []driver.StateChange{{Name: "count", Value: stored(functions.LongType, 8)}},
		},
		{
			name:   "clear deletes",
			stored: map[string]driver.StoredValue{"count": stored(functions.LongType, 7)},
			fn: func(ctx functions.Context) {
				countState.Clear(ctx)
				get(ctx)
			},
			wantSeen:    []seen{{0, false}},
			wantChanges: []driver.StateChange{{Name: "count", Value: driver.StoredValue{TypeName: functions.LongType.Name()}, Deleted: true}},
		},
		{
			name: "set after clear is set",
			fn: func(ctx functions.Context) {
				countState.Clear(ctx)
				countState.Set(ctx, 1)
				get(ctx)
			},
			wantSeen:    []seen{{1, true}},
			wantChanges: []driver.StateChange{{Name: "count", Value: stored(functions.LongType, 1)}},
		},
		{
			name: "zero value is set, with no bytes",
			fn: func(ctx functions.Context) {
				countState.Set(ctx, 0)
				get(ctx)
			},
			wantSeen:    []seen{{0, true}},
			wantChanges: []driver.StateChange{{Name: "count", Value: driver.StoredValue{TypeName: functions.LongType.Name()}}},
		},
		{
			name: "changes in declaration order",
			fn: func(ctx functions.Context) {
				nameState.Set(ctx, "Bob")
				countState.Clear(ctx)
			},
			wantChanges: []driver.StateChange{
				{Name: "count", Value: driver.StoredValue{TypeName: functions.LongType.Name()}, Deleted: true},
				{Name: "name", Value: stored(functions.StringType, "Bob")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			reg := register(t, func(ctx functions.Context, msg functions.Message) error {
				tt.fn(ctx)
				return nil
			})
			effects, err := invoke(reg, tt.stored)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantSeen, got); diff != "" {
				t.Errorf("Get results (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantChanges, effects.State, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Effects.State (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStateOfInterfaceType checks that a state whose Go type is an
// interface can hold its zero value, nil.
func TestStateOfInterfaceType(t *testing.T) {
	anyState := functions.NewState("any", functions.NewType("test/any", codec.JSON[any]()))
	var gotV any
	var gotOK bool
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: self.Type, State: []functions.StateSpec{anyState}, Function: functions.FunctionFunc(
		func(ctx functions.Context, msg functions.Message) error {
			gotV, gotOK = anyState.Get(ctx)
			return nil
		})})
	_, err := invoke(reg, map[string]driver.StoredValue{"any": {TypeName: "test/any", Value: []byte("null")}})
	if err != nil || gotV != nil || !gotOK {
		t.Errorf("Get of a stored null: got %v, %v, invocation error %v, want nil, true, nil", gotV, gotOK, err)
	}
}

// TestInvokeDoesNotChangeInput checks that Invoke leaves the caller's
// stored state alone: the runtime applies the effects.
func TestInvokeDoesNotChangeInput(t *testing.T) {
	reg := register(t, func(ctx functions.Context, msg functions.Message) error {
		countState.Set(ctx, 8)
		nameState.Clear(ctx)
		return nil
	})
	state := map[string]driver.StoredValue{"count": stored(functions.LongType, 7), "name": stored(functions.StringType, "Bob")}
	want := map[string]driver.StoredValue{"count": stored(functions.LongType, 7), "name": stored(functions.StringType, "Bob")}
	if _, err := invoke(reg, state); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, state); diff != "" {
		t.Errorf("Invocation.State after Invoke (-want +got):\n%s", diff)
	}
}

func TestContextSelfAndCaller(t *testing.T) {
	type seen struct {
		Self      functions.Address
		Caller    functions.Address
		HasCaller bool
	}
	var got seen
	reg := register(t, func(ctx functions.Context, msg functions.Message) error {
		got.Self = ctx.Self()
		got.Caller, got.HasCaller = ctx.Caller()
		return nil
	})
	tests := []struct {
		name   string
		caller *functions.Address
		want   seen
	}{
		{"from an ingress", nil, seen{Self: self}},
		{"from a function", &other, seen{Self: self, Caller: other, HasCaller: true}},
	}
	for _, tt := range tests {
		got = seen{}
		if _, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: self, Caller: tt.caller, Message: functions.StringType.Of("x")}); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestContextIsTheInvokeContext checks that a Context carries the values
// and cancellation of the context passed to Invoke.
func TestContextIsTheInvokeContext(t *testing.T) {
	type key struct{}
	var gotValue any
	var gotErr error
	reg := register(t, func(ctx functions.Context, msg functions.Message) error {
		gotValue, gotErr = ctx.Value(key{}), ctx.Err()
		return nil
	})
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	cancel()
	if _, err := driver.Invoke(parent, reg, driver.Invocation{Target: self, Message: functions.StringType.Of("x")}); err != nil {
		t.Fatal(err)
	}
	if gotValue != "v" || !errors.Is(gotErr, context.Canceled) {
		t.Errorf("ctx.Value, ctx.Err: got %v, %v, want v, context.Canceled", gotValue, gotErr)
	}
}

func TestInvocationErrorMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&functions.InvocationError{Address: self, Err: errors.New("boom")}, "functions: invoke test/f/me: boom"},
		{&functions.InvocationError{Address: self, Err: errors.New("boom"), Panic: true}, "functions: invoke test/f/me: panic: boom"},
		{&functions.DecodeError{State: "count", TypeName: "a/b", Err: errors.New("bad")}, `functions: decode state "count" (a/b): bad`},
		{&functions.DecodeError{TypeName: "a/b", Err: errors.New("bad")}, "functions: decode message a/b: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error(): got %q, want %q", got, tt.want)
		}
	}
}

func BenchmarkInvoke(b *testing.B) {
	reg := register(b, func(ctx functions.Context, msg functions.Message) error {
		n, _ := countState.Get(ctx)
		countState.Set(ctx, n+1)
		ctx.Send(other, msg)
		return nil
	})
	inv := driver.Invocation{
		Target:  self,
		Message: functions.StringType.Of("hi"),
		State:   map[string]driver.StoredValue{"count": stored(functions.LongType, 41)},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := driver.Invoke(context.Background(), reg, inv); err != nil {
			b.Fatal(err)
		}
	}
}

// Misuse of the Context is deterministic, so the runtime must not retry it.
func TestInvokeAPIMisuseIsPermanent(t *testing.T) {
	t.Parallel()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/misuse", Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
		ctx.Send(functions.Address{Type: "test/other"}, functions.StringType.Of("x")) // empty id
		return nil
	})})
	_, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: functions.Address{Type: "test/misuse", ID: "a"}, Message: functions.StringType.Of("m")})
	if err == nil {
		t.Fatal("got nil error, want the send to an address without id to fail the invocation")
	}
	if !functions.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = false, want true", err)
	}
}

func TestRegisterRejectsExpiryWithoutTimeToLive(t *testing.T) {
	reg := functions.NewRegistry()
	err := reg.Register(functions.Spec{Type: "a/b", Function: functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil }),
		State: []functions.StateSpec{functions.NewState("x", functions.IntType).ExpireAfterWrite(0)}})
	if err == nil || !strings.Contains(err.Error(), `state "x" expires after-write 0s`) {
		t.Errorf("Register = %v, want an error about the time to live", err)
	}
}

// TestReplySendsToTheCallerAndIsDroppedWithoutOne: regression for issue
// 13 item 4, ctx.Reply failed the invocation of a message that has no
// caller (one from a Kafka ingress), so a function that answers whoever
// asks (an HTTP request with ?wait=, another function) could not also take
// the same message from Kafka. Nobody waits for that answer: the reply is
// dropped, as the reply to an HTTP request without ?wait= is, and the
// runtime is told in Effects.DroppedReplies, so it can log it.
func TestReplySendsToTheCallerAndIsDroppedWithoutOne(t *testing.T) {
	t.Parallel()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "a/echo", Function: functions.FunctionFunc(func(ctx functions.Context, m functions.Message) error {
		ctx.Reply(m)
		countState.Set(ctx, 1)
		return nil
	}), State: []functions.StateSpec{countState}})
	caller := functions.Address{Type: "a/asker", ID: "q"}
	msg := functions.StringType.Of("hi")
	eff, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: functions.Address{Type: "a/echo", ID: "1"}, Caller: &caller, Message: msg})
	if err != nil || len(eff.Messages) != 1 || eff.Messages[0].To != caller || len(eff.DroppedReplies) != 0 {
		t.Errorf("Reply with a caller: effects %+v, err %v; want one message to %s", eff, err, caller)
	}
	eff, err = driver.Invoke(context.Background(), reg, driver.Invocation{Target: functions.Address{Type: "a/echo", ID: "1"}, Message: msg})
	if err != nil {
		t.Fatalf("Reply without a caller: %v, want the invocation to succeed", err)
	}
	if len(eff.Messages) != 0 || len(eff.State) != 1 {
		t.Errorf("Reply without a caller: effects %+v, want no message and the state change", eff)
	}
	if diff := cmp.Diff([]functions.Message{msg}, eff.DroppedReplies, cmpMessages); diff != "" {
		t.Errorf("Reply without a caller: dropped replies (-want +got):\n%s", diff)
	}
}

// TestReplyOfAnInvalidMessageFailsWithOrWithoutACaller: a reply nobody
// receives is dropped, but a message that did not encode is still the
// function's mistake.
func TestReplyOfAnInvalidMessageFailsWithOrWithoutACaller(t *testing.T) {
	t.Parallel()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "a/echo", Function: functions.FunctionFunc(func(ctx functions.Context, m functions.Message) error {
		ctx.Reply(failingType.Of("x"))
		return nil
	})})
	caller := functions.Address{Type: "a/asker", ID: "q"}
	for _, c := range []*functions.Address{&caller, nil} {
		_, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: functions.Address{Type: "a/echo", ID: "1"}, Caller: c, Message: functions.StringType.Of("hi")})
		if err == nil || !functions.IsPermanent(err) {
			t.Errorf("caller %v: got %v, want a permanent error", c, err)
		}
	}
}

// TestSendEgressNeedsADeclaredEgress: regression for issue 10 item 13, a
// function could send to any egress; one the application does not have
// was only found when the runtime dead-lettered the message. Like state,
// the egresses a function sends to are declared in its Spec, and sending
// to another fails the invocation, permanently.
func TestSendEgressNeedsADeclaredEgress(t *testing.T) {
	t.Parallel()
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/sender", Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
		ctx.SendEgress("test/undeclared", functions.StringType.Of("x"))
		return nil
	})})
	effects, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: functions.Address{Type: "test/sender", ID: "a"}, Message: functions.StringType.Of("m")})
	if err == nil {
		t.Fatalf("got effects %+v and no error, want the send to an undeclared egress to fail the invocation", effects)
	}
	if want := `functions: invoke test/sender/a: functions: undeclared egress test/undeclared: declare it in the Spec of test/sender (Egresses)`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, functions.ErrUndeclaredEgress) {
		t.Errorf("got %v, want it to wrap ErrUndeclaredEgress", err)
	}
	if !functions.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = false, want true", err)
	}

	// declared, the same send succeeds
	reg = functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/sender", Egresses: []functions.TypeName{"test/undeclared"},
		Function: functions.FunctionFunc(func(ctx functions.Context, _ functions.Message) error {
			ctx.SendEgress("test/undeclared", functions.StringType.Of("x"))
			return nil
		})})
	effects, err = driver.Invoke(context.Background(), reg, driver.Invocation{Target: functions.Address{Type: "test/sender", ID: "a"}, Message: functions.StringType.Of("m")})
	if err != nil || len(effects.Egress) != 1 || effects.Egress[0].Egress != "test/undeclared" {
		t.Errorf("with the egress declared: got %+v, %v, want one egress record", effects, err)
	}
}

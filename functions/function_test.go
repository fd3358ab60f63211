package functions_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
)

var greetType = functions.NewType("test/greet", functions.StringType.Codec())

// TestRouter checks that a Router passes each message, decoded, to the
// handler of its type.
func TestRouter(t *testing.T) {
	var got []string
	r := functions.Router(
		functions.Handle(functions.StringType, func(ctx functions.Context, s string) error {
			got = append(got, "string:"+s)
			return nil
		}),
		functions.Handle(greetType, func(ctx functions.Context, s string) error {
			got = append(got, "greet:"+s)
			return nil
		}),
	)
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: self.Type, Function: r})
	for _, m := range []functions.Message{functions.StringType.Of("a"), greetType.Of("b")} {
		if _, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: self, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"string:a", "greet:b"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("handled: got %q, want %q", got, want)
	}
}

func TestRouterErrors(t *testing.T) {
	handlerErr := errors.New("handler failed")
	r := functions.Router(functions.Handle(functions.LongType, func(functions.Context, int64) error { return handlerErr }))
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: self.Type, Function: r})
	invoke := func(m functions.Message) error {
		_, err := driver.Invoke(context.Background(), reg, driver.Invocation{Target: self, Message: m})
		return err
	}

	err := invoke(functions.StringType.Of("x"))
	if !errors.Is(err, functions.ErrUnhandledType) || !functions.IsPermanent(err) {
		t.Errorf("unhandled type: got %v, want a permanent ErrUnhandledType", err)
	}

	err = invoke(functions.NewMessage(functions.LongType.Name(), []byte{0x09, 1}))
	var de *functions.DecodeError
	if !errors.As(err, &de) || de.State != "" || de.TypeName != functions.LongType.Name() {
		t.Errorf("undecodable message: got %v, want a *DecodeError of the message", err)
	}

	if err := invoke(functions.LongType.Of(1)); !errors.Is(err, handlerErr) {
		t.Errorf("handler error: got %v, want it to wrap %v", err, handlerErr)
	}
}

func TestRouterDuplicateHandlerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("Router with two handlers for one type: got no panic, want one")
		}
	}()
	h := functions.Handle(functions.LongType, func(functions.Context, int64) error { return nil })
	functions.Router(h, h)
}

func TestPermanent(t *testing.T) {
	if functions.Permanent(nil) != nil {
		t.Errorf("Permanent(nil): got non-nil, want nil")
	}
	base := errors.New("base")
	p := functions.Permanent(base)
	if p.Error() != "base" || !errors.Is(p, base) {
		t.Errorf("Permanent(base): got %q (wraps base: %v), want the same message, wrapping base", p, errors.Is(p, base))
	}
}

func TestIsPermanent(t *testing.T) {
	base := errors.New("base")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"context canceled", context.Canceled, false},
		{"Permanent", functions.Permanent(base), true},
		{"wrapped Permanent", &functions.InvocationError{Address: self, Err: functions.Permanent(base)}, true},
		{"joined Permanent", errors.Join(base, functions.Permanent(base)), true},
		{"DecodeError", &functions.InvocationError{Err: &functions.DecodeError{Err: base}}, true},
		{"unhandled type", functions.ErrUnhandledType, true},
		{"unknown function", functions.ErrUnknownFunction, true},
		{"undeclared state", functions.ErrUndeclaredState, true},
		{"invalid type name", functions.ErrInvalidTypeName, true},
		{"panic", &functions.InvocationError{Err: base, Panic: true}, false},
	}
	for _, tt := range tests {
		if got := functions.IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%s: %v): got %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

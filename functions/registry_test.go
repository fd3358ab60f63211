package functions_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/functions"
)

var nop = functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil })

// TestRegisterReportsEachProblem checks each problem Register detects on
// its own, and that a rejected spec is not registered.
func TestRegisterReportsEachProblem(t *testing.T) {
	count := functions.NewState("count", functions.LongType)
	tests := []struct {
		name    string
		spec    functions.Spec
		wantErr string
	}{
		{"invalid type", functions.Spec{Type: "bad type", Function: nop}, "invalid type name"},
		{"message type name", functions.Spec{Type: "ns/a:b", Function: nop}, "invalid type name"},
		{"nil function", functions.Spec{Type: "test/f"}, "nil function"},
		{"nil state", functions.Spec{Type: "test/f", Function: nop, State: []functions.StateSpec{nil}}, "nil state"},
		{"invalid state name", functions.Spec{Type: "test/f", Function: nop, State: []functions.StateSpec{functions.NewState("1st", functions.LongType)}}, `invalid state name "1st"`},
		{"empty state name", functions.Spec{Type: "test/f", Function: nop, State: []functions.StateSpec{functions.NewState("", functions.LongType)}}, `invalid state name ""`},
		{"duplicate state", functions.Spec{Type: "test/f", Function: nop, State: []functions.StateSpec{count, functions.NewState("count", functions.StringType)}}, `duplicate state "count"`},
		{"state without type", functions.Spec{Type: "test/f", Function: nop, State: []functions.StateSpec{functions.NewState("x", functions.Type[int64]{})}}, `state "x" has no type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := functions.NewRegistry()
			err := reg.Register(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Register: got %v, want an error containing %q", err, tt.wantErr)
			}
			if got := reg.Types(); len(got) != 0 {
				t.Errorf("Types after a failed Register: got %v, want none", got)
			}
		})
	}
}

// TestRegisterReportsAllProblems checks that Register does not stop at the
// first problem: a user fixes them all in one round.
func TestRegisterReportsAllProblems(t *testing.T) {
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/f", Function: nop})
	err := reg.Register(functions.Spec{
		Type: "test/f",
		State: []functions.StateSpec{
			functions.NewState("bad-name", functions.LongType),
			functions.NewState("a", functions.LongType),
			functions.NewState("a", functions.LongType),
		},
	})
	for _, want := range []string{"nil function", `invalid state name "bad-name"`, `duplicate state "a"`, "duplicate function type test/f"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Register: got %v, want an error containing %q", err, want)
		}
	}
	err = reg.Register(functions.Spec{Type: "bad"})
	if !errors.Is(err, functions.ErrInvalidTypeName) || !strings.Contains(err.Error(), "nil function") {
		t.Errorf("Register(bad type, nil function): got %v, want ErrInvalidTypeName and nil function joined", err)
	}
}

// TestRegisterDuplicateKeepsFirst checks that a second registration of a
// type fails and leaves the first in place.
func TestRegisterDuplicateKeepsFirst(t *testing.T) {
	reg := functions.NewRegistry()
	first := functions.NewState("first", functions.LongType)
	reg.MustRegister(functions.Spec{Type: "test/f", Function: nop, State: []functions.StateSpec{first}})
	err := reg.Register(functions.Spec{Type: "test/f", Function: nop})
	if err == nil || !strings.Contains(err.Error(), "duplicate function type") {
		t.Fatalf("second Register: got %v, want a duplicate function type error", err)
	}
	got, _ := reg.StateNames("test/f")
	if want := []functions.StateInfo{{Name: "first", TypeName: functions.LongType.Name()}}; !cmp.Equal(got, want) {
		t.Errorf("StateNames after the duplicate: got %v, want %v", got, want)
	}
}

func TestMustRegisterPanics(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, functions.ErrInvalidTypeName) {
			t.Errorf("MustRegister(bad): got panic value %v, want the Register error", err)
		}
	}()
	functions.NewRegistry().MustRegister(functions.Spec{Type: "bad", Function: nop})
	t.Errorf("MustRegister(bad): got no panic, want one")
}

func TestRegistryLookup(t *testing.T) {
	a := functions.NewState("a", functions.LongType)
	b := functions.NewState("b", functions.StringType)
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/z", Function: nop, State: []functions.StateSpec{b, a}})
	reg.MustRegister(functions.Spec{Type: "test/a", Function: nop})

	if got, want := reg.Types(), []functions.TypeName{"test/a", "test/z"}; !cmp.Equal(got, want) {
		t.Errorf("Types: got %v, want %v (sorted)", got, want)
	}
	spec, ok := reg.Lookup("test/z")
	if !ok || spec.Type != "test/z" || spec.Function == nil || len(spec.State) != 2 {
		t.Errorf("Lookup(test/z): got %+v, %v, want the spec, true", spec, ok)
	}
	if _, ok := reg.Lookup("test/missing"); ok {
		t.Errorf("Lookup(test/missing): got true, want false")
	}
	got, ok := reg.StateNames("test/z")
	want := []functions.StateInfo{{Name: "b", TypeName: "io.statefun.types/string"}, {Name: "a", TypeName: "io.statefun.types/long"}}
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("StateNames(test/z): ok %v, (-want +got):\n%s", ok, diff)
	}
	if got, ok := reg.StateNames("test/missing"); ok || got != nil {
		t.Errorf("StateNames(test/missing): got %v, %v, want nil, false", got, ok)
	}
}

// TestRegisterCopiesState checks that changing the Spec's State and
// Egresses slices after Register does not change the registered function
// type.
func TestRegisterCopiesState(t *testing.T) {
	states := []functions.StateSpec{functions.NewState("a", functions.LongType)}
	egresses := []functions.TypeName{"test/out"}
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/f", Function: nop, State: states, Egresses: egresses})
	states[0] = functions.NewState("b", functions.StringType)
	egresses[0] = "test/changed"
	if got, _ := reg.StateNames("test/f"); len(got) != 1 || got[0].Name != "a" {
		t.Errorf("StateNames after changing the caller's slice: got %v, want [a]", got)
	}
	spec, _ := reg.Lookup("test/f")
	if s, ok := spec.State[0].(functions.State[int64]); !ok || s.Name() != "a" {
		t.Errorf("Lookup.State[0] after changing the caller's slice: got %v, want state a", spec.State[0])
	}
	if spec.Egresses[0] != "test/out" {
		t.Errorf("Lookup.Egresses after changing the caller's slice: got %v, want [test/out]", spec.Egresses)
	}
}

// TestRegistryConcurrentUse registers and invokes from many goroutines, for
// the race detector.
func TestRegistryConcurrentUse(t *testing.T) {
	reg := functions.NewRegistry()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			typ := functions.TypeName(fmt.Sprintf("test/f%d", i))
			if err := reg.Register(functions.Spec{Type: typ, Function: nop}); err != nil {
				t.Errorf("Register(%s): %v", typ, err)
				return
			}
			_ = reg.Types()
			if _, err := reg.Invoke(context.Background(), functions.Invocation{
				Target:  functions.Address{Type: typ, ID: "x"},
				Message: functions.StringType.Of("hi"),
			}); err != nil {
				t.Errorf("Invoke(%s): %v", typ, err)
			}
		})
	}
	wg.Wait()
	if got := len(reg.Types()); got != 8 {
		t.Errorf("Types: got %d, want 8", got)
	}
}

// TestRegisterChecksDeclaredEgresses: the egresses a Spec declares must be
// valid type names, each declared once.
func TestRegisterChecksDeclaredEgresses(t *testing.T) {
	t.Parallel()
	err := functions.NewRegistry().Register(functions.Spec{Type: "test/f", Function: nop, Egresses: []functions.TypeName{"test/out", "bad", "test/out"}})
	if err == nil {
		t.Fatal("Register: no error, want one for the invalid and one for the duplicate egress")
	}
	for _, want := range []string{"functions: register test/f: egress: ", "functions: register test/f: duplicate egress test/out"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Register: got %q, want it to contain %q", err, want)
		}
	}
}

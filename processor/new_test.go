package processor

import (
	"strings"
	"testing"

	"github.com/stateloop/stateloop/functions"
)

// TestNewRejectsRegisteredTypesTheTopologyLacks: regression for issue 10
// item 13, a function type registered but missing from the topology's
// Functions passed New, and every message to it became a dead letter at
// run time; so did an egress a function sends to that the topology lacks.
// New must fail, listing each such problem.
func TestNewRejectsRegisteredTypesTheTopologyLacks(t *testing.T) {
	t.Parallel()
	topo, reg := counterApp("new-check")
	nop := functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil })
	reg.MustRegister(functions.Spec{Type: "test/forgotten", Function: nop})
	reg.MustRegister(functions.Spec{Type: "other/forgotten-too", Function: nop})
	reg.MustRegister(functions.Spec{Type: "served/by-namespace", Function: nop})
	topo.Namespaces = []string{"served"}
	reg.MustRegister(functions.Spec{Type: "test/sender", Function: nop, Egresses: []functions.TypeName{countsOut, "test/nowhere"}})
	topo.Functions = append(topo.Functions, "test/sender")
	_, err := New([]string{"127.0.0.1:9092"}, topo, reg)
	if err == nil {
		t.Fatal("New: no error, want one for each registered type the topology lacks")
	}
	for _, want := range []string{
		"topology: function type test/forgotten is registered but not in the topology: add it to Functions (or its namespace to Namespaces), or do not register it",
		"topology: function type other/forgotten-too is registered but not in the topology",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: got %q, want it to contain %q", err, want)
		}
	}
	for _, unwanted := range []string{"served/by-namespace", "egress " + string(countsOut)} {
		if strings.Contains(err.Error(), unwanted) {
			t.Errorf("New: got %q, want no complaint about %s: the topology has it", err, unwanted)
		}
	}
}

// TestNewAcceptsAMatchingRegistry is the counterpart: the counter
// application, whose registry and topology agree, passes.
func TestNewAcceptsAMatchingRegistry(t *testing.T) {
	t.Parallel()
	topo, reg := counterApp("new-check")
	if _, err := New([]string{"127.0.0.1:9092"}, topo, reg); err != nil {
		t.Fatalf("New: %v", err)
	}
}

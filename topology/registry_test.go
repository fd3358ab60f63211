package topology_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// TestValidateRegistry: regression for issue 10 item 13, a function type
// registered but not in the topology, or an egress a function sends to
// that the topology lacks, passed start-up and failed only at run time,
// as dead letters. ValidateRegistry reports each such problem.
func TestValidateRegistry(t *testing.T) {
	t.Parallel()
	nop := functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil })
	topo := topology.Topology{
		App:        "app",
		Functions:  []functions.TypeName{"shop/cart"},
		Namespaces: []string{"remote"},
		Egresses:   []topology.Egress{{ID: "shop/out", Topics: []topology.Topic{"out"}}},
	}
	for _, tc := range []struct {
		name  string
		specs []functions.Spec
		want  []string
	}{
		{"listed type, known egress", []functions.Spec{{Type: "shop/cart", Function: nop, Egresses: []functions.TypeName{"shop/out"}}}, nil},
		{"type of a namespace", []functions.Spec{{Type: "remote/anything", Function: nop}}, nil},
		{"every problem at once", []functions.Spec{
			{Type: "shop/cart", Function: nop, Egresses: []functions.TypeName{"shop/out", "shop/missing"}},
			{Type: "shop/forgotten", Function: nop, Egresses: []functions.TypeName{"shop/out"}},
			{Type: "other/forgotten", Function: nop},
		}, []string{
			"topology: function type other/forgotten is registered but not in the topology: add it to Functions (or its namespace to Namespaces), or do not register it",
			"topology: function type shop/cart declares egress shop/missing, which the topology does not have: add it to Egresses, or remove it from the Spec's Egresses",
			"topology: function type shop/forgotten is registered but not in the topology: add it to Functions (or its namespace to Namespaces), or do not register it",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := functions.NewRegistry()
			for _, s := range tc.specs {
				reg.MustRegister(s)
			}
			var got []string
			if err := topo.ValidateRegistry(reg); err != nil {
				got = strings.Split(err.Error(), "\n") // errors.Join's separator
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ValidateRegistry (-want +got):\n%s", diff)
			}
		})
	}
}

package app

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/processor"
	"github.com/stateloop/stateloop/topology"
)

func TestProgressReportsReadinessAndRebalances(t *testing.T) {
	topo := topology.Topology{App: "a", Partitions: 4, Functions: []functions.TypeName{"x/f", "x/g"},
		Ingresses: []topology.Ingress{{Topic: "in"}}, Egresses: []topology.Egress{{Topics: []topology.Topic{"o1", "o2"}}}}
	polls := []struct {
		stats processor.Stats
		want  string
	}{
		{processor.Stats{}, ""},
		{processor.Stats{Partitions: []int32{3, 0, 1, 2}}, ""}, // assigned, still recovering
		{processor.Stats{Partitions: []int32{3, 0, 1, 2}, Ready: true}, "application a ready: 4 of 4 partitions, function types x/f, x/g; reading topics in; writing topics o1, o2\n"},
		{processor.Stats{Partitions: []int32{0, 1, 2, 3}, Ready: true}, ""},
		{processor.Stats{Partitions: []int32{0, 1}}, ""}, // another instance joined
		{processor.Stats{Partitions: []int32{1, 0}, Ready: true}, "application a rebalanced: now 2 of 4 partitions\n"},
		{processor.Stats{Partitions: []int32{0, 1}, Ready: true}, ""},
		{processor.Stats{Partitions: []int32{0, 1, 2}, Ready: true}, "application a rebalanced: now 3 of 4 partitions\n"},
	}
	var pr progress
	for i, p := range polls {
		var out bytes.Buffer
		pr.report(&out, topo, p.stats)
		if out.String() != p.want {
			t.Errorf("poll %d: printed %q, want %q", i, out.String(), p.want)
		}
	}
}

func TestRunNotesIgnoredPartitions(t *testing.T) {
	t.Parallel()
	build := func() (topology.Topology, *functions.Registry) {
		reg := functions.NewRegistry()
		reg.MustRegister(functions.Spec{Type: "x/f", Function: functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil })})
		return topology.Topology{App: "a", Partitions: 16, Functions: []functions.TypeName{"x/f"}}, reg
	}
	var out bytes.Buffer
	_ = Run(t.Context(), Flags{Brokers: []string{"127.0.0.1:1"}, Partitions: 4}, build, &out)
	if !strings.Contains(out.String(), "note: application a sets 16 partitions itself; --partitions 4 is ignored") {
		t.Errorf("got output %q, want a note on --partitions", out.String())
	}
}

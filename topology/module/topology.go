package module

import (
	"sort"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

// Topology returns what the module says about the application's topology:
//
//   - Functions: [Module.FunctionTypes].
//   - Ingresses: one per topic of every Kafka ingress, with its value
//     type and targets. The ingress id, address, consumer group, startup
//     position, offset reset and properties have no place in
//     topology.Ingress; they stay in [Module.Ingresses].
//   - Egresses: one per Kafka egress, with its id and no topics: a
//     StateFun egress declares none, each record names its topic. The
//     address, delivery semantic and properties stay in [Module.Egresses].
//
// The playground ingress and egress are not Kafka topics and are left out.
// The result is not validated: the caller adds its Go functions and then
// calls [topology.Topology.Validate].
func (m *Module) Topology(app string) topology.Topology {
	t := topology.Topology{App: app, Functions: m.FunctionTypes()}
	for _, in := range m.Ingresses {
		for _, tp := range in.Topics {
			t.Ingresses = append(t.Ingresses, topology.Ingress{
				Topic:     tp.Topic,
				ValueType: tp.ValueType,
				Targets:   append([]functions.TypeName(nil), tp.Targets...),
			})
		}
	}
	for _, e := range m.Egresses {
		t.Egresses = append(t.Egresses, topology.Egress{ID: e.ID})
	}
	return t
}

// FunctionTypes returns the function types the module's endpoints are
// known to serve, sorted: every exactly bound type, and every ingress
// target that an endpoint serves (exactly or by namespace). Types that a
// namespace binding serves but nothing names cannot be listed.
func (m *Module) FunctionTypes() []functions.TypeName {
	seen := make(map[functions.TypeName]bool)
	var out []functions.TypeName
	add := func(t functions.TypeName) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, e := range m.Endpoints {
		if e.Type != "" {
			add(e.Type)
		}
	}
	for _, in := range m.Ingresses {
		for _, tp := range in.Topics {
			for _, fn := range tp.Targets {
				if _, ok := m.EndpointFor(fn); ok {
					add(fn)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

package topology

import (
	"errors"
	"fmt"

	"github.com/stateloop/stateloop/functions"
)

// ValidateRegistry reports, all at once, what reg has that t lacks: each
// registered function type that is not a function of t (see
// [Topology.HasFunction]), and each egress that a registered [functions.Spec]
// declares and t does not have. A runtime calls it at start-up
// (processor.New does, and so does functionstest.WithTopology), so that
// these mistakes fail there instead of turning messages into dead letters.
// A nil reg has nothing to report.
func (t Topology) ValidateRegistry(reg *functions.Registry) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, fn := range reg.Types() {
		if !t.HasFunction(fn) {
			errs = append(errs, fmt.Errorf("topology: function type %s is registered but not in the topology: "+
				"add it to Functions (or its namespace to Namespaces), or do not register it", fn))
		}
		spec, _ := reg.Lookup(fn)
		for _, e := range spec.Egresses {
			if _, ok := t.Egress(e); !ok {
				errs = append(errs, fmt.Errorf("topology: function type %s declares egress %s, which the topology does not have: "+
					"add it to Egresses, or remove it from the Spec's Egresses", fn, e))
			}
		}
	}
	return errors.Join(errs...)
}

// ValidateServed reports, all at once, each function type listed in
// t.Functions that reg does not register and that remote does not serve
// (remote reports whether a type is a remote function; nil means none
// is). A runtime calls it at start-up (processor.New does, and so does
// functionstest.NewDriver, for which nothing is remote): a message to
// such a type could never be delivered.
func (t Topology) ValidateServed(reg *functions.Registry, remote func(functions.TypeName) bool) error {
	var errs []error
	for _, fn := range t.Functions {
		if reg != nil {
			if _, ok := reg.Lookup(fn); ok {
				continue
			}
		}
		if remote != nil && remote(fn) {
			continue
		}
		errs = append(errs, fmt.Errorf("topology: function type %s is in the topology but neither registered nor served by a remote endpoint: "+
			"register it, serve it from a module.yaml endpoint, or remove it from Functions", fn))
	}
	return errors.Join(errs...)
}

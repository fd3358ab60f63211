package functions

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Spec describes a function type: its name, its code, the state every
// address of it owns and the egresses it sends to.
type Spec struct {
	Type     TypeName
	Function Function
	// State declares the state values of each address. Using a state value
	// that is not declared fails the invocation with [ErrUndeclaredState].
	State []StateSpec
	// Egresses declares the egresses the function sends to with
	// [Context.SendEgress]. Sending to another fails the invocation with
	// [ErrUndeclaredEgress]. A runtime checks at start-up that its
	// application has each of them (processor.New does).
	Egresses []TypeName
}

// Registry holds the function types of an application. Build one with
// [NewRegistry] and [Registry.Register]; there is no global registry.
//
// A Registry is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	specs map[TypeName]*registered
}

type registered struct {
	spec  Spec
	state []stateDecl
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{specs: make(map[TypeName]*registered)}
}

// Register adds a function type. It returns every problem it finds, joined:
// an invalid type name (see [ValidateFunctionType]), a nil function, a type
// registered before, an invalid or duplicate state name, an invalid or
// duplicate egress name.
func (r *Registry) Register(s Spec) error {
	var errs []error
	if err := ValidateFunctionType(s.Type); err != nil {
		errs = append(errs, err)
	}
	if s.Function == nil {
		errs = append(errs, fmt.Errorf("functions: register %s: nil function", s.Type))
	}
	decls := make([]stateDecl, 0, len(s.State))
	seen := make(map[string]bool, len(s.State))
	for _, st := range s.State {
		if st == nil {
			errs = append(errs, fmt.Errorf("functions: register %s: nil state", s.Type))
			continue
		}
		d := st.decl()
		switch {
		case !stateNameRE.MatchString(d.name):
			errs = append(errs, fmt.Errorf("functions: register %s: invalid state name %q: want ^[a-zA-Z_][a-zA-Z_0-9]*$", s.Type, d.name))
		case seen[d.name]:
			errs = append(errs, fmt.Errorf("functions: register %s: duplicate state %q", s.Type, d.name))
		case d.decode == nil:
			errs = append(errs, fmt.Errorf("functions: register %s: state %q has no type", s.Type, d.name))
		case d.exp.Mode != ExpireNever && d.exp.After <= 0:
			errs = append(errs, fmt.Errorf("functions: register %s: state %q expires %s %v: the time to live must be positive", s.Type, d.name, d.exp.Mode, d.exp.After))
		}
		seen[d.name] = true
		decls = append(decls, d)
	}
	for i, e := range s.Egresses {
		if _, err := ParseTypeName(string(e)); err != nil {
			errs = append(errs, fmt.Errorf("functions: register %s: egress: %w", s.Type, err))
		} else if slices.Contains(s.Egresses[:i], e) {
			errs = append(errs, fmt.Errorf("functions: register %s: duplicate egress %s", s.Type, e))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.Type]; dup {
		errs = append(errs, fmt.Errorf("functions: duplicate function type %s", s.Type))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.State = slices.Clone(s.State)
	s.Egresses = slices.Clone(s.Egresses)
	r.specs[s.Type] = &registered{spec: s, state: decls}
	return nil
}

// MustRegister is like [Registry.Register] but panics on error; use it only
// for wiring in main and tests.
func (r *Registry) MustRegister(s Spec) {
	if err := r.Register(s); err != nil {
		panic(err)
	}
}

// Lookup returns the spec of a function type.
func (r *Registry) Lookup(t TypeName) (Spec, bool) {
	reg := r.lookup(t)
	if reg == nil {
		return Spec{}, false
	}
	return reg.spec, true
}

func (r *Registry) lookup(t TypeName) *registered {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.specs[t]
}

// Types returns the registered function types, sorted.
func (r *Registry) Types() []TypeName {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ts := make([]TypeName, 0, len(r.specs))
	for t := range r.specs {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// StateNames returns the declared state names of a function type with their
// type names, in declaration order, and false for an unknown type.
func (r *Registry) StateNames(t TypeName) ([]StateInfo, bool) {
	reg := r.lookup(t)
	if reg == nil {
		return nil, false
	}
	out := make([]StateInfo, len(reg.state))
	for i, d := range reg.state {
		out[i] = StateInfo{Name: d.name, TypeName: d.typeName, Expiration: d.exp}
	}
	return out, true
}

// StateInfo names a declared state value, its type and its expiration.
type StateInfo struct {
	Name       string
	TypeName   TypeName
	Expiration Expiration
}

package driver

import (
	"maps"
	"slices"
	"time"

	"github.com/stateloop/stateloop/functions"
)

// StateInfo names a declared state value, its type and its expiration.
type StateInfo struct {
	Name       string
	TypeName   functions.TypeName
	Expiration functions.Expiration
}

// States returns the declared state values of a function type in reg, in
// declaration order, and false for a type reg does not have.
func States(reg *functions.Registry, t functions.TypeName) ([]StateInfo, bool) {
	spec, ok := reg.Lookup(t)
	if !ok {
		return nil, false
	}
	out := make([]StateInfo, len(spec.State))
	for i, s := range spec.State {
		out[i] = StateInfo{Name: s.Name(), TypeName: s.TypeName(), Expiration: s.Expiration()}
	}
	return out, true
}

// Expirations returns the expirations of the expiring state values among
// infos, by name, as [ApplyState] takes them; nil when none expires.
func Expirations(infos []StateInfo) map[string]functions.Expiration {
	var m map[string]functions.Expiration
	for _, info := range infos {
		if info.Expiration.Mode == functions.ExpireNever {
			continue
		}
		if m == nil {
			m = make(map[string]functions.Expiration)
		}
		m[info.Name] = info.Expiration
	}
	return m
}

// Unexpired returns the values of state that have not expired at now: the
// state an invocation at now sees. It returns state itself when nothing
// expired, and otherwise a copy without the expired values.
func Unexpired(state map[string]StoredValue, now time.Time) map[string]StoredValue {
	var out map[string]StoredValue
	for name, v := range state {
		if v.ExpiresAt.IsZero() || now.Before(v.ExpiresAt) {
			continue
		}
		if out == nil {
			out = maps.Clone(state)
		}
		delete(out, name)
	}
	if out == nil {
		return state
	}
	return out
}

// ApplyState returns the values of an address after a successful
// invocation at now: current, the values the invocation saw (without
// expired ones, see [Unexpired]), with the invocation's changes applied
// (a deleted value removed, a set one replaced) and expiry stamped. exps
// are the expirations of the function type's state by name (see
// [Expirations]): a value of a state that expires after write expires
// After its last write, so it gets now + After when the invocation writes
// it; one that expires after call gets now + After at every invocation,
// whether the invocation used it or not.
//
// write reports whether the address must be stored again: an invocation
// that changes nothing is not written, unless it moves an after-call
// expiry. When write is false, next is current.
//
// With owned true, ApplyState may change current in place (the caller's
// own map, which nothing else refers to). Otherwise current stays as it
// is, and next is a new map when write is true. next may be empty: the
// address has no values left.
func ApplyState(current map[string]StoredValue, owned bool, changes []StateChange,
	exps map[string]functions.Expiration, now time.Time) (next map[string]StoredValue, write bool) {
	if len(changes) == 0 && !stamp(current, nil, exps, now, false) {
		return current, false
	}
	next = current
	if !owned || next == nil {
		next = make(map[string]StoredValue, len(current)+len(changes))
		maps.Copy(next, current)
	}
	written := make([]string, 0, len(changes))
	for _, c := range changes {
		if c.Deleted {
			delete(next, c.Name)
			continue
		}
		next[c.Name] = c.Value
		written = append(written, c.Name)
	}
	stamp(next, written, exps, now, true)
	return next, true
}

// stamp sets (with set true) or only checks the expiry of the values of
// state after an invocation at now that wrote the values named in
// written. It reports whether any expiry changes.
func stamp(state map[string]StoredValue, written []string, exps map[string]functions.Expiration, now time.Time, set bool) bool {
	if len(exps) == 0 {
		return false
	}
	changed := false
	for name, v := range state {
		e, ok := exps[name]
		if !ok || e.Mode == functions.ExpireNever || (e.Mode == functions.ExpireAfterWrite && !slices.Contains(written, name)) {
			continue
		}
		if at := now.Add(e.After); !at.Equal(v.ExpiresAt) {
			if !set {
				return true
			}
			v.ExpiresAt = at
			state[name] = v
			changed = true
		}
	}
	return changed
}

package driver_test

import (
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func value(b string, expires time.Time) driver.StoredValue {
	return driver.StoredValue{TypeName: "a/b", Value: []byte(b), ExpiresAt: expires}
}

func set(name, b string) driver.StateChange {
	return driver.StateChange{Name: name, Value: value(b, time.Time{})}
}

func del(name string) driver.StateChange {
	return driver.StateChange{Name: name, Value: driver.StoredValue{TypeName: "a/b"}, Deleted: true}
}

// TestApplyState pins down the rules of state for every runtime: changes
// applied, after-write expiry stamped on write, after-call expiry at every
// call, and no write for an invocation that changes nothing unless it
// moves an after-call expiry.
func TestApplyState(t *testing.T) {
	exps := map[string]functions.Expiration{
		"w": {Mode: functions.ExpireAfterWrite, After: time.Hour},
		"c": {Mode: functions.ExpireAfterCall, After: time.Minute},
	}
	now := t0.Add(10 * time.Second)
	tests := []struct {
		name      string
		current   map[string]driver.StoredValue
		changes   []driver.StateChange
		exps      map[string]functions.Expiration
		want      map[string]driver.StoredValue
		wantWrite bool
	}{
		{"no changes, nothing expires", map[string]driver.StoredValue{"n": value("1", time.Time{})}, nil, nil,
			map[string]driver.StoredValue{"n": value("1", time.Time{})}, false},
		{"no changes, only after-write values", map[string]driver.StoredValue{"w": value("1", t0.Add(time.Hour))}, nil, exps,
			map[string]driver.StoredValue{"w": value("1", t0.Add(time.Hour))}, false},
		{"no changes moves an after-call expiry",
			map[string]driver.StoredValue{"w": value("1", t0.Add(time.Hour)), "c": value("2", t0.Add(time.Minute))}, nil, exps,
			map[string]driver.StoredValue{"w": value("1", t0.Add(time.Hour)), "c": value("2", now.Add(time.Minute))}, true},
		{"no changes, after-call expiry already there", map[string]driver.StoredValue{"c": value("2", now.Add(time.Minute))}, nil, exps,
			map[string]driver.StoredValue{"c": value("2", now.Add(time.Minute))}, false},
		{"no values at all", nil, nil, exps, nil, false},
		{"a write stamps after-write and after-call values, not others",
			map[string]driver.StoredValue{"c": value("2", t0.Add(time.Minute))},
			[]driver.StateChange{set("w", "new"), set("n", "plain")}, exps,
			map[string]driver.StoredValue{"w": value("new", now.Add(time.Hour)), "c": value("2", now.Add(time.Minute)), "n": value("plain", time.Time{})}, true},
		{"an unwritten after-write value keeps its expiry",
			map[string]driver.StoredValue{"w": value("1", t0.Add(time.Hour))},
			[]driver.StateChange{set("n", "x")}, exps,
			map[string]driver.StoredValue{"w": value("1", t0.Add(time.Hour)), "n": value("x", time.Time{})}, true},
		{"a deleted value is removed",
			map[string]driver.StoredValue{"n": value("1", time.Time{}), "m": value("2", time.Time{})},
			[]driver.StateChange{del("n")}, nil,
			map[string]driver.StoredValue{"m": value("2", time.Time{})}, true},
		{"deleting the last value leaves none", map[string]driver.StoredValue{"w": value("1", t0.Add(time.Hour))},
			[]driver.StateChange{del("w")}, exps, map[string]driver.StoredValue{}, true},
		{"a change is written even if it changes no value", map[string]driver.StoredValue{"n": value("1", time.Time{})},
			[]driver.StateChange{del("absent")}, nil, map[string]driver.StoredValue{"n": value("1", time.Time{})}, true},
		{"changes in order: set, then delete", nil, []driver.StateChange{set("n", "1"), del("n"), set("m", "2")}, nil,
			map[string]driver.StoredValue{"m": value("2", time.Time{})}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, owned := range []bool{false, true} {
				current := maps.Clone(tt.current)
				before := maps.Clone(tt.current)
				next, write := driver.ApplyState(current, owned, tt.changes, tt.exps, now)
				if write != tt.wantWrite {
					t.Errorf("owned %v: write = %v, want %v", owned, write, tt.wantWrite)
				}
				if diff := cmp.Diff(tt.want, next, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); len(tt.want)+len(next) > 0 && diff != "" {
					t.Errorf("owned %v: next (-want +got):\n%s", owned, diff)
				}
				if !owned || !write {
					if diff := cmp.Diff(before, current); diff != "" {
						t.Errorf("owned %v, write %v: ApplyState changed current (-before +after):\n%s", owned, write, diff)
					}
				}
				if !write && !sameMap(next, current) {
					t.Errorf("owned %v: without a write, next is not current", owned)
				}
				if owned && write && current != nil && !sameMap(next, current) {
					t.Errorf("owned %v: next is a copy, want current changed in place", owned)
				}
			}
		})
	}
}

// sameMap reports whether a and b are the same map (or both nil): a
// change through one shows in the other.
func sameMap(a, b map[string]driver.StoredValue) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	const probe = "\x00probe"
	a[probe] = driver.StoredValue{}
	_, ok := b[probe]
	delete(a, probe)
	return ok
}

func TestUnexpired(t *testing.T) {
	st := map[string]driver.StoredValue{"c": value("1", t0.Add(time.Minute)), "w": value("2", t0.Add(time.Hour)), "n": value("3", time.Time{})}
	if got := driver.Unexpired(st, t0); !sameMap(got, st) {
		t.Errorf("Unexpired before any expiry = %v, want its argument itself", got)
	}
	got := driver.Unexpired(st, t0.Add(time.Minute)) // c expires at exactly this time
	if diff := cmp.Diff(map[string]driver.StoredValue{"w": st["w"], "n": st["n"]}, got); diff != "" {
		t.Errorf("Unexpired at c's expiry (-want +got):\n%s", diff)
	}
	if _, ok := st["c"]; !ok {
		t.Error("Unexpired changed its argument")
	}
	if got := driver.Unexpired(nil, t0); got != nil {
		t.Errorf("Unexpired(nil) = %v, want nil", got)
	}
}

func TestStatesAndExpirations(t *testing.T) {
	w := functions.NewState("w", functions.LongType).ExpireAfterWrite(time.Hour)
	n := functions.NewState("n", functions.StringType)
	c := functions.NewState("c", functions.LongType).ExpireAfterCall(time.Minute)
	reg := functions.NewRegistry()
	reg.MustRegister(functions.Spec{Type: "test/f", Function: functions.FunctionFunc(func(functions.Context, functions.Message) error { return nil }),
		State: []functions.StateSpec{w, n, c}})
	infos, ok := driver.States(reg, "test/f")
	want := []driver.StateInfo{
		{Name: "w", TypeName: functions.LongType.Name(), Expiration: functions.Expiration{Mode: functions.ExpireAfterWrite, After: time.Hour}},
		{Name: "n", TypeName: functions.StringType.Name()},
		{Name: "c", TypeName: functions.LongType.Name(), Expiration: functions.Expiration{Mode: functions.ExpireAfterCall, After: time.Minute}},
	}
	if diff := cmp.Diff(want, infos); !ok || diff != "" {
		t.Errorf("States(test/f): ok %v (-want +got):\n%s", ok, diff)
	}
	if got, ok := driver.States(reg, "test/missing"); ok || got != nil {
		t.Errorf("States(test/missing) = %v, %v, want nil, false", got, ok)
	}
	wantExps := map[string]functions.Expiration{"w": want[0].Expiration, "c": want[2].Expiration}
	if diff := cmp.Diff(wantExps, driver.Expirations(infos)); diff != "" {
		t.Errorf("Expirations (-want +got):\n%s", diff)
	}
	if got := driver.Expirations(infos[1:2]); got != nil {
		t.Errorf("Expirations without an expiring value = %v, want nil", got)
	}
}

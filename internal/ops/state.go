package ops

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/wire"
)

// EditState applies a state edit at the address, in order with its
// messages, and returns the runtime's answer: the values before and
// after, and the state its function type declares. A zero edit reads the
// state as the address's next message would see it and changes nothing.
// An edit the runtime refuses (a state the function does not declare, a
// value of another type than declared) is an error with its reason.
func (c *Client) EditState(ctx context.Context, addr functions.Address, edit wire.StateEdit, wait time.Duration) (wire.ControlResult, error) {
	return c.do(ctx, Op{To: addr, Control: &wire.Control{State: &edit}}, wait)
}

// StateValue is a new state value as people give it: Text is parsed for
// StateFun's built-in types (42, true, 1.5) and taken as the value's
// bytes for any other type (see codec.ParseText). An empty Type is the
// type the function declares for the value, else the type of its current
// value.
type StateValue struct {
	Name string
	Type functions.TypeName
	Text []byte
}

// SetState sets state values of the address (see EditState). Values
// without a type are typed first, from a read of the address's state:
// the declared type, else the current value's; a value with neither is
// an error that asks for its type.
func (c *Client) SetState(ctx context.Context, addr functions.Address, values []StateValue, wait time.Duration) (wire.ControlResult, error) {
	if slices.ContainsFunc(values, func(v StateValue) bool { return v.Type == "" }) {
		read, err := c.EditState(ctx, addr, wire.StateEdit{}, wait)
		if err != nil {
			return read, err
		}
		var missing []string
		for i, v := range values {
			if v.Type != "" {
				continue
			}
			if j := slices.IndexFunc(read.Declared, func(d wire.StateDecl) bool { return d.Name == v.Name }); j >= 0 {
				values[i].Type = read.Declared[j].TypeName
			} else if cur, ok := read.Before[v.Name]; ok {
				values[i].Type = cur.TypeName
			} else {
				missing = append(missing, v.Name)
			}
		}
		if len(missing) > 0 {
			declared := "the application does not know what it declares yet"
			if len(read.Declared) > 0 {
				var names []string
				for _, d := range read.Declared {
					names = append(names, d.Name+" ("+string(d.TypeName)+")")
				}
				declared = "it declares " + strings.Join(names, ", ")
			}
			return read, fmt.Errorf("ops: %w: %s has no value %s and %s declares no such state (%s): give the value's type",
				ErrBadValue, addr, strings.Join(missing, ", "), addr.Type, declared)
		}
	}
	edit := wire.StateEdit{}
	for _, v := range values {
		b, err := codec.ParseText(string(v.Type), v.Text)
		if err != nil {
			return wire.ControlResult{}, fmt.Errorf("ops: %w: state %s: %w", ErrBadValue, v.Name, err)
		}
		edit.Set = append(edit.Set, wire.StateValueEdit{Name: v.Name, TypeName: v.Type, Value: b})
	}
	return c.EditState(ctx, addr, edit, wait)
}

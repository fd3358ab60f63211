package remote

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/functions/driver"
	"github.com/stateloop/stateloop/processor/remote/pb"
)

// Expiration is the time to live of a state value, as the function
// declared it. Enforcing it is the runtime's job: an expired value is sent
// to the function as absent. With ExpireAfterCall (StateFun's
// AFTER_INVOKE) every call of the address counts, since every request
// carries every state value.
type Expiration = functions.Expiration

// ExpireMode says what resets a state value's time to live.
type ExpireMode = functions.ExpireMode

// The expire modes, as in package functions.
const (
	ExpireNever      = functions.ExpireNever
	ExpireAfterWrite = functions.ExpireAfterWrite
	ExpireAfterCall  = functions.ExpireAfterCall
)

// unsetTypeName is StateFun's type name for a state declared without one.
const unsetTypeName functions.TypeName = "io.statefun.types/unset"

// typeState is what the client keeps per function type.
type typeState struct {
	url string

	mu sync.Mutex
	// specs are the learned state specs, sorted by name. The slice is
	// replaced, never changed, so a snapshot can be shared without a copy.
	specs []driver.StateInfo

	// warm is set once a request of this type got an InvocationResult:
	// the specs are known. Until then gate lets one request at a time
	// through, so a burst of first calls to a fresh type does not make
	// every address do its own missing-state round trip (StateFun does the
	// same, FLINK-20574).
	warm      atomic.Bool
	gate      chan struct{}
	ready     chan struct{} // closed when warm is set
	readyOnce sync.Once
}

// setWarm opens the gate for good.
func (ts *typeState) setWarm() {
	ts.readyOnce.Do(func() {
		ts.warm.Store(true)
		close(ts.ready)
	})
}

func (c *Client) typeState(t functions.TypeName) *typeState {
	if ts, ok := c.types.Load(t); ok {
		return ts.(*typeState)
	}
	ts := &typeState{
		url:   strings.ReplaceAll(c.cfg.URL, functionNamePlaceholder, t.Name()),
		gate:  make(chan struct{}, 1),
		ready: make(chan struct{}),
	}
	actual, _ := c.types.LoadOrStore(t, ts)
	return actual.(*typeState)
}

func (ts *typeState) snapshot() []driver.StateInfo {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.specs
}

// learn registers the specs a function reported missing. sent are the
// specs the request carried. As in StateFun the first registration of a
// name fixes its type and expiration; a report of a known name with
// another type name is a permanent error, and so is a report that names
// only states the request carried (re-sending could not help).
func (ts *typeState) learn(missing []*pb.FromFunction_PersistedValueSpec, sent []driver.StateInfo) error {
	if len(missing) == 0 {
		return protocolError("incomplete invocation context lists no missing state: check the function's SDK")
	}
	learned := make([]driver.StateInfo, 0, len(missing))
	progress := false
	for _, m := range missing {
		s, err := specFromProto(m)
		if err != nil {
			return err
		}
		learned = append(learned, s)
		if i, ok := slices.BinarySearchFunc(sent, s.Name, cmpSpecName); !ok {
			progress = true
		} else if sent[i].TypeName != s.TypeName {
			return typeConflict(s, sent[i])
		}
	}
	if !progress {
		return protocolError("function reports state %q missing although the request carried it: check the function's SDK", learned[0].Name)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	next := slices.Clone(ts.specs)
	for _, s := range learned {
		i, ok := slices.BinarySearchFunc(next, s.Name, cmpSpecName)
		if ok {
			if next[i].TypeName != s.TypeName {
				return typeConflict(s, next[i])
			}
			continue // the first registration wins, as in StateFun
		}
		next = slices.Insert(next, i, s)
	}
	ts.specs = next
	return nil
}

func cmpSpecName(s driver.StateInfo, name string) int { return strings.Compare(s.Name, name) }

func typeConflict(got, known driver.StateInfo) error {
	return functions.Permanent(newDetail(ErrStateType, nil, fmt.Sprintf(
		"function declares state %q with type %s, but it was registered with type %s: a state's type cannot change while the runtime runs; restart it after migrating the state",
		got.Name, got.TypeName, known.TypeName)))
}

func specFromProto(m *pb.FromFunction_PersistedValueSpec) (driver.StateInfo, error) {
	s := driver.StateInfo{Name: m.GetStateName(), TypeName: unsetTypeName}
	if s.Name == "" {
		return s, protocolError("missing state spec without a name")
	}
	if t := m.GetTypeTypename(); t != "" {
		tn, err := functions.ParseTypeName(t)
		if err != nil {
			return s, protocolError("state %q declared with an invalid type name: %v", s.Name, err)
		}
		s.TypeName = tn
	}
	exp := m.GetExpirationSpec()
	ms := exp.GetExpireAfterMillis()
	switch exp.GetMode() {
	case pb.FromFunction_ExpirationSpec_NONE:
	case pb.FromFunction_ExpirationSpec_AFTER_WRITE:
		s.Expiration = Expiration{Mode: ExpireAfterWrite, After: time.Duration(ms) * time.Millisecond}
	case pb.FromFunction_ExpirationSpec_AFTER_INVOKE:
		s.Expiration = Expiration{Mode: ExpireAfterCall, After: time.Duration(ms) * time.Millisecond}
	default:
		return s, protocolError("state %q declared with unknown expiration mode %d", s.Name, exp.GetMode())
	}
	if s.Expiration.Mode != ExpireNever && (ms < 0 || ms > int64(1<<63-1)/int64(time.Millisecond)) {
		return s, protocolError("state %q declared with expiration after %d ms", s.Name, ms)
	}
	return s, nil
}

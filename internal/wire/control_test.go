package wire

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stateloop/stateloop/functions"
)

var (
	ctlTarget = functions.Address{Type: "shop/cart", ID: "user-1"}
	ctlCaller = functions.Address{Type: "stateloop/http", ID: "cli-1/req-1"}
)

// messageOpts compare messages by type name and bytes, and empty slices
// and maps as nil.
var messageOpts = []cmp.Option{cmp.Comparer(func(a, b functions.Message) bool {
	return a.TypeName() == b.TypeName() && string(a.Bytes()) == string(b.Bytes())
}), cmpopts.EquateEmpty()}

func controlEnvelope(c *Control) Envelope {
	return Envelope{Target: ctlTarget, Caller: &ctlCaller, IdempotencyKey: "op-1", Control: c}
}

func TestControlRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	msg := Envelope{Target: ctlTarget, Argument: functions.NewMessage("shop/add", []byte(`{"sku":"a"}`))}
	tests := []struct {
		name string
		c    *Control
	}{
		{"a read", &Control{State: &StateEdit{}}},
		{"a set", &Control{State: &StateEdit{Set: []StateValueEdit{{Name: "n", TypeName: "io.statefun.types/long", Value: []byte{8, 5}}, {Name: "s", Value: []byte("x")}}}}},
		{"deletes", &Control{State: &StateEdit{Delete: []string{"a", "b"}, DeleteAll: true}}},
		{"cancel tokens", &Control{Cancel: &TimerCancel{Tokens: []string{"t1", "\x00auto"}}}},
		{"cancel all", &Control{Cancel: &TimerCancel{All: true}}},
		{"replay of a message", &Control{Replay: &Replay{DeadLetterPartition: 3, DeadLetterOffset: 17, Message: &msg}}},
		{"replay of a keyless record", &Control{Replay: &Replay{DeadLetterOffset: 1, Record: &IngressRecord{Topic: "names", Partition: 2, Offset: 99, Value: []byte("v")}}}},
		{"replay of a record with an empty key", &Control{Replay: &Replay{Record: &IngressRecord{Topic: "names", Key: []byte{}, Value: []byte{}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := controlEnvelope(tc.c)
			got, err := DecodeEnvelope(AppendEnvelope(nil, env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(env, got, messageOpts...); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if tc.c.Replay != nil && tc.c.Replay.Record != nil && (got.Control.Replay.Record.Key == nil) != (tc.c.Replay.Record.Key == nil) {
				t.Errorf("key %v, want %v: a record without a key and one with an empty key differ", got.Control.Replay.Record.Key, tc.c.Replay.Record.Key)
			}
		})
	}
}

func TestDecodeEnvelopeRejectsMalformedControlRecords(t *testing.T) {
	t.Parallel()
	msg := Envelope{Target: ctlTarget, Argument: functions.NewMessage("t/x", nil)}
	nested := controlEnvelope(&Control{State: &StateEdit{}})
	tests := []struct {
		name string
		b    []byte
	}{
		{"two requests", rawControl(append(appendControlMessage(nil, &Control{State: &StateEdit{}}), appendControlMessage(nil, &Control{Cancel: &TimerCancel{All: true}})...))},
		{"no request", rawControl(nil)},
		{"argument and control", func() []byte {
			b := AppendEnvelope(nil, msg)
			return appendControl(b, &Control{State: &StateEdit{}})
		}()},
		{"an empty name to delete", AppendEnvelope(nil, controlEnvelope(&Control{State: &StateEdit{Delete: []string{""}}}))},
		{"a value without a name", AppendEnvelope(nil, controlEnvelope(&Control{State: &StateEdit{Set: []StateValueEdit{{TypeName: "t/x"}}}}))},
		{"set and deleted", AppendEnvelope(nil, controlEnvelope(&Control{State: &StateEdit{Set: []StateValueEdit{{Name: "a"}}, Delete: []string{"a"}}}))},
		{"a bad value type", AppendEnvelope(nil, controlEnvelope(&Control{State: &StateEdit{Set: []StateValueEdit{{Name: "a", TypeName: "no-slash"}}}}))},
		{"cancel without tokens", AppendEnvelope(nil, controlEnvelope(&Control{Cancel: &TimerCancel{}}))},
		{"cancel of an empty token", AppendEnvelope(nil, controlEnvelope(&Control{Cancel: &TimerCancel{Tokens: []string{""}}}))},
		{"replay of nothing", AppendEnvelope(nil, controlEnvelope(&Control{Replay: &Replay{}}))},
		{"replay of a message and a record", AppendEnvelope(nil, controlEnvelope(&Control{Replay: &Replay{Message: &msg, Record: &IngressRecord{Topic: "t"}}}))},
		{"replay of a control record", AppendEnvelope(nil, controlEnvelope(&Control{Replay: &Replay{Message: &nested}}))},
		{"replay of a record without a topic", AppendEnvelope(nil, controlEnvelope(&Control{Replay: &Replay{Record: &IngressRecord{}}}))},
	}
	for _, tc := range tests {
		if _, err := DecodeEnvelope(tc.b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want an error wrapping ErrMalformed", tc.name, err)
		}
	}
}

// rawControl is an envelope to ctlTarget whose control message has the
// fields m.
func rawControl(m []byte) []byte {
	b := appendAddress(nil, 1, ctlTarget)
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func TestControlResultRoundTrip(t *testing.T) {
	t.Parallel()
	due := time.UnixMilli(1_700_000_000_123)
	r := ControlResult{
		Before:   StateRecord{"n": {TypeName: "io.statefun.types/long", Value: []byte{8, 1}}},
		After:    StateRecord{"n": {TypeName: "io.statefun.types/long", Value: []byte{8, 9}, ExpiresAt: due}},
		Declared: []StateDecl{{Name: "n", TypeName: "io.statefun.types/long"}},
		Cancelled: []CancelledTimer{{Token: "t1", Timer: Timer{DueUnixMilli: due.UnixMilli(),
			Message: Envelope{Target: ctlTarget, Caller: &ctlTarget, Argument: functions.NewMessage("t/x", []byte("v"))}}}},
		Address: ctlTarget,
	}
	got, err := DecodeControlResult(AppendControlResult(nil, r))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got, messageOpts...); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	e := ControlResult{Error: "no such function type", Duplicate: true}
	if got, err := DecodeControlResult(AppendControlResult(nil, e)); err != nil || got.Error != e.Error || !got.Duplicate {
		t.Errorf("got %+v, %v; want %+v", got, err, e)
	}
}

func TestDeadLetterRefs(t *testing.T) {
	t.Parallel()
	if got := FormatDeadLetterRef(3, 1234); got != "3/1234" {
		t.Errorf("FormatDeadLetterRef = %q, want 3/1234", got)
	}
	if p, o, err := ParseDeadLetterRef("3/1234"); err != nil || p != 3 || o != 1234 {
		t.Errorf("ParseDeadLetterRef(3/1234) = %d, %d, %v", p, o, err)
	}
	for _, bad := range []string{"", "3", "3/", "/4", "a/b", "-1/4", "3/-4", "3/4/5"} {
		if _, _, err := ParseDeadLetterRef(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseDeadLetterRef(%q): got %v, want ErrMalformed", bad, err)
		}
	}
	if ReplayKey(3, 1234) == ReplayKey(31, 234) {
		t.Error("replay keys of different dead letters are equal")
	}
}

func FuzzDecodeControlResult(f *testing.F) {
	f.Add(AppendControlResult(nil, ControlResult{Error: "x", Before: StateRecord{"a": {TypeName: "t/x", Value: []byte("v")}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeControlResult(b)
		if err != nil {
			return
		}
		again, err := DecodeControlResult(AppendControlResult(nil, r))
		if err != nil || again.Error != r.Error || len(again.Before) != len(r.Before) || len(again.Cancelled) != len(r.Cancelled) {
			t.Fatalf("round trip: %v: %+v vs %+v", err, again, r)
		}
	})
}

func TestAppInfoRoundTripAndOtherUserData(t *testing.T) {
	t.Parallel()
	i := AppInfo{App: "shop", Instance: "i-1", Thread: 1, Threads: 2, Partitions: 8,
		Functions:  []FunctionInfo{{Type: "shop/cart", State: []StateInfo{{Name: "items", Type: "shop/items", Expires: "after-write 24h0m0s"}}}, {Type: "shop/pay", Remote: true}},
		Namespaces: []NamespaceInfo{{Namespace: "py", Remote: true}},
		Ingresses:  []IngressInfo{{Topic: "orders", ValueType: "shop/order", Targets: []string{"shop/cart"}}},
		Egresses:   []EgressInfo{{ID: "shop/out", Topics: []string{"out"}}},
	}
	got, ok, err := DecodeAppInfo(AppendAppInfo(nil, i))
	i.Stateloop = 1
	if err != nil || !ok {
		t.Fatalf("decode: %v, %v", ok, err)
	}
	if diff := cmp.Diff(i, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, other := range [][]byte{nil, []byte("goka"), []byte(`{"app":"x"}`)} {
		if _, ok, err := DecodeAppInfo(other); ok || err != nil {
			t.Errorf("DecodeAppInfo(%q) = %v, %v; want not app info", other, ok, err)
		}
	}
	if _, ok, err := DecodeAppInfo([]byte(`{"stateloop":2,"app":"x"}`)); !ok || !errors.Is(err, ErrMalformed) {
		t.Errorf("a later format: %v, %v; want app info that does not decode", ok, err)
	}
}

// A control record and a trace context travel in the same envelope
// without either losing the other: they were given the same field number
// by two branches written at once (5), and now have fields of their own.
func TestControlRecordKeepsItsTraceContext(t *testing.T) {
	t.Parallel()
	env := controlEnvelope(&Control{Cancel: &TimerCancel{All: true}})
	env.Trace = Trace{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", State: "vendor=opaque"}
	got, err := DecodeEnvelope(AppendEnvelope(nil, env))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(env, got, messageOpts...); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stateloop/stateloop/functions"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	caller := functions.Address{Type: "a.b/caller", ID: "c-1"}
	tests := []struct {
		name string
		env  Envelope
	}{
		{"from an ingress", Envelope{Target: functions.Address{Type: "greeter/greet", ID: "Alice"}, Argument: functions.NewMessage("greeter/name", []byte("Alice"))}},
		{"with a caller", Envelope{Target: functions.Address{Type: "ns/fn", ID: "x/y"}, Caller: &caller, Argument: functions.NewMessage("io.statefun.types/long", []byte{9, 5, 0, 0, 0, 0, 0, 0, 0})}},
		{"empty value", Envelope{Target: functions.Address{Type: "ns/fn", ID: "1"}, Argument: functions.NewMessage("type.googleapis.com/x.Y", nil)}},
		{"with a trace context", Envelope{Target: functions.Address{Type: "ns/fn", ID: "1"}, Caller: &caller, Argument: functions.NewMessage("t/x", []byte("v")),
			Trace: Trace{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", State: "vendor=opaque"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeEnvelope(AppendEnvelope(nil, tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got.Target != tc.env.Target || got.Argument.TypeName() != tc.env.Argument.TypeName() || !bytes.Equal(got.Argument.Bytes(), tc.env.Argument.Bytes()) {
				t.Errorf("got %+v, want %+v", got, tc.env)
			}
			if (got.Caller == nil) != (tc.env.Caller == nil) || (got.Caller != nil && *got.Caller != *tc.env.Caller) {
				t.Errorf("caller: got %v, want %v", got.Caller, tc.env.Caller)
			}
			if got.Trace != tc.env.Trace {
				t.Errorf("trace: got %+v, want %+v", got.Trace, tc.env.Trace)
			}
		})
	}
}

// The envelope's Address and TypedValue use the field numbers of StateFun's
// request-reply.proto: Address {namespace=1, type=2, id=3}, TypedValue
// {typename=1, has_value=2, value=3}.
func TestEnvelopeUsesStateFunFieldNumbers(t *testing.T) {
	t.Parallel()
	b := AppendEnvelope(nil, Envelope{Target: functions.Address{Type: "ns/fn", ID: "7"}, Argument: functions.NewMessage("t/x", []byte("v"))})
	var addr, tv []byte
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		b = b[n:]
		v, m := protowire.ConsumeBytes(b)
		b = b[m:]
		switch num {
		case 1:
			addr = v
		case 3:
			tv = v
		}
	}
	want := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "ns")
	want = protowire.AppendString(protowire.AppendTag(want, 2, protowire.BytesType), "fn")
	want = protowire.AppendString(protowire.AppendTag(want, 3, protowire.BytesType), "7")
	if !bytes.Equal(addr, want) {
		t.Errorf("target address bytes % x, want % x", addr, want)
	}
	wantTV := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "t/x")
	wantTV = protowire.AppendVarint(protowire.AppendTag(wantTV, 2, protowire.VarintType), 1)
	wantTV = protowire.AppendBytes(protowire.AppendTag(wantTV, 3, protowire.BytesType), []byte("v"))
	if !bytes.Equal(tv, wantTV) {
		t.Errorf("argument bytes % x, want % x", tv, wantTV)
	}
}

func TestDecodeEnvelopeRejectsMalformedRecords(t *testing.T) {
	t.Parallel()
	noArg := appendAddress(nil, 1, functions.Address{Type: "ns/fn", ID: "1"})
	emptyID := AppendEnvelope(nil, Envelope{Target: functions.Address{Type: "ns/fn"}, Argument: functions.NewMessage("t/x", nil)})
	for name, b := range map[string][]byte{
		"garbage":           []byte("not a protobuf \xff\xff"),
		"empty":             nil,
		"without argument":  noArg,
		"target without id": emptyID,
		"truncated":         AppendEnvelope(nil, Envelope{Target: functions.Address{Type: "ns/fn", ID: "1"}, Argument: functions.NewMessage("t/x", []byte("abc"))})[:5],
	} {
		if _, err := DecodeEnvelope(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want an error wrapping ErrMalformed", name, err)
		}
	}
}

func TestStateRecordRoundTripSortedByName(t *testing.T) {
	t.Parallel()
	rec := StateRecord{
		"visits": {TypeName: "io.statefun.types/long", Value: []byte{9, 3, 0, 0, 0, 0, 0, 0, 0}},
		"name":   {TypeName: "io.statefun.types/string", Value: nil},
	}
	b := AppendStateRecord(nil, rec, []string{"name", "visits"})
	got, err := DecodeStateRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["visits"].TypeName != rec["visits"].TypeName || !bytes.Equal(got["visits"].Value, rec["visits"].Value) ||
		got["name"].TypeName != rec["name"].TypeName || len(got["name"].Value) != 0 {
		t.Errorf("got %+v, want %+v", got, rec)
	}
	if _, err := DecodeStateRecord([]byte{0x0a, 0x02, 0x12, 0x00}); !errors.Is(err, ErrMalformed) {
		t.Errorf("a value without a name: got %v, want ErrMalformed", err)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(AppendEnvelope(nil, Envelope{Target: functions.Address{Type: "ns/fn", ID: "1"}, Argument: functions.NewMessage("t/x", []byte("v"))}))
	f.Add([]byte{0x0a, 0x00})
	f.Add(AppendEnvelope(nil, Envelope{Target: functions.Address{Type: "ns/fn", ID: "1"}, Control: &Control{State: &StateEdit{Set: []StateValueEdit{{Name: "n", Value: []byte{1}}}}}}))
	f.Add(AppendEnvelope(nil, Envelope{Target: functions.Address{Type: "ns/fn", ID: "1"}, Control: &Control{Replay: &Replay{Record: &IngressRecord{Topic: "t", Key: []byte("k")}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		again, err := DecodeEnvelope(AppendEnvelope(nil, env))
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if again.Target != env.Target || again.Argument.TypeName() != env.Argument.TypeName() || !bytes.Equal(again.Argument.Bytes(), env.Argument.Bytes()) ||
			(again.Control == nil) != (env.Control == nil) || (env.Control != nil && env.Control.Kind() != again.Control.Kind()) {
			t.Fatalf("round trip changed the envelope: %+v vs %+v", env, again)
		}
	})
}

func FuzzDecodeStateRecord(f *testing.F) {
	f.Add(AppendStateRecord(nil, StateRecord{"a": {TypeName: "t/x", Value: []byte("v")}}, []string{"a"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeStateRecord(b)
		if err != nil {
			return
		}
		names := make([]string, 0, len(rec))
		for n := range rec {
			names = append(names, n)
		}
		again, err := DecodeStateRecord(AppendStateRecord(nil, rec, names))
		if err != nil || len(again) != len(rec) {
			t.Fatalf("round trip: %v, %d values instead of %d", err, len(again), len(rec))
		}
	})
}

func TestTimerKeyAndTimerRoundTrip(t *testing.T) {
	sender := functions.Address{Type: "shop/cart", ID: "user-7"}
	key := AppendTimerKey(nil, sender, "tok-1")
	gotSender, gotToken, err := DecodeTimerKey(key)
	if err != nil || gotSender != sender || gotToken != "tok-1" {
		t.Errorf("DecodeTimerKey = %v %q %v; want %v tok-1", gotSender, gotToken, err, sender)
	}
	if _, _, err := DecodeTimerKey(AppendTimerKey(nil, sender, "")); !errors.Is(err, ErrMalformed) {
		t.Errorf("a key without token decodes with %v, want ErrMalformed", err)
	}
	tm := Timer{DueUnixMilli: 1_790_000_000_123, Message: Envelope{Target: functions.Address{Type: "shop/mail", ID: "u"}, Caller: &sender, Argument: functions.NewMessage("x/y", []byte("hi")),
		Trace: Trace{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}
	got, err := DecodeTimer(AppendTimer(nil, tm))
	if err != nil {
		t.Fatal(err)
	}
	if got.DueUnixMilli != tm.DueUnixMilli || got.Message.Target != tm.Message.Target || *got.Message.Caller != sender ||
		string(got.Message.Argument.Bytes()) != "hi" || got.Message.Argument.TypeName() != "x/y" || got.Message.Trace != tm.Message.Trace {
		t.Errorf("DecodeTimer = %+v, want %+v", got, tm)
	}
	if _, err := DecodeTimer(AppendEnvelope(nil, tm.Message)); !errors.Is(err, ErrMalformed) {
		t.Errorf("an envelope decodes as a timer with %v, want ErrMalformed", err)
	}
}

func TestStateRecordKeepsExpiry(t *testing.T) {
	at := time.UnixMilli(1_790_000_000_123)
	r := StateRecord{"a": {TypeName: "x/y", Value: []byte("1"), ExpiresAt: at}, "b": {TypeName: "x/y", Value: []byte("2")}}
	got, err := DecodeStateRecord(AppendStateRecord(nil, r, []string{"a", "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if !got["a"].ExpiresAt.Equal(at) || !got["b"].ExpiresAt.IsZero() || string(got["a"].Value) != "1" {
		t.Errorf("decoded %+v, want a expiring at %v and b never", got, at)
	}
}

func TestPositionRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		topic string
		part  int32
		next  int64
	}{{"app-loop", 0, 0}, {"names", 7, 1 << 40}, {"a.b_c-d", 123, 5}} {
		topic, part, err := DecodePositionKey(AppendPositionKey(nil, tc.topic, tc.part))
		if err != nil || topic != tc.topic || part != tc.part {
			t.Errorf("key %s/%d decodes to %s/%d, %v", tc.topic, tc.part, topic, part, err)
		}
		next, err := DecodePosition(AppendPosition(nil, tc.next))
		if err != nil || next != tc.next {
			t.Errorf("position %d decodes to %d, %v", tc.next, next, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("no-separator"), []byte("\x007"), []byte("t\x00-1"), []byte("t\x00x")} {
		if _, _, err := DecodePositionKey(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("key %q: got %v, want ErrMalformed", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {0x08}, {0x0a, 0x01, 'x'}} {
		if _, err := DecodePosition(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("position %x: got %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzDecodePosition(f *testing.F) {
	f.Add(AppendPosition(nil, 42), AppendPositionKey(nil, "t", 3))
	f.Fuzz(func(t *testing.T, value, key []byte) {
		if next, err := DecodePosition(value); err == nil {
			if again, err := DecodePosition(AppendPosition(nil, next)); err != nil || again != next {
				t.Fatalf("position %d round trip: %d, %v", next, again, err)
			}
		}
		if topic, part, err := DecodePositionKey(key); err == nil {
			if t2, p2, err := DecodePositionKey(AppendPositionKey(nil, topic, part)); err != nil || t2 != topic || p2 != part {
				t.Fatalf("key %s/%d round trip: %s/%d, %v", topic, part, t2, p2, err)
			}
		}
	})
}

// An inbox entry keeps its message's trace context: a message that waits
// in its address's inbox (a retry, a remote call in flight) is delivered
// later as a child of the span that sent it.
func TestInboxEntryKeepsTheTraceContextOfItsMessage(t *testing.T) {
	t.Parallel()
	caller := functions.Address{Type: "ns/a", ID: "1"}
	want := InboxEntry{
		Message: Envelope{Target: functions.Address{Type: "ns/b", ID: "1"}, Caller: &caller, Argument: functions.NewMessage("t/x", []byte("v")),
			Trace: Trace{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", State: "vendor=opaque"}},
		Source:   Source{Topic: "app-loop", Partition: 1, Offset: 7, Key: []byte("1"), Value: []byte("x")},
		Attempts: 2,
	}
	got, err := DecodeInboxEntry(AppendInboxEntry(nil, want))
	if err != nil {
		t.Fatal(err)
	}
	if got.Message.Trace != want.Message.Trace {
		t.Errorf("trace: got %+v, want %+v", got.Message.Trace, want.Message.Trace)
	}
	if got.Attempts != want.Attempts || got.Message.Target != want.Message.Target {
		t.Errorf("DecodeInboxEntry = %+v, want %+v", got, want)
	}
}

// With tracing off (no trace context) an envelope, and so a timer or an
// inbox entry, is encoded exactly as before traces existed: no field 6 or
// 7, not even empty ones, so tracing off costs no bytes.
func TestEnvelopeWithoutTraceContextHasNoTraceFields(t *testing.T) {
	t.Parallel()
	caller := functions.Address{Type: "ns/a", ID: "1"}
	env := Envelope{Target: functions.Address{Type: "ns/b", ID: "2"}, Caller: &caller, Argument: functions.NewMessage("t/x", []byte("v")), IdempotencyKey: "k"}
	for b := AppendEnvelope(nil, env); len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 6 || num == 7 {
			t.Errorf("envelope without a trace context has field %d", num)
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(m))
		}
		b = b[m:]
	}
	withTrace := env
	withTrace.Trace = Trace{Parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	if got, want := len(AppendEnvelope(nil, withTrace))-len(AppendEnvelope(nil, env)), 2+len(withTrace.Trace.Parent); got != want {
		t.Errorf("a traceparent adds %d bytes, want %d (field 6 only)", got, want)
	}
}

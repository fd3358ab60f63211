package gokainterop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/stateloop/stateloop/functions"
	gokainterop "github.com/stateloop/stateloop/goka"
	"github.com/stateloop/stateloop/gokaview"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/processor"
)

// record is a committed record of a topic.
type record struct {
	Partition int32
	Key       string
	Value     []byte
}

// readTopic returns every committed record of a topic up to its last
// stable offsets, partition by partition.
func readTopic(t testing.TB, client sarama.Client, topic string) []record {
	t.Helper()
	var out []record
	for _, r := range kafkatest.Records(t, client, topic) {
		out = append(out, record{Partition: r.Partition, Key: string(r.Key), Value: r.Value})
	}
	return out
}

// partitionOf is stateloop's partitioning, written out: FNV-1a as a signed
// 32-bit integer, modulo n, sign dropped.
func partitionOf(id string, n int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	p := int32(h.Sum32()) % n
	if p < 0 {
		p = -p
	}
	return p
}

// TestMessageCodecMatchesRuntime checks MessageCodec against what the
// runtime writes: the records processor.Sender writes are byte for byte
// what MessageCodec encodes, and the records a function's ctx.Send writes
// (with a caller) decode and encode back to the same bytes.
func TestMessageCodecMatchesRuntime(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	topo, reg := counterApp("pin", 4)
	relayFn := functions.TypeName("test/relay")
	topo.Functions = append(topo.Functions, relayFn)
	reg.MustRegister(functions.Spec{
		Type: relayFn,
		Function: functions.Router(functions.Handle(functions.LongType, func(ctx functions.Context, n int64) error {
			// delayed, so that the runtime writes it to the loop topic (a
			// message sent at once to an address of the same partition is
			// delivered in the sender's transaction)
			ctx.SendAfter(time.Millisecond, functions.Address{Type: counterFn, ID: ctx.Self().ID}, functions.LongType.Of(n))
			return nil
		})),
	})

	msgs := []gokainterop.Message{
		{To: functions.Address{Type: counterFn, ID: "alice"}, Argument: functions.LongType.Of(42)},
		{To: functions.Address{Type: counterFn, ID: "zero"}, Argument: functions.LongType.Of(0)}, // no value bytes
		{To: functions.Address{Type: "my_ns.x/fn-1", ID: "ünïcode/id with spaces"}, Argument: functions.StringType.Of("hello")},
		{To: functions.Address{Type: counterFn, ID: "raw"}, Argument: functions.NewMessage("type.googleapis.com/x.Y", []byte{0, 1, 2, 0xff})},
		{To: functions.Address{Type: relayFn, ID: "bob"}, Argument: functions.LongType.Of(7)},
	}
	sender, err := processor.NewSender(brokers, topo)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	var want [][]byte
	for _, m := range msgs {
		b, err := gokainterop.MessageCodec{}.Encode(m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		want = append(want, b)
		if err := sender.Send(context.Background(), m.To, m.Argument); err != nil {
			t.Fatalf("send %+v: %v", m, err)
		}
	}
	var got [][]byte
	for _, r := range readTopic(t, client, string(topo.LoopTopic())) {
		got = append(got, r.Value)
	}
	slices.SortFunc(got, bytes.Compare)
	slices.SortFunc(want, bytes.Compare)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("loop records written by processor.Sender differ from MessageCodec (-codec +runtime):\n%s", diff)
	}

	// the runtime's records with a caller: the relay sends to the counter
	// (the messages to my_ns.x/fn-1 and of type x.Y go to the dead
	// letters: no such function, no such handler)
	p := startApp(t, brokers, topo, reg)
	waitFor(t, 15*time.Second, "the relayed message", func() (bool, string) {
		s := p.Stats()
		return s.Invocations == 4 && s.DeadLetters == 2, fmt.Sprintf("%+v", s)
	})
	relayed := 0
	for _, r := range readTopic(t, client, string(topo.LoopTopic())) {
		v, err := gokainterop.MessageCodec{}.Decode(r.Value)
		if err != nil {
			t.Fatalf("decode loop record %x: %v", r.Value, err)
		}
		m := v.(gokainterop.Message)
		if m.To.ID != r.Key {
			t.Errorf("loop record key %q, target %s", r.Key, m.To)
		}
		if b, err := (gokainterop.MessageCodec{}).Encode(m); err != nil || !bytes.Equal(b, r.Value) {
			t.Errorf("loop record %x decodes to %+v, which encodes to %x, %v", r.Value, m, b, err)
		}
		if m.Caller != (functions.Address{}) {
			relayed++
			want := gokainterop.Message{To: functions.Address{Type: counterFn, ID: "bob"}, Caller: functions.Address{Type: relayFn, ID: "bob"}}
			if m.To != want.To || m.Caller != want.Caller || m.Argument.TypeName() != functions.LongType.Name() {
				t.Errorf("relayed message %+v, want to %s from %s", m, want.To, want.Caller)
			}
			if n, err := functions.LongType.As(m.Argument); n != 7 || err != nil {
				t.Errorf("relayed argument %d, %v; want 7", n, err)
			}
		}
	}
	if relayed != 1 {
		t.Errorf("%d loop records with a caller, want 1", relayed)
	}
}

// TestEmitterReachesFunction: a goka emitter with MessageCodec and goka's
// default hasher sends messages straight to the partitions that own the
// ids (the runtime moves none), the counter function gets every one of
// them, and a view built with NewView reads the exact totals, also for the
// id whose hash is 0x80000000, with a partition count that is not a power
// of two.
// Regression: package goka had a copy of the runtime's envelope codec
// that dropped the idempotency key, so a message decoded and emitted again
// (a goka processor forwarding loop records) lost it and was delivered
// again.
func TestMessageCodecKeepsTheIdempotencyKey(t *testing.T) {
	m := gokainterop.Message{To: functions.Address{Type: counterFn, ID: "alice"}, Argument: functions.LongType.Of(1), IdempotencyKey: "req-17"}
	b, err := gokainterop.MessageCodec{}.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	v, err := gokainterop.MessageCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(gokainterop.Message).IdempotencyKey; got != "req-17" {
		t.Errorf("idempotency key after a round trip: %q, want req-17", got)
	}
}

func TestEmitterReachesFunction(t *testing.T) {
	brokers := kafkatest.StartKfake(t)
	client := kafkatest.Client(t, brokers)
	const partitions = 3
	topo, reg := counterApp("emit", partitions)
	p := startApp(t, brokers, topo, reg)

	em, err := gokainterop.NewEmitter(brokers, topo, goka.WithEmitterLogger(newGokaLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"alice", "bob", "carol", edgeID, "ünïcode", "a/b c"}
	const rounds = 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	var emitErrs []error
	for round := 1; round <= rounds; round++ {
		for _, id := range ids {
			pr, err := gokainterop.Emit(em, functions.Address{Type: counterFn, ID: id}, functions.LongType.Of(int64(round)))
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			pr.Then(func(err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					emitErrs = append(emitErrs, err)
					mu.Unlock()
				}
			})
		}
	}
	if err := gokainterop.EmitSync(em, functions.Address{Type: counterFn, ID: "dave"}, functions.LongType.Of(100)); err != nil {
		t.Fatal(err)
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := errors.Join(emitErrs...); err != nil {
		t.Fatalf("emit: %v", err)
	}
	want := map[string]int64{"dave": 100}
	for _, id := range ids {
		want[id] = rounds * (rounds + 1) / 2
	}
	emitted := len(ids)*rounds + 1

	view, err := gokainterop.NewView(brokers, topo, counterFn,
		goka.WithViewStorageBuilder(storage.MemoryBuilder()), goka.WithViewLogger(newGokaLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	run(t, "view", view.Run)
	waitReady(t, "view", view.WaitRunning(), 20*time.Second)
	waitFor(t, 20*time.Second, "the view to show every total", func() (bool, string) {
		got := map[string]int64{}
		for id := range want {
			n, ok, err := gokainterop.Get(view, id, totalState)
			if err != nil {
				t.Fatalf("get %s: %v", id, err)
			}
			if ok {
				got[id] = n
			}
		}
		return cmp.Equal(got, want), fmt.Sprintf("view %v, processor %+v", got, p.Stats())
	})
	if s := p.Stats(); s.Invocations != int64(emitted) || s.DeadLetters != 0 {
		t.Errorf("processor stats %+v, want %d invocations and no dead letters", s, emitted)
	}

	// every record is on its id's partition, and the runtime moved none
	// (a moved record is written to the loop topic a second time)
	loop := readTopic(t, client, string(topo.LoopTopic()))
	if len(loop) != emitted {
		t.Errorf("%d loop records, want the %d emitted: the runtime moved some", len(loop), emitted)
	}
	for _, r := range loop {
		if want := partitionOf(r.Key, partitions); r.Partition != want {
			t.Errorf("goka put id %q on partition %d, stateloop owns it on %d", r.Key, r.Partition, want)
		}
	}
	if got := partitionOf(edgeID, partitions); got != 2 {
		t.Fatalf("partition of %q = %d, want 2 (2^31 mod 3)", edgeID, got)
	}

	// goka's own hasher, without Hasher: the view panics for edgeID
	stock, err := goka.NewView(brokers, gokainterop.Table(topo, counterFn), gokainterop.StateCodec{},
		append(gokaview.Options(), goka.WithViewStorageBuilder(storage.MemoryBuilder()), goka.WithViewLogger(newGokaLogger(t)))...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "view with goka's hasher", stock.Run)
	waitReady(t, "view with goka's hasher", stock.WaitRunning(), 20*time.Second)
	if n, ok, err := gokainterop.Get(stock, "alice", totalState); n != want["alice"] || !ok || err != nil {
		t.Errorf("view with goka's hasher: alice = %d, %v, %v; want %d", n, ok, err, want["alice"])
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Errorf("view with goka's hasher found %q on a partition count of %d; expected goka to panic (index out of range)", edgeID, partitions)
			} else {
				t.Logf("as expected, goka's view panics for %q: %v", edgeID, r)
			}
		}()
		_, _ = stock.Get(edgeID)
	}()
}

func TestMessageCodecErrors(t *testing.T) {
	valid := gokainterop.Message{To: functions.Address{Type: counterFn, ID: "a"}, Argument: functions.LongType.Of(1)}
	encodeErr := functions.NewType("test/json", failingCodec{}).Of(1)
	tests := []struct {
		name  string
		value any
	}{
		{"not a message", "hello"},
		{"nil", nil},
		{"nil pointer", (*gokainterop.Message)(nil)},
		{"empty id", gokainterop.Message{To: functions.Address{Type: counterFn}, Argument: valid.Argument}},
		{"bad function type", gokainterop.Message{To: functions.Address{Type: "nonamespace", ID: "a"}, Argument: valid.Argument}},
		{"argument without type", gokainterop.Message{To: valid.To}},
		{"argument with encode error", gokainterop.Message{To: valid.To, Argument: encodeErr}},
		{"bad caller", gokainterop.Message{To: valid.To, Argument: valid.Argument, Caller: functions.Address{Type: counterFn}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if b, err := (gokainterop.MessageCodec{}).Encode(tc.value); err == nil {
				t.Errorf("Encode(%#v) = %x, want an error", tc.value, b)
			}
		})
	}
	if _, err := gokainterop.Emit(nil, functions.Address{Type: counterFn}, valid.Argument); err == nil {
		t.Error("Emit to an empty id succeeded")
	}
	if err := gokainterop.EmitSync(nil, valid.To, encodeErr); err == nil {
		t.Error("EmitSync of a message with an encode error succeeded")
	}

	b, err := gokainterop.MessageCodec{}.Encode(&valid)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, {0xff}, b[:len(b)-1], b[:len(b)/2]} {
		if v, err := (gokainterop.MessageCodec{}).Decode(bad); !errors.Is(err, gokainterop.ErrMalformed) {
			t.Errorf("Decode(%x) = %+v, %v; want ErrMalformed", bad, v, err)
		}
	}
	// decoding does not alias its input
	v, err := gokainterop.MessageCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if n, err := functions.LongType.As(v.(gokainterop.Message).Argument); n != 1 || err != nil {
		t.Errorf("decoded argument changed with its input: %d, %v", n, err)
	}
}

type failingCodec struct{}

func (failingCodec) Encode(int) ([]byte, error) { return nil, errors.New("cannot encode") }
func (failingCodec) Decode([]byte) (int, error) { return 0, errors.New("cannot decode") }

func FuzzMessageCodecDecode(f *testing.F) {
	for _, m := range []gokainterop.Message{
		{To: functions.Address{Type: counterFn, ID: "a"}, Argument: functions.LongType.Of(1)},
		{To: functions.Address{Type: counterFn, ID: "b"}, Argument: functions.StringType.Of("x"), Caller: functions.Address{Type: "x/y", ID: "c"}},
	} {
		b, err := gokainterop.MessageCodec{}.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := gokainterop.MessageCodec{}.Decode(b)
		if err != nil {
			if !errors.Is(err, gokainterop.ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		m := v.(gokainterop.Message)
		if m.To.Validate() != nil {
			t.Fatalf("decoded an invalid target %s", m.To)
		}
		if m.Caller != (functions.Address{}) && m.Caller.Validate() != nil {
			// the runtime does not check callers either: such a caller
			// decodes, but does not encode
			return
		}
		enc, err := gokainterop.MessageCodec{}.Encode(m)
		if err != nil {
			t.Fatalf("Encode(Decode(%x)) = %v", b, err)
		}
		v2, err := gokainterop.MessageCodec{}.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%x))) = %v", b, err)
		}
		if m2 := v2.(gokainterop.Message); m2.To != m.To || m2.Caller != m.Caller ||
			m2.Argument.TypeName() != m.Argument.TypeName() || !bytes.Equal(m2.Argument.Bytes(), m.Argument.Bytes()) {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}

package gokainterop_test

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	gokacodec "github.com/lovoo/goka/codec"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/functions"
	gokainterop "github.com/stateloop/stateloop/goka"
	"github.com/stateloop/stateloop/topology"
)

func TestTableGroupAndLoopStream(t *testing.T) {
	topo, _ := counterApp("shop", 4)
	if got, want := gokainterop.Table(topo, counterFn), goka.GroupTable(gokainterop.Group(topo, counterFn)); got != want {
		t.Errorf("Table = %q, want the group table %q", got, want)
	}
	if got, want := string(gokainterop.Table(topo, counterFn)), "shop-test_.counter-table"; got != want {
		t.Errorf("Table = %q, want %q", got, want)
	}
	if got, want := string(gokainterop.Group(topo, "my_ns/fn")), "shop-my__ns_.fn"; got != want {
		t.Errorf("Group = %q, want %q", got, want)
	}
	if got, want := gokainterop.LoopStream(topo), goka.Stream("shop-loop"); got != want {
		t.Errorf("LoopStream = %q, want %q", got, want)
	}
}

// viewPartition is how a goka view picks the partition of an id.
func viewPartition(h func() hash.Hash32, id string, n int32) int32 {
	x := h()
	x.Write([]byte(id))
	hash := int32(x.Sum32())
	if hash < 0 {
		hash = -hash
	}
	return hash % n
}

// emitterPartition is how a goka emitter (sarama's hash partitioner)
// picks the partition of an id.
func emitterPartition(t *testing.T, h func() hash.Hash32, id string, n int32) int32 {
	t.Helper()
	part, err := sarama.NewCustomHashPartitioner(h)("topic").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(id)}, n)
	if err != nil {
		t.Fatal(err)
	}
	return part
}

// isEdge reports whether the FNV-1a hash of id is 0x80000000.
func isEdge(id string) bool {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32() == 1<<31
}

// TestHasher: with Hasher, a goka view and a goka emitter put every id on
// stateloop's partition, for any partition count; with goka's default
// hasher the view does so for all ids but edgeID, which it maps to a
// negative partition when the count is not a power of two.
func TestHasher(t *testing.T) {
	ids := []string{edgeID, "id-8uzwPi", "alice", "", "ünïcode"}
	if !isEdge(edgeID) || !isEdge("id-8uzwPi") {
		t.Fatal("the edge ids do not hash to 0x80000000")
	}
	for i := range 2000 {
		ids = append(ids, fmt.Sprint("id", i))
	}
	for _, n := range []int32{1, 2, 3, 4, 5, 7, 8, 12, 16, 100} {
		topo := topology.Topology{App: "x", Partitions: n}
		h := gokainterop.Hasher(topo)
		for _, id := range ids {
			want := partitionOf(id, n)
			if got := viewPartition(h, id, n); got != want {
				t.Fatalf("n=%d: view with Hasher puts %q on %d, stateloop on %d", n, id, got, want)
			}
			if got := emitterPartition(t, h, id, n); got != want {
				t.Fatalf("n=%d: emitter with Hasher puts %q on %d, stateloop on %d", n, id, got, want)
			}
			if got := emitterPartition(t, goka.DefaultHasher(), id, n); got != want {
				t.Fatalf("n=%d: emitter with goka's hasher puts %q on %d, stateloop on %d", n, id, got, want)
			}
			if !isEdge(id) {
				if got := viewPartition(goka.DefaultHasher(), id, n); got != want {
					t.Fatalf("n=%d: view with goka's hasher puts %q on %d, stateloop on %d", n, id, got, want)
				}
			}
		}
		stock := viewPartition(goka.DefaultHasher(), edgeID, n)
		if isPowerOfTwo := n&(n-1) == 0; isPowerOfTwo != (stock >= 0) {
			t.Errorf("n=%d: a view with goka's hasher puts %q on %d", n, edgeID, stock)
		}
	}
	// Sum agrees with Sum32
	x := gokainterop.Hasher(topology.Topology{App: "x", Partitions: 3})()
	x.Write([]byte(edgeID))
	if got, want := fmt.Sprintf("%x", x.Sum(nil)), fmt.Sprintf("%08x", x.Sum32()); got != want || want != "00000002" {
		t.Errorf("Sum = %s, Sum32 = %s; want 00000002", got, want)
	}
}

func TestValue(t *testing.T) {
	enc := func(n int64) []byte {
		b, err := functions.LongType.Codec().Encode(n)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s := gokainterop.State{
		"total":   {TypeName: functions.LongType.Name(), Value: enc(42)},
		"later":   {TypeName: functions.LongType.Name(), Value: enc(7), ExpiresAt: time.Now().Add(time.Hour)},
		"expired": {TypeName: functions.LongType.Name(), Value: enc(9), ExpiresAt: time.Now().Add(-time.Millisecond)},
		"name":    {TypeName: functions.StringType.Name(), Value: []byte("\n\x05Alice")},
	}
	tests := []struct {
		name   string
		state  string
		want   int64
		wantOK bool
		errIs  bool // a *functions.DecodeError
	}{
		{"present", "total", 42, true, false},
		{"expires later", "later", 7, true, false},
		{"expired", "expired", 0, false, false},
		{"missing", "missing", 0, false, false},
		{"other type", "name", 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := gokainterop.Value(s, tc.state, functions.LongType)
			var de *functions.DecodeError
			if got != tc.want || ok != tc.wantOK || errors.As(err, &de) != tc.errIs {
				t.Errorf("Value(%s) = %d, %v, %v; want %d, %v, decode error %v", tc.state, got, ok, err, tc.want, tc.wantOK, tc.errIs)
			}
		})
	}
	// the codec gives States
	b, err := gokainterop.StateCodec{}.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := gokainterop.StateCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok, err := gokainterop.Value(v.(gokainterop.State), "total", functions.LongType); n != 42 || !ok || err != nil {
		t.Errorf("Value(total) after a round trip = %d, %v, %v", n, ok, err)
	}
}

func TestCodec(t *testing.T) {
	type point struct{ X, Y int }
	c := gokainterop.Codec(codec.JSON[point]())
	b, err := c.Encode(point{1, 2})
	if err != nil || string(b) != `{"X":1,"Y":2}` {
		t.Fatalf("Encode = %s, %v", b, err)
	}
	if b2, err := c.Encode(&point{1, 2}); err != nil || string(b2) != string(b) {
		t.Errorf("Encode(*point) = %s, %v", b2, err)
	}
	if v, err := c.Decode(b); err != nil || v != (point{1, 2}) {
		t.Errorf("Decode = %#v, %v", v, err)
	}
	for _, bad := range []any{"x", nil, (*point)(nil)} {
		if _, err := c.Encode(bad); err == nil {
			t.Errorf("Encode(%#v) succeeded", bad)
		}
	}
	if _, err := c.Decode([]byte("{")); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("Decode({) = %v, want ErrCorrupt", err)
	}
	// the text codec of egress records reads as goka's string codec does
	text := gokainterop.Codec(codec.Text())
	v1, err1 := text.Decode([]byte("42"))
	v2, err2 := new(gokacodec.String).Decode([]byte("42"))
	if v1 != v2 || err1 != nil || err2 != nil {
		t.Errorf("Codec(codec.Text()) decodes %v, %v; goka's String %v, %v", v1, err1, v2, err2)
	}
}

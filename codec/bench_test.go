package codec_test

import (
	"testing"

	"github.com/stateloop/stateloop/codec"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func benchmark[T any](b *testing.B, c codec.Codec[T], v T) {
	enc, err := c.Encode(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := c.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBool(b *testing.B)    { benchmark(b, codec.Bool(), true) }
func BenchmarkInt32(b *testing.B)   { benchmark(b, codec.Int32(), 5) }
func BenchmarkInt64(b *testing.B)   { benchmark(b, codec.Int64(), 1<<40) }
func BenchmarkFloat32(b *testing.B) { benchmark(b, codec.Float32(), 1.5) }
func BenchmarkFloat64(b *testing.B) { benchmark(b, codec.Float64(), 1.5) }
func BenchmarkString(b *testing.B)  { benchmark(b, codec.String(), "Hello, Bob!") }
func BenchmarkText(b *testing.B)    { benchmark(b, codec.Text(), "Hello, Bob!") }
func BenchmarkBytes(b *testing.B)   { benchmark(b, codec.Bytes(), []byte("Hello, Bob!")) }
func BenchmarkJSON(b *testing.B) {
	benchmark(b, codec.JSON[person](), person{Name: "Bob", Tags: []string{"a", "b"}, N: 3})
}
func BenchmarkProto(b *testing.B) {
	benchmark(b, codec.Proto[wrapperspb.StringValue](), wrapperspb.String("Hello, Bob!"))
}

package smoke

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzSeeds are encoded source commands of every kind.
func fuzzSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{nil, {0x08, 0x01}, SourceCommand{Target: 3, Commands: everyCommand}.Marshal()}
	gen, err := NewGenerator(GeneratorConfig{IDs: 50, Depth: 6, MaxCommandsPerDepth: 4, Weights: DefaultWeights(),
		SendAfter: true, SendAfterWithCancellation: true, AsyncOperations: true}, 7)
	if err != nil {
		f.Fatal(err)
	}
	for range 10 {
		seeds = append(seeds, gen.Next().Marshal())
	}
	return seeds
}

// FuzzUnmarshalSourceCommand: decoding never panics, and whatever decodes
// encodes to bytes that decode to the same value and that protobuf reads
// and writes back identically.
func FuzzUnmarshalSourceCommand(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	md := descriptor(f, "SourceCommand")
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := UnmarshalSourceCommand(b)
		if err != nil {
			return
		}
		enc := sc.Marshal()
		again, err := UnmarshalSourceCommand(enc)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", sc, err)
		}
		if d := cmp.Diff(sc, again, equateEmpty); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
		sameAsProtobuf(t, md, enc)
	})
}

// FuzzUnmarshalCommands is FuzzUnmarshalSourceCommand for the Commands
// message that functions send each other.
func FuzzUnmarshalCommands(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		if sc, err := UnmarshalSourceCommand(s); err == nil {
			f.Add(sc.Commands.Marshal())
		}
	}
	md := descriptor(f, "Commands")
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := UnmarshalCommands(b)
		if err != nil {
			return
		}
		enc := cs.Marshal()
		again, err := UnmarshalCommands(enc)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", cs, err)
		}
		if d := cmp.Diff(cs, again, equateEmpty); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
		sameAsProtobuf(t, md, enc)
	})
}

func FuzzUnmarshalVerificationResult(f *testing.F) {
	f.Add([]byte(nil))
	f.Add(VerificationResult{ID: 5, Expected: 10, Actual: 9}.Marshal())
	f.Add(VerificationResult{ID: -1, Expected: -1, Actual: 1 << 62}.Marshal())
	md := descriptor(f, "VerificationResult")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalVerificationResult(b)
		if err != nil {
			return
		}
		enc := r.Marshal()
		if again, err := UnmarshalVerificationResult(enc); err != nil || again != r {
			t.Fatalf("round trip of %+v: got %+v, %v", r, again, err)
		}
		sameAsProtobuf(t, md, enc)
	})
}

package codectest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/stateloop/stateloop/codec"
)

// Run checks the codec contract for c with the given samples, reporting
// every violation on t. It runs its checks as subtests of t:
//
//   - roundtrip: Decode(Encode(v)) equals v for every sample.
//   - aliasing: a decoded value and the bytes Encode returned still hold
//     after c has encoded and decoded every other sample, so c does not hand
//     out a buffer it later reuses. Decode may keep and return its input
//     (codec.Bytes does), so Run never changes bytes it passed to Decode.
//   - concurrent: round-trips from several goroutines at once, for the race
//     detector to check.
//   - garbage: Decode of malformed input (fixed junk, and each sample's
//     encoding truncated or followed by junk) either returns an error
//     wrapping [codec.ErrCorrupt] or a value that encodes again without
//     panicking; if that encoding succeeds, it decodes to an equal value.
//
// equal reports whether two values are the same; nil means
// [reflect.DeepEqual]. Run needs at least one sample.
func Run[T any](t *testing.T, c codec.Codec[T], samples []T, equal func(a, b T) bool) {
	t.Helper()
	if c == nil {
		t.Fatal("codectest: nil codec")
	}
	if len(samples) == 0 {
		t.Fatal("codectest: no samples")
	}
	if equal == nil {
		equal = deepEqual[T]
	}
	k := checker[T]{c: c, equal: equal}
	t.Run("roundtrip", func(t *testing.T) {
		for i, v := range samples {
			if _, ok := k.roundTrip(t, v); !ok {
				t.Errorf("sample %d (%#v) does not round-trip", i, v)
			}
		}
	})
	t.Run("aliasing", func(t *testing.T) { k.aliasing(t, samples) })
	t.Run("concurrent", func(t *testing.T) { k.concurrent(t, samples) })
	t.Run("garbage", func(t *testing.T) { k.garbage(t, samples) })
}

type checker[T any] struct {
	c     codec.Codec[T]
	equal func(a, b T) bool
}

// roundTrip encodes and decodes v, reporting failures on t, and returns the
// encoding and whether the decoded value equals v.
func (k checker[T]) roundTrip(t testing.TB, v T) ([]byte, bool) {
	t.Helper()
	b, err := k.encode(v)
	if err != nil {
		t.Errorf("Encode(%#v): got error %v, want nil", v, err)
		return nil, false
	}
	got, err := k.decode(b)
	if err != nil {
		t.Errorf("Decode(Encode(%#v)) = Decode(%s): got error %v, want nil", v, short(b), err)
		return b, false
	}
	if !k.equal(got, v) {
		t.Errorf("Decode(Encode(%#v)) = Decode(%s): got %#v, want %#v", v, short(b), got, v)
		return b, false
	}
	return b, true
}

func (k checker[T]) aliasing(t *testing.T, samples []T) {
	type kept struct {
		enc     []byte // as returned by Encode
		encCopy []byte // a copy taken at once
		dec     T
	}
	var all []kept
	for i, v := range samples {
		b, err := k.encode(v)
		if err != nil {
			t.Errorf("Encode of sample %d: got error %v, want nil", i, err)
			return
		}
		cp := bytes.Clone(b)
		d, err := k.decode(cp)
		if err != nil {
			t.Errorf("Decode of sample %d: got error %v, want nil", i, err)
			return
		}
		all = append(all, kept{enc: b, encCopy: cp, dec: d})
	}
	// Use the codec again on every sample, so that a codec reusing an
	// internal buffer overwrites what it handed out above.
	for _, v := range samples {
		if b, err := k.encode(v); err == nil {
			_, _ = k.decode(b)
		}
	}
	for i, v := range samples {
		if !bytes.Equal(all[i].enc, all[i].encCopy) {
			t.Errorf("sample %d: bytes returned by Encode changed when the codec was used again: got %s, want %s", i, short(all[i].enc), short(all[i].encCopy))
		}
		if !k.equal(all[i].dec, v) {
			t.Errorf("sample %d: decoded value changed when the codec was used again: got %#v, want %#v", i, all[i].dec, v)
		}
		// The decoded value must itself still encode to the sample.
		b, err := k.encode(all[i].dec)
		if err != nil {
			t.Errorf("sample %d: Encode of the decoded value: got error %v, want nil", i, err)
			continue
		}
		if got, err := k.decode(b); err != nil || !k.equal(got, v) {
			t.Errorf("sample %d: Decode(Encode(decoded value)): got %#v, %v, want %#v, nil", i, got, err, v)
		}
	}
}

func (k checker[T]) concurrent(t *testing.T, samples []T) {
	const goroutines = 4
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*len(samples))
	for range goroutines {
		wg.Go(func() {
			for i, v := range samples {
				b, err := k.encode(v)
				if err != nil {
					errs <- fmt.Errorf("sample %d: Encode: %w", i, err)
					continue
				}
				got, err := k.decode(b)
				if err != nil {
					errs <- fmt.Errorf("sample %d: Decode: %w", i, err)
					continue
				}
				if !k.equal(got, v) {
					errs <- fmt.Errorf("sample %d: got %#v, want %#v", i, got, v)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent round-trip: %v", err)
	}
}

// junk is malformed input for most encodings: truncated protobuf tags,
// lengths and values, invalid UTF-8, truncated JSON.
var junk = [][]byte{
	nil,
	{},
	{0x00},
	{0xff},
	{0x08},             // field 1 varint, value missing
	{0x0a, 0x05, 'a'},  // field 1 bytes, length past the end
	{0x0d, 0x01, 0x02}, // field 1 fixed32, truncated
	{0x09, 0x01},       // field 1 fixed64, truncated
	{0x0b},             // start group
	{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, // overlong varint
	{0xc3, 0x28}, // invalid UTF-8
	[]byte("{"),
	[]byte(`{"a":`),
	[]byte("null"),
	[]byte(`"\ud800"`),
	[]byte("[1,2,"),
	bytes.Repeat([]byte{0xaa}, 64),
}

func (k checker[T]) garbage(t *testing.T, samples []T) {
	inputs := append([][]byte(nil), junk...)
	for _, v := range samples {
		b, err := k.encode(v)
		if err != nil || len(b) == 0 {
			continue
		}
		inputs = append(inputs, bytes.Clone(b[:len(b)-1]), append(bytes.Clone(b), 0xff), append(bytes.Clone(b), 0x0a, 0x7f))
	}
	for _, in := range inputs {
		CheckDecode(t, k.c, in, k.equal)
	}
}

// CheckDecode is the property a fuzz target checks for one input: Decode of
// b does not panic and either returns an error wrapping [codec.ErrCorrupt],
// or a value whose encoding, if Encode succeeds, decodes to an equal value.
// equal nil means [reflect.DeepEqual].
//
//	func FuzzOrder(f *testing.F) {
//		f.Fuzz(func(t *testing.T, b []byte) {
//			codectest.CheckDecode(t, orderCodec, b, nil)
//		})
//	}
func CheckDecode[T any](t testing.TB, c codec.Codec[T], b []byte, equal func(a, b T) bool) {
	t.Helper()
	if equal == nil {
		equal = deepEqual[T]
	}
	k := checker[T]{c: c, equal: equal}
	in := bytes.Clone(b)
	v, err := k.decode(in)
	if err != nil {
		if !errors.Is(err, codec.ErrCorrupt) {
			t.Errorf("Decode(%s): got error %v, want one wrapping codec.ErrCorrupt", short(b), err)
		}
		return
	}
	enc, err := k.encode(v)
	if errors.Is(err, errPanic) {
		t.Errorf("Decode(%s) = %#v: Encode of that: %v", short(b), v, err)
		return
	}
	if err != nil {
		return // Some decoded values have no encoding; that is allowed.
	}
	got, err := k.decode(enc)
	if err != nil {
		t.Errorf("Decode(%s) = %#v, which encodes to %s: Decode of that: got error %v, want nil", short(b), v, short(enc), err)
		return
	}
	if !equal(got, v) {
		t.Errorf("Decode(%s) = %#v, which encodes to %s: Decode of that: got %#v, want %#v", short(b), v, short(enc), got, v)
	}
}

// encode and decode turn a panic into an error, so that one broken sample
// does not stop the report on the others.
func (k checker[T]) encode(v T) (b []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, p, debug.Stack())
		}
	}()
	return k.c.Encode(v)
}

func (k checker[T]) decode(b []byte) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, p, debug.Stack())
		}
	}()
	return k.c.Decode(b)
}

var errPanic = errors.New("codectest: panic")

func deepEqual[T any](a, b T) bool { return reflect.DeepEqual(a, b) }

// short formats b in hex, eliding the middle of long inputs.
func short(b []byte) string {
	const limit = 48
	if len(b) <= limit {
		return fmt.Sprintf("% x", b)
	}
	return fmt.Sprintf("% x ... % x (%d bytes)", b[:limit/2], b[len(b)-limit/4:], len(b))
}

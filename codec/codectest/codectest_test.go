package codectest_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stateloop/stateloop/codec"
	"github.com/stateloop/stateloop/codec/codectest"
)

// The suite is tested by running it on broken codecs in a child process
// (this test binary again) and checking that the child fails with the
// expected report: a failing *testing.T cannot be observed in-process.

// lossy forgets everything but the first byte.
type lossy struct{}

func (lossy) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (lossy) Decode(b []byte) (string, error) {
	if len(b) > 1 {
		b = b[:1]
	}
	return string(b), nil
}

// sharedBuffer encodes into one buffer that it reuses on every call.
type sharedBuffer struct{ buf *[]byte }

func (c sharedBuffer) Encode(v string) ([]byte, error) {
	*c.buf = append((*c.buf)[:0], v...)
	return *c.buf, nil
}
func (sharedBuffer) Decode(b []byte) (string, error) { return string(b), nil }

// plainError fails on malformed input without wrapping codec.ErrCorrupt.
type plainError struct{}

func (plainError) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (plainError) Decode(b []byte) (string, error) {
	if bytes.ContainsAny(b, "{\xff") {
		return "", errors.New("bad input")
	}
	return string(b), nil
}

// panicky panics on empty input.
type panicky struct{}

func (panicky) Encode(v string) ([]byte, error) { return append([]byte("x"), v...), nil }
func (panicky) Decode(b []byte) (string, error) { return string(b[1:]), nil }

// unstable decodes input with a '{' to a value that does not survive
// another round trip: "{" decodes to "{!", which decodes back as "{!!".
type unstable struct{}

func (unstable) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (unstable) Decode(b []byte) (string, error) {
	if bytes.ContainsRune(b, '{') {
		return string(b) + "!", nil
	}
	return string(b), nil
}

var samples = []string{"", "hello", "héllo"}

var broken = map[string]func(t *testing.T){
	"lossy":        func(t *testing.T) { codectest.Run(t, lossy{}, samples, nil) },
	"sharedBuffer": func(t *testing.T) { codectest.Run(t, sharedBuffer{buf: new([]byte)}, samples, nil) },
	"plainError":   func(t *testing.T) { codectest.Run(t, plainError{}, samples, nil) },
	"panicky":      func(t *testing.T) { codectest.Run(t, panicky{}, samples, nil) },
	"unstable":     func(t *testing.T) { codectest.Run(t, unstable{}, samples, nil) },
	"noSamples":    func(t *testing.T) { codectest.Run(t, codec.Text(), nil, nil) },
	"equal":        func(t *testing.T) { codectest.Run(t, codec.Text(), samples, func(a, b string) bool { return false }) },
}

// TestBrokenCodecChild is the child process of TestRunReportsBrokenCodecs.
func TestBrokenCodecChild(t *testing.T) {
	name := os.Getenv("CODECTEST_BROKEN")
	if name == "" {
		t.Skip("run by TestRunReportsBrokenCodecs")
	}
	broken[name](t)
}

func TestRunReportsBrokenCodecs(t *testing.T) {
	tests := []struct {
		name string
		want string // in the child's output
	}{
		{"lossy", "roundtrip"},
		{"sharedBuffer", "bytes returned by Encode changed"},
		{"plainError", "want one wrapping codec.ErrCorrupt"},
		{"panicky", "codectest: panic"},
		{"unstable", "Decode of that: got"},
		{"noSamples", "no samples"},
		{"equal", "does not round-trip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenCodecChild$", "-test.v")
			cmd.Env = append(os.Environ(), "CODECTEST_BROKEN="+tt.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child: got error %v, want a failing exit status; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("child output: got\n%s\nwant it to contain %q", out, tt.want)
			}
		})
	}
}

// TestRunPassesGoodCodecs checks that the suite accepts correct codecs,
// including one that returns its input from Decode.
func TestRunPassesGoodCodecs(t *testing.T) {
	codectest.Run(t, codec.Text(), samples, nil)
	codectest.Run(t, codec.Bytes(), [][]byte{nil, {1, 2}}, nil)
}

// TestCheckDecode checks the fuzz property on a few inputs of a correct
// codec.
func TestCheckDecode(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("ok"), {0xff}} {
		codectest.CheckDecode(t, codec.Text(), in, nil)
	}
}

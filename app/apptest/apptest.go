// Package apptest runs an application with app.Run in a test: in the
// background, with its output captured, stopped when the test ends.
package apptest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/internal/kafkatest"
	"github.com/stateloop/stateloop/topology"
)

// Run is an app.Run in the background.
type Run struct {
	// Out is what Run printed.
	Out *kafkatest.SyncBuffer
	// Err delivers Run's result once it returns.
	Err <-chan error
	// Stop cancels Run's context (as Ctrl-C does).
	Stop func()
}

// Start runs app.Run with f, build and opts until Stop or the end of the
// test, which waits up to 30 s for it to return.
func Start(t testing.TB, f app.Flags, build func() (topology.Topology, *functions.Registry), opts ...app.Option) *Run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &kafkatest.SyncBuffer{}
	runErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr <- app.Run(ctx, f, build, out, opts...)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return 30s after its context was cancelled")
		}
	})
	return &Run{Out: out, Err: runErr, Stop: cancel}
}

// WaitFor waits until Run prints want, failing the test if Run returns
// first or timeout passes.
func (r *Run) WaitFor(t testing.TB, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(r.Out.String(), want) {
		select {
		case err := <-r.Err:
			t.Fatalf("Run returned %v before printing %q; output:\n%s", err, want, r.Out)
		case <-deadline:
			t.Fatalf("no %q after %v; output:\n%s", want, timeout, r.Out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

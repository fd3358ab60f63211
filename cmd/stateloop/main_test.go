package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// TestMain lets this test binary serve as the embedded broker's child
// process, as main does, and as the application process of the replay
// tests (ops_kill_test.go).
func TestMain(m *testing.M) {
	embedded.ServeIfChild()
	if os.Getenv(opsAppEnv) != "" {
		os.Exit(runOpsApp())
	}
	code := m.Run()
	if binaryPath != "" {
		_ = os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// result is what one in-process run of the CLI printed and returned.
type result struct {
	out, errOut string
	err         error
}

// cli runs the stateloop command line in process, as main does but
// without exiting, with stdin as its standard input.
func cli(ctx context.Context, stdin io.Reader, args ...string) result {
	r := kafkatest.RunCommand(ctx, newRootCommand(), stdin, args...)
	return result{out: r.Out, errOut: r.ErrOut, err: r.Err}
}

// mustCLI is cli that fails the test on an error.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := cli(ctx, nil, args...)
	if r.err != nil {
		t.Fatalf("stateloop %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r.out
}

// startBroker starts an in-process broker for one test and points
// STATELOOP_BROKERS at it, so commands find it without --brokers.
func startBroker(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", InProcess: true, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	t.Setenv(app.EnvBrokers, b.Addr())
	return b.Addr()
}

// waitFor polls the output until it contains want, failing early if done
// is closed first.
func waitFor(t *testing.T, out *kafkatest.SyncBuffer, done <-chan struct{}, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case <-done:
			t.Fatalf("ended before printing %q; output:\n%s", want, out)
		case <-deadline:
			t.Fatalf("no %q after 30s; output:\n%s", want, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.HasParent() && c.Parent().Name() == "completion" {
			return
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("command %q lacks a Short, Long or Example help text", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
}

func TestVersion(t *testing.T) {
	out := mustCLI(t, "version")
	if !strings.HasPrefix(out, "stateloop ") || !strings.Contains(out, "go1.") {
		t.Errorf("got %q, want stateloop and the Go version", out)
	}
}

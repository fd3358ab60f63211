package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/internal/kafkatest"
)

// TestBinary builds the stateloop binary and uses it as a user would: run
// the greeter with its embedded broker, send a name, read the greeting,
// stop it with SIGTERM; then start it again on the same data directory and
// check that it remembers the visit.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the stateloop binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "stateloop")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, app.EnvBrokers+"=") {
			env = append(env, kv)
		}
	}
	data := filepath.Join(dir, "data")

	greet := func(visit int, want string) {
		t.Helper()
		run := exec.Command(bin, "run", "greeter", "--listen", "127.0.0.1:0", "--data-dir", data, "--log-level", "warn")
		run.Env = env
		stdout, err := run.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr kafkatest.SyncBuffer
		run.Stderr = &stderr
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		defer run.Process.Kill()
		out := &kafkatest.SyncBuffer{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				out.Write([]byte(sc.Text() + "\n"))
			}
		}()
		waitFor(t, out, done, "application greeter ready")
		var addr string
		if _, after, ok := strings.Cut(out.String(), "connect with --brokers "); ok {
			addr, _, _ = strings.Cut(after, "\n")
		}
		if addr == "" {
			t.Fatalf("no broker address in the output:\n%s", out)
		}

		cli := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(bin, append(args, "--brokers", addr)...)
			cmd.Env = env
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("stateloop %s: %v\n%s", strings.Join(args, " "), err, got)
			}
			return string(got)
		}
		if got := cli("send", "--topic", "names", "--key", "Alice", "Alice"); !strings.HasPrefix(got, "sent 5 bytes to topic names") {
			t.Errorf("send printed %q", got)
		}
		// all greetings for Alice are on one partition, in order
		got := cli("consume", "--topic", "greetings", "-n", strconv.Itoa(visit), "--timeout", "30s")
		if !strings.HasSuffix(got, " Alice "+want+"\n") {
			t.Errorf("greetings:\n%s\nwant the last to be %q", got, want)
		}

		if err := run.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-done
		werr := make(chan error, 1)
		go func() { werr <- run.Wait() }()
		select {
		case err := <-werr:
			if err != nil {
				t.Fatalf("stateloop run after SIGTERM: %v\nstdout:\n%s\nstderr:\n%s", err, out, &stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("stateloop run did not exit 30s after SIGTERM; stdout:\n%s", out)
		}
		if !strings.HasSuffix(out.String(), "application greeter stopped\n") {
			t.Errorf("stdout does not end with the stop line:\n%s", out)
		}
	}
	greet(1, "Hello Alice!")
	greet(2, "Hello again, Alice!")
}

// TestBinaryLeavesOutDevTools checks that the production binary does not
// link the development tools: the bench (with the StateFun Go SDK of its
// remote side) and the smoke driver are the commands stateloop-bench and
// stateloop-smoke. Until issue 11 they were subcommands of stateloop.
func TestBinaryLeavesOutDevTools(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the packages with")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, dev := range []string{"github.com/stateloop/stateloop/internal/bench", "github.com/stateloop/stateloop/internal/smoke", "github.com/apache/flink-statefun/statefun-sdk-go"} {
			if pkg == dev || strings.HasPrefix(pkg, dev+"/") {
				t.Errorf("stateloop links %s", pkg)
			}
		}
	}
	for _, c := range newRootCommand().Commands() {
		if c.Name() == "bench" || c.Name() == "smoke" {
			t.Errorf("stateloop still has the command %s", c.Name())
		}
	}
}

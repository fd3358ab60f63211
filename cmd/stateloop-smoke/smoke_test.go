package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmokeBinary builds stateloop-smoke and runs a short smoke test as a
// user would: the embedded broker in a child process, the workers the
// binary itself re-executed as `stateloop-smoke worker`, one of them killed
// with SIGKILL. internal/smoke's tests run their workers as the test
// binary; this covers the command's own wiring.
func TestSmokeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the stateloop binary and runs a smoke test with it")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "stateloop-smoke")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--messages", "1500", "--rate", "1000", "--ids", "16", "--kills", "1",
		"--partitions", "4", "--seed", "7", "--timeout", "90s", "--max-delay", "1s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("stateloop-smoke: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	for _, want := range []string{
		"stateloop-smoke: PASS\n",
		"seed 7 ",
		"commands: 1,500 produced, 1,500 acknowledged, 0 failed",
		"workers: 2, 1 killed with SIGKILL and restarted",
		"delayed messages: up to 1s each",
		"verification: 16 of 16 ids reported exactly their expected count",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, &stdout)
		}
	}
	if !strings.Contains(stderr.String(), "kill 1/1: SIGKILL to worker w") {
		t.Errorf("stderr has no kill line:\n%s", &stderr)
	}
}

func TestSmokeRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--messages", "0"},
		{"--workers", "0"},
		{"--kills", "-1"},
		{"--depth", "0"},
		{"--ids", "0"},
		{"--session-timeout", "10ms"},
		{"--max-delay", "-1s"},
		{"--app", "no spaces"},
		{"--brokers", "nohostport"},
		{"--log-level", "loud"},
	} {
		r := cli(context.Background(), args...)
		if r.Err == nil {
			t.Errorf("stateloop-smoke %s: no error", strings.Join(args, " "))
		} else if !strings.HasPrefix(r.Err.Error(), "stateloop-smoke: ") {
			t.Errorf("stateloop-smoke %s: error %q does not start with stateloop-smoke:", strings.Join(args, " "), r.Err)
		}
	}
}

func TestSmokeWorkerRejectsBadArguments(t *testing.T) {
	r := cli(context.Background(), "worker", "--app=x")
	if r.Err == nil || !strings.Contains(r.ErrOut, "smoke: worker: no brokers") {
		t.Errorf("got error %v, stderr %q; want a failure that names the missing brokers", r.Err, r.ErrOut)
	}
}

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

// TestSmokeBinary builds stateloop and runs a short `stateloop smoke` as a
// user would: the embedded broker in a child process, the workers the
// binary itself re-executed as `stateloop smoke worker`, one of them killed
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
	bin := filepath.Join(t.TempDir(), "stateloop")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "smoke", "--messages", "1500", "--rate", "1000", "--ids", "16", "--kills", "1",
		"--partitions", "4", "--seed", "7", "--timeout", "90s", "--max-delay", "1s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("stateloop smoke: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	for _, want := range []string{
		"stateloop smoke: PASS\n",
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
		{"smoke", "--messages", "0"},
		{"smoke", "--workers", "0"},
		{"smoke", "--kills", "-1"},
		{"smoke", "--depth", "0"},
		{"smoke", "--ids", "0"},
		{"smoke", "--session-timeout", "10ms"},
		{"smoke", "--max-delay", "-1s"},
		{"smoke", "--app", "no spaces"},
		{"smoke", "--brokers", "nohostport"},
		{"smoke", "--log-level", "loud"},
	} {
		r := cli(context.Background(), nil, args...)
		if r.err == nil {
			t.Errorf("stateloop %s: no error", strings.Join(args, " "))
		} else if !strings.HasPrefix(r.err.Error(), "stateloop smoke: ") {
			t.Errorf("stateloop %s: error %q does not start with stateloop smoke:", strings.Join(args, " "), r.err)
		}
	}
}

func TestSmokeWorkerRejectsBadArguments(t *testing.T) {
	r := cli(context.Background(), nil, "smoke", "worker", "--app=x")
	if r.err == nil || !strings.Contains(r.errOut, "smoke: worker: no brokers") {
		t.Errorf("got error %v, stderr %q; want a failure that names the missing brokers", r.err, r.errOut)
	}
}

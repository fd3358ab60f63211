package processor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunRefusesTheDataDirOfARunningInstance is the regression test of
// issue 10 (3): two instances on one data directory read the same instance
// id, hence used the same transactional id and fenced each other, and the
// second failed only later, on the lock of a partition's local store. Now
// the second Run fails at once, naming the directory and the process that
// holds it, the first goes on unharmed, and the directory is free again
// once the first Run has returned.
func TestRunRefusesTheDataDirOfARunningInstance(t *testing.T) {
	brokers, app := testBroker(t, "datadir")
	topo, reg := counterApp(app)
	client := testClient(t, brokers)
	dir := t.TempDir()
	newProc := func() *Processor {
		p, err := New(brokers, topo, reg, WithDataDir(dir), WithCommitInterval(20*time.Millisecond), WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	words := func(from, to int) {
		var recs [][2][]byte
		for i := from; i < to; i++ {
			recs = append(recs, [2][]byte{key(i % 5), []byte("w")})
		}
		produce(t, client, app+"-words", recs...)
	}
	waitOut := func(p *Processor, n int) {
		waitFor(t, 30*time.Second, fmt.Sprintf("%d egress records", n), func() (bool, string) {
			got := len(readTopic(t, client, app+"-out"))
			return got >= n, fmt.Sprintf("%d records, stats %+v", got, p.Stats())
		})
	}

	first := newProc()
	stopFirst := runProcessor(t, first)
	waitFor(t, 30*time.Second, "the first instance ready", func() (bool, string) { s := first.Stats(); return s.Ready, fmt.Sprint(s) })
	words(0, 20)
	waitOut(first, 20)
	id, err := os.ReadFile(filepath.Join(dir, "instance-id"))
	if err != nil {
		t.Fatal(err)
	}

	second := newProc()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	err = second.Run(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("the second instance on data dir %s ran for %v and returned nil; want it to fail at once", dir, took.Round(time.Millisecond))
	}
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) || inUse.Dir != dir || inUse.PID != os.Getpid() {
		t.Errorf("the second instance's error %v: want a *DataDirInUseError for %s held by pid %d, got %+v", err, dir, os.Getpid(), inUse)
	}
	msg := err.Error()
	for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid()), "in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the second instance's error %q does not name %q", msg, want)
		}
	}
	if took > 5*time.Second {
		t.Errorf("the second instance failed after %v, want at once", took.Round(time.Millisecond))
	}

	// the first goes on, and is not fenced: every record counted once
	words(20, 40)
	waitOut(first, 40)
	if s := first.Stats(); s.Aborts != 0 {
		t.Errorf("the first instance aborted %d transactions after the second tried to start", s.Aborts)
	}
	stopFirst()
	if got := len(readTopic(t, client, app+"-out")); got != 40 {
		t.Errorf("got %d egress records, want 40 (each word counted once)", got)
	}

	// Run's return released the directory: an instance starts on it again,
	// with the instance id kept there
	third := newProc()
	runProcessor(t, third)
	waitFor(t, 30*time.Second, "the third instance ready", func() (bool, string) { s := third.Stats(); return s.Ready, fmt.Sprint(s) })
	words(40, 45)
	waitOut(third, 45)
	if again, err := os.ReadFile(filepath.Join(dir, "instance-id")); err != nil || string(again) != string(id) {
		t.Errorf("instance id after the restart: %q (%v), want %q", again, err, id)
	}
}

const lockDataDirEnv = "STATELOOP_TEST_LOCK_DATA_DIR"

func init() {
	processRoles = append(processRoles, struct {
		env string
		run func() int
	}{lockDataDirEnv, holdDataDir})
}

// holdDataDir locks the data dir named by STATELOOP_TEST_LOCK_DATA_DIR,
// prints READY and waits to be killed.
func holdDataDir() int {
	if _, err := LockDataDir(os.Getenv(lockDataDirEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "lock data dir:", err)
		return 1
	}
	fmt.Println("READY")
	select {}
}

// TestLockDataDirNamesTheOtherProcessAndIsFreedByKill9: the lock of
// another process is reported with its pid, and the kernel releases it when
// that process is killed with SIGKILL, without any clean-up.
func TestLockDataDirNamesTheOtherProcessAndIsFreedByKill9(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	holder := startAppProcess(t, lockDataDirEnv+"="+dir)
	defer func() { _ = holder.cmd.Process.Kill(); _ = holder.cmd.Wait() }()

	d, err := LockDataDir(dir)
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) || inUse.PID != holder.cmd.Process.Pid {
		d.Unlock()
		t.Fatalf("LockDataDir while pid %d holds %s: got %v, want a *DataDirInUseError naming that pid", holder.cmd.Process.Pid, dir, err)
	}
	if want := fmt.Sprintf("pid %d)", holder.cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}

	if err := holder.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = holder.cmd.Wait()
	d, err = LockDataDir(dir)
	if err != nil {
		t.Fatalf("LockDataDir after the holder was killed: %v", err)
	}
	defer d.Unlock()
	// and this process now holds it
	if _, err := LockDataDir(dir); !errors.As(err, &inUse) || !strings.Contains(err.Error(), "this process") {
		t.Errorf("second LockDataDir in the holding process: got %v, want it in use by this process", err)
	}
}

func TestNewRejectsADataDirOtherThanTheLockedOne(t *testing.T) {
	d, err := LockDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Unlock()
	topo, reg := counterApp("datadir")
	other := t.TempDir()
	_, err = New([]string{"127.0.0.1:9092"}, topo, reg, WithLockedDataDir(d), WithDataDir(other))
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), d.Path()) {
		t.Errorf("got %v, want an error naming both directories", err)
	}
	if _, err := New([]string{"127.0.0.1:9092"}, topo, reg, WithDataDir(d.Path()), WithLockedDataDir(d)); err != nil {
		t.Errorf("WithDataDir of the locked directory: %v", err)
	}
}

// Package sdkcache installs the official StateFun SDKs (and what serves
// them) for the tests that run functions written with them: the interop
// tests and the examples. An installation is made once per machine, in a
// cache directory, named after a hash of the files that pin it, and
// reused by later runs; it is built in a temporary directory and renamed
// into place when complete, so an interrupted install leaves nothing that
// looks complete and two concurrent installs do not mix.
package sdkcache

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvCache is the environment variable that overrides the cache
// directory of the installed SDKs.
const EnvCache = "STATELOOP_INTEROP_CACHE"

// completeMarker is written into an installation when it is complete.
const completeMarker = ".stateloop-complete"

// installLocks serializes the installs of one name within this test
// binary (by name: the SDKs install in parallel).
var installLocks sync.Map // name → *sync.Mutex

// Root returns the directory that holds the installed SDKs:
// $STATELOOP_INTEROP_CACHE, else os.UserCacheDir()/stateloop/interop.
func Root(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(EnvCache); dir != "" {
		return dir
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the SDKs: %v; set %s (or XDG_CACHE_HOME, or HOME) to a writable directory", err, EnvCache)
	}
	return filepath.Join(dir, "stateloop", "interop")
}

// Hash returns a short hex digest of the named files and the extra
// strings.
func Hash(t testing.TB, files []string, extra ...string) string {
	t.Helper()
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("hash the SDK pins: %v", err)
		}
		h.Write([]byte(filepath.Base(f) + "\x00")) // not the path: checkouts share the cache
		h.Write(b)
		h.Write([]byte{0})
	}
	for _, s := range extra {
		h.Write([]byte(s + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Install returns Root()/name, running install(tmp) into a fresh
// temporary directory first unless a complete installation is there; what
// names the installation in messages. Installs of one name in one test
// binary wait for each other.
func Install(t testing.TB, what, name string, install func(tmp string) error) string {
	t.Helper()
	mu, _ := installLocks.LoadOrStore(name, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	root := Root(t)
	dir := filepath.Join(root, name)
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err == nil {
		t.Logf("%s: using the installation cached in %s", what, dir)
		return dir
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("%s: create the cache directory: %v; set %s to a writable directory", what, err, EnvCache)
	}
	tmp, err := os.MkdirTemp(root, name+".tmp-")
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	t.Logf("%s: installing into %s (first run only; reused while the pinned versions stay the same)", what, dir)
	start := time.Now()
	if err := install(tmp); err != nil {
		t.Fatalf("%s: install failed: %v", what, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, completeMarker)); serr == nil {
			t.Logf("%s: another run installed it meanwhile; using %s", what, dir)
			return dir
		}
		// An incomplete leftover (say, files deleted by hand): replace it.
		if rerr := os.RemoveAll(dir); rerr != nil {
			t.Fatalf("%s: replace %s: %v", what, dir, rerr)
		}
		if err := os.Rename(tmp, dir); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	t.Logf("%s: installed in %v", what, time.Since(start).Round(100*time.Millisecond))
	return dir
}

// LookTool finds a program on PATH or fails the test saying what to
// install: the SDK tests are not skipped on a machine without it.
func LookTool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH; %s", name, install)
	}
	return p
}

// Run runs a command, logging each line it prints with the prefix, and
// returns its error with the last lines of its output.
func Run(t testing.TB, prefix, dir string, env []string, name string, args ...string) error {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			t.Logf("%s: %s", prefix, line)
			if tail = append(tail, line); len(tail) > 20 {
				tail = tail[1:]
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return &commandError{cmd: strings.Join(append([]string{name}, args...), " "), err: err, tail: tail}
	}
	return nil
}

type commandError struct {
	cmd  string
	err  error
	tail []string
}

func (e *commandError) Error() string {
	return e.cmd + ": " + e.err.Error() + "; its last lines:\n\t" + strings.Join(e.tail, "\n\t")
}

func (e *commandError) Unwrap() error { return e.err }

// Python returns the python interpreter of a virtualenv, named prefix
// plus a hash of the requirements file and the interpreter's version,
// that has the packages of that file, creating it on first use; check is
// a Python program that must run in it.
func Python(t testing.TB, what, requirements, prefix, check string) string {
	t.Helper()
	python3 := LookTool(t, "python3", "the Python SDK test needs Python 3.11 or later with venv and pip "+
		"(Debian/Ubuntu: apt-get install python3 python3-venv python3-pip; or https://www.python.org/downloads/)")
	out, err := exec.Command(python3, "-c", "import sys; print(sys.version_info[0], sys.version_info[1]); print(sys.version)").Output()
	if err != nil {
		t.Fatalf("%s does not run: %v", python3, err)
	}
	first, version, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var major, minor int
	if _, err := fmt.Sscan(first, &major, &minor); err != nil || major < 3 || (major == 3 && minor < 11) {
		t.Fatalf("%s is Python %s; the pinned packages need Python 3.11 or later (https://www.python.org/downloads/)", python3, version)
	}
	req, err := filepath.Abs(requirements)
	if err != nil {
		t.Fatal(err)
	}
	// The virtualenv belongs to the interpreter that made it: the version
	// is part of the key.
	name := prefix + Hash(t, []string{req}, version)
	dir := Install(t, what, name, func(tmp string) error {
		t.Logf("python3 is %s (%s)", python3, strings.ReplaceAll(version, "\n", " "))
		if err := Run(t, "venv", tmp, nil, python3, "-m", "venv", tmp); err != nil {
			return errors.Join(err, errors.New("python3 -m venv failed: install the venv module (Debian/Ubuntu: apt-get install python3-venv)"))
		}
		py := filepath.Join(tmp, "bin", "python")
		if err := Run(t, "pip", tmp, nil, py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
			"--progress-bar", "off", "-r", req); err != nil {
			return errors.Join(err, errors.New("pip install failed: the test needs PyPI (or a mirror set with PIP_INDEX_URL)"))
		}
		return Run(t, "check", tmp, nil, py, "-c", check)
	})
	return filepath.Join(dir, "bin", "python")
}

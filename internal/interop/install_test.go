package interop_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The SDKs are installed once per machine into a cache directory, in a
// directory named after a hash of the files that pin them; a later run
// (another test, another `go test`) finds it there. An installation is
// built in a temporary directory next to its final place and renamed
// into place when complete, so an interrupted install leaves nothing that
// looks complete and two concurrent installs do not mix.

// EnvCache overrides the cache directory of the installed SDKs.
const envCache = "STATELOOP_INTEROP_CACHE"

// completeMarker is written into an installation when it is complete.
const completeMarker = ".stateloop-complete"

// installLocks serializes the installs of one name within this test
// binary (by name: the SDKs install in parallel).
var installLocks sync.Map // name → *sync.Mutex

// cacheRoot returns the directory that holds the installed SDKs.
func cacheRoot(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv(envCache); dir != "" {
		return dir
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the SDKs: %v; set %s (or XDG_CACHE_HOME, or HOME) to a writable directory", err, envCache)
	}
	return filepath.Join(dir, "stateloop", "interop")
}

// hashOf returns a short hex digest of the named files and the extra
// strings.
func hashOf(t *testing.T, files []string, extra ...string) string {
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

// cachedInstall returns root/name, running install(tmp) into a fresh
// temporary directory first unless a complete installation is there.
func cachedInstall(t *testing.T, what, name string, install func(tmp string) error) string {
	t.Helper()
	mu, _ := installLocks.LoadOrStore(name, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	root := cacheRoot(t)
	dir := filepath.Join(root, name)
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err == nil {
		t.Logf("%s: using the installation cached in %s", what, dir)
		return dir
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("%s: create the cache directory: %v; set %s to a writable directory", what, err, envCache)
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

// lookTool finds a program on PATH or fails the test saying what to
// install: the SDK tests are not skipped on a machine without it.
func lookTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH; %s", name, install)
	}
	return p
}

// run runs a command, logging each line it prints with the prefix, and
// returns its error with the last lines of its output.
func run(t *testing.T, prefix, dir string, env []string, name string, args ...string) error {
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

// installPython returns the python interpreter of a virtualenv that has
// the packages of python/requirements.txt (the StateFun Python SDK 3.3),
// creating it with `python3 -m venv` and pip on first use.
func installPython(t *testing.T) string {
	t.Helper()
	return installVenv(t, "Python SDK", "requirements.txt", "py-",
		"import statefun, aiohttp, google.protobuf as p; print('statefun SDK with protobuf', p.__version__, 'and aiohttp', aiohttp.__version__)")
}

// installPython2 is installPython for python/requirements-2.2.txt: the
// StateFun Python SDK 2.2.2, Flask and aiohttp. The SDKs are one PyPI
// package in two versions, so each has a virtualenv of its own.
func installPython2(t *testing.T) string {
	t.Helper()
	return installVenv(t, "Python SDK 2.2", "requirements-2.2.txt", "py22-",
		"import statefun, flask, aiohttp, google.protobuf as p; from statefun import AsyncRequestReplyHandler; print('statefun SDK 2.2 with protobuf', p.__version__, 'flask', flask.__version__, 'and aiohttp', aiohttp.__version__)")
}

// installVenv returns the python interpreter of a virtualenv, named prefix
// plus a hash of python/<requirements> and the interpreter's version,
// that has the packages of that file, creating it on first use; check is
// a Python program that must run in it.
func installVenv(t *testing.T, what, requirements, prefix, check string) string {
	t.Helper()
	python3 := lookTool(t, "python3", "the Python SDK test needs Python 3.11 or later with venv and pip "+
		"(Debian/Ubuntu: apt-get install python3 python3-venv python3-pip; or https://www.python.org/downloads/)")
	out, err := exec.Command(python3, "-c", "import sys; print(sys.version)").Output()
	if err != nil {
		t.Fatalf("%s does not run: %v", python3, err)
	}
	version := strings.TrimSpace(string(out))
	req, err := filepath.Abs(filepath.Join("python", requirements))
	if err != nil {
		t.Fatal(err)
	}
	// The virtualenv belongs to the interpreter that made it: the version
	// is part of the key.
	name := prefix + hashOf(t, []string{req}, version)
	dir := cachedInstall(t, what, name, func(tmp string) error {
		t.Logf("python3 is %s (%s)", python3, strings.ReplaceAll(version, "\n", " "))
		if err := run(t, "venv", tmp, nil, python3, "-m", "venv", tmp); err != nil {
			return errors.Join(err, errors.New("python3 -m venv failed: install the venv module (Debian/Ubuntu: apt-get install python3-venv)"))
		}
		py := filepath.Join(tmp, "bin", "python")
		if err := run(t, "pip", tmp, nil, py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
			"--progress-bar", "off", "-r", req); err != nil {
			return errors.Join(err, errors.New("pip install failed: the test needs PyPI (or a mirror set with PIP_INDEX_URL)"))
		}
		return run(t, "check", tmp, nil, py, "-c", check)
	})
	return filepath.Join(dir, "bin", "python")
}

// installJavaScript returns the node_modules directory of `npm ci` run on
// js/package.json and js/package-lock.json.
func installJavaScript(t *testing.T) string {
	t.Helper()
	const hint = "the JavaScript SDK test needs Node.js 18 or later with npm (Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org/)"
	lookTool(t, "node", hint)
	npm := lookTool(t, "npm", hint)
	files := []string{filepath.Join("js", "package.json"), filepath.Join("js", "package-lock.json")}
	dir := cachedInstall(t, "JavaScript SDK", "js-"+hashOf(t, files), func(tmp string) error {
		for _, f := range files {
			if err := copyFile(f, filepath.Join(tmp, filepath.Base(f))); err != nil {
				return err
			}
		}
		if err := run(t, "npm", tmp, nil, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"); err != nil {
			return errors.Join(err, errors.New("npm ci failed: the test needs the npm registry (or a mirror set with npm_config_registry)"))
		}
		if _, err := os.Stat(filepath.Join(tmp, "node_modules", "apache-flink-statefun", "package.json")); err != nil {
			return errors.Join(err, errors.New("npm ci did not install apache-flink-statefun"))
		}
		return nil
	})
	return filepath.Join(dir, "node_modules")
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// TestCachedInstallIsAtomic: an installation is used only once complete,
// an incomplete one is replaced, and a complete one is not installed
// again.
func TestCachedInstallIsAtomic(t *testing.T) {
	t.Setenv(envCache, t.TempDir())
	runs := 0
	install := func(tmp string) error {
		runs++
		return os.WriteFile(filepath.Join(tmp, "file"), []byte("x"), 0o644)
	}
	root := cacheRoot(t)
	// A leftover without the marker, as if a user deleted it.
	if err := os.MkdirAll(filepath.Join(root, "sdk-1", "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := cachedInstall(t, "test SDK", "sdk-1", install)
	if again := cachedInstall(t, "test SDK", "sdk-1", install); again != dir {
		t.Errorf("second install returned %s, want %s", again, dir)
	}
	if runs != 1 {
		t.Errorf("install ran %d times, want 1", runs)
	}
	if _, err := os.Stat(filepath.Join(dir, "junk")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the incomplete leftover was not replaced: %v", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names bytes.Buffer
	for _, e := range entries {
		names.WriteString(e.Name() + " ")
	}
	if len(entries) != 1 {
		t.Errorf("cache holds %s, want only sdk-1 (temporary directories removed)", names.String())
	}
}

package processor

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stateloop/stateloop/internal/flock"
)

// Files of a data directory.
const (
	// dataDirLockFile is locked (flock) by the instance that uses the
	// directory; it holds {"pid": N} of that process.
	dataDirLockFile = "instance.lock"
	// instanceIDFile holds the instance id.
	instanceIDFile = "instance-id"
)

// DataDir is a data directory locked for one instance: its local state
// stores and its instance id. Two instances must never share one: they
// would read the same instance id, use the same transactional id and fence
// each other, and open the same stores.
//
// Run locks the directory of [WithDataDir] itself. A program that uses the
// directory before Run (app.Run keeps the embedded broker's data in it)
// locks it first with [LockDataDir] and hands the lock to Run with
// [WithLockedDataDir].
type DataDir struct {
	path string
	f    *os.File
}

// DataDirInUseError is the error of [LockDataDir], and of Run, when another
// running instance holds the data directory.
type DataDirInUseError struct {
	Dir string // the directory, as given
	PID int    // the process that holds it, 0 if unknown
}

func (e *DataDirInUseError) Error() string {
	return fmt.Sprintf("processor: data dir %s is in use by another running instance (%s): "+
		"stop that instance, or give this one a data dir of its own", e.Dir, e.Holder())
}

// Holder describes the process that holds the directory: "pid N", with
// ", this process" when it is the caller's own, or "pid unknown".
func (e *DataDirInUseError) Holder() string {
	switch e.PID {
	case 0:
		return "pid unknown"
	case os.Getpid():
		return "pid " + strconv.Itoa(e.PID) + ", this process"
	}
	return "pid " + strconv.Itoa(e.PID)
}

// lockOwner is what the lock file records about the process holding it.
type lockOwner struct {
	PID int `json:"pid"`
}

// LockDataDir creates dir if needed and locks it for this instance: an
// exclusive flock on <dir>/instance.lock, held until Unlock or until the
// process ends, however it ends (the kernel releases it on kill -9). It
// does not wait: when another instance holds the directory, in this
// process or another one, it fails at once with a *[DataDirInUseError]
// naming that process. On systems without flock the directory is not
// locked.
func LockDataDir(dir string) (*DataDir, error) {
	if dir == "" {
		return nil, errors.New("processor: lock data dir: no directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("processor: data dir: %w", err)
	}
	path := filepath.Join(dir, dataDirLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("processor: data dir: %w", err)
	}
	switch err := flock.TryLock(f); {
	case err == nil, errors.Is(err, flock.ErrUnsupported):
		// locked, or cannot be on this system
	case errors.Is(err, flock.ErrHeld):
		f.Close()
		var o lockOwner
		if data, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(data, &o)
		}
		return nil, &DataDirInUseError{Dir: dir, PID: o.PID}
	default:
		f.Close()
		return nil, fmt.Errorf("processor: lock data dir %s: %w", dir, err)
	}
	data, _ := json.Marshal(lockOwner{PID: os.Getpid()})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(data, '\n'), 0)
	}
	return &DataDir{path: dir, f: f}, nil
}

// Path returns the directory, as given to LockDataDir.
func (d *DataDir) Path() string { return d.path }

// InstanceID returns the instance id kept in the directory, creating a
// random one on first use.
func (d *DataDir) InstanceID() (string, error) {
	path := filepath.Join(d.path, instanceIDFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := newInstanceID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("processor: data dir: %w", err)
	}
	return id, nil
}

// Unlock releases the directory. The lock file stays: removing it would
// race with a process that has it open and is about to lock it.
func (d *DataDir) Unlock() error {
	if d == nil || d.f == nil {
		return nil
	}
	err := d.f.Close() // closing the only descriptor drops the flock
	d.f = nil
	return err
}

// WithLockedDataDir is [WithDataDir] for a directory the caller has locked
// with [LockDataDir]: Run uses d and neither locks it again nor unlocks it;
// the caller unlocks it after Run has returned.
func WithLockedDataDir(d *DataDir) Option {
	return optionFunc(func(c *config) { c.dataDir, c.lockedDataDir = d.Path(), d })
}

// checkDataDir reports a WithDataDir that names another directory than the
// lock of WithLockedDataDir.
func (c *config) checkDataDir() error {
	if c.lockedDataDir != nil && filepath.Clean(c.dataDir) != filepath.Clean(c.lockedDataDir.path) {
		return fmt.Errorf("processor: data dir %s is not the locked data dir %s: pass one of WithDataDir and WithLockedDataDir", c.dataDir, c.lockedDataDir.path)
	}
	return nil
}

// lockDataDir returns the processor's data directory, locked, and the
// function that releases what it locked; nil and a no-op without a data
// directory.
func (p *Processor) lockDataDir() (*DataDir, func(), error) {
	if p.cfg.lockedDataDir != nil {
		return p.cfg.lockedDataDir, func() {}, nil
	}
	if p.cfg.dataDir == "" {
		return nil, func() {}, nil
	}
	d, err := LockDataDir(p.cfg.dataDir)
	if err != nil {
		return nil, nil, err
	}
	return d, func() { _ = d.Unlock() }, nil
}

// newInstanceID returns a random instance id.
func newInstanceID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

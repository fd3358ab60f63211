//go:build !unix

package embedded

import (
	"errors"
	"os"
	"syscall"
)

// errLocked is returned by lockFile when another open file holds the lock.
var errLocked = errors.New("embedded: data dir locked")

// lockFile is not implemented here: a data dir cannot be locked.
func lockFile(*os.File) error {
	return errors.New("embedded: locking the data dir is not supported on this system")
}

func childSysProcAttr() *syscall.SysProcAttr { return nil }

func selfExe(exe string) string { return exe }

func terminate(p *os.Process) error { return p.Kill() }

func stopSignals() []os.Signal { return []os.Signal{os.Interrupt} }

func ignoreSIGPIPE() {}

//go:build unix

package embedded

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// errLocked is returned by lockFile when another open file holds the lock.
var errLocked = errors.New("embedded: data dir locked")

// lockFile takes an exclusive flock on f without waiting.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		default:
			return err
		}
	}
}

// terminate asks a child to stop.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// stopSignals are the signals that make a child stop its broker.
func stopSignals() []os.Signal {
	return []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}
}

func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }

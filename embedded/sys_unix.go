//go:build unix

package embedded

import (
	"os"
	"os/signal"
	"syscall"
)

// terminate asks a child to stop.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// stopSignals are the signals that make a child stop its broker.
func stopSignals() []os.Signal {
	return []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}
}

func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }

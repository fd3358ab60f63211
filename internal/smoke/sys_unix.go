//go:build unix && !linux

package smoke

import "syscall"

// workerSysProcAttr puts a worker in its own process group, so that a
// Ctrl-C in a terminal reaches only the driver, which stops the workers
// itself. A worker of a driver that dies stops when its standard input
// closes.
func workerSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

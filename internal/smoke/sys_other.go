//go:build !unix

package smoke

import "syscall"

// workerSysProcAttr returns nil: a worker of a driver that dies stops when
// its standard input closes.
func workerSysProcAttr() *syscall.SysProcAttr { return nil }

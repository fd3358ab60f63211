package embedded

import (
	"os"
	"syscall"
)

// childSysProcAttr puts the child in its own process group, so that a
// Ctrl+C in a terminal reaches only the parent, and has the kernel send it
// SIGTERM when the parent dies.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// selfExe returns what to execute to run this binary again: /proc/self/exe
// still works when the file was replaced or deleted since we started.
func selfExe(exe string) string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe"
	}
	return exe
}

//go:build unix && !linux

package embedded

import "syscall"

// childSysProcAttr puts the child in its own process group, so that a
// Ctrl+C in a terminal reaches only the parent. There is no parent death
// signal outside Linux; the child relies on its pipe alone.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func selfExe(exe string) string { return exe }

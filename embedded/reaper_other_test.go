//go:build unix && !linux

package embedded

import "syscall"

func becomeSubreaper() bool { return false }

func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

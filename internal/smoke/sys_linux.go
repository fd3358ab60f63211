package smoke

import "syscall"

// workerSysProcAttr puts a worker in its own process group, so that a
// Ctrl-C in a terminal reaches only the driver (which stops the workers
// itself), and has the kernel kill it when the driver dies.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

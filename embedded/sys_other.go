//go:build !unix

package embedded

import (
	"os"
	"syscall"
)

func childSysProcAttr() *syscall.SysProcAttr { return nil }

func selfExe(exe string) string { return exe }

func terminate(p *os.Process) error { return p.Kill() }

func stopSignals() []os.Signal { return []os.Signal{os.Interrupt} }

func ignoreSIGPIPE() {}

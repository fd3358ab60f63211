//go:build !linux

package bench

import "time"

// childrenCPU is not measured on this platform.
func childrenCPU() time.Duration { return -1 }

// machineCPU is not measured on this platform.
func machineCPU() time.Duration { return -1 }

//go:build !linux

package bench

import "time"

// childrenCPU is not measured on this platform.
func childrenCPU() time.Duration { return -1 }

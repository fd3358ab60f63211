package bench

import (
	"crypto/sha256"
	"sync/atomic"
	"time"
)

// Work per message (Config.Work): a function that costs CPU time of its
// own, as real functions do, so that what stream threads buy shows where
// the invocations, not the Kafka clients, are the bottleneck.

// workSink keeps the compiler from dropping burn's hashing.
var workSink atomic.Uint32

// burn hashes a 32-byte buffer rounds times with SHA-256.
func burn(rounds int) {
	if rounds <= 0 {
		return
	}
	var h [32]byte
	for range rounds {
		h = sha256.Sum256(h[:])
	}
	workSink.Add(uint32(h[0]))
}

// calibrateWork returns the rounds of burn that take about d of CPU time
// on this machine, measured by this process's CPU time (not the wall
// clock, which other processes stretch); 0 for d <= 0.
func calibrateWork(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	const probe = 50_000
	c0, w0 := processCPU(), time.Now()
	burn(probe)
	per := (processCPU() - c0) / probe
	if per <= 0 { // no CPU clock: the wall clock
		per = time.Since(w0) / probe
	}
	return max(1, int(d/max(per, time.Nanosecond)))
}

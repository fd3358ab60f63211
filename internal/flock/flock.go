// Package flock takes exclusive advisory locks on open files with flock(2).
// Such a lock belongs to the open file: it is released when the last
// descriptor of that file is closed, which the kernel does when the
// process ends in any way, kill -9 included. Two opens of one file, in one
// process or in two, conflict.
package flock

import "errors"

// ErrHeld is returned by TryLock when another open file holds the lock.
var ErrHeld = errors.New("flock: locked by another open file")

// ErrUnsupported is returned by TryLock on systems without flock.
var ErrUnsupported = errors.New("flock: file locks are not supported on this system")

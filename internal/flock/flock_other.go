//go:build !unix

package flock

import "os"

// TryLock returns ErrUnsupported: there is no flock here.
func TryLock(*os.File) error { return ErrUnsupported }

//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package boltdb

import (
	"context"
	"os"
	"time"
)

// lockFile leaves locking to bbolt (LockFileEx, fcntl) on platforms without
// flock. The empty-file check in Open then runs before the lock is held, so
// two processes creating the same store at the same instant may see each
// other's not-yet-initialised file as empty.
func lockFile(ctx context.Context, f *os.File, exclusive bool, timeout time.Duration) error {
	return nil
}

// unlockFile is a no-op: bbolt's own lock here goes with the file handle.
func unlockFile(f *os.File) {}

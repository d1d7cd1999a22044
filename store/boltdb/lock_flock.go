//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package boltdb

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// lockRetry is how often lockFile polls a lock held elsewhere; flock has no
// blocking wait with a timeout.
const lockRetry = 20 * time.Millisecond

// lockFile takes an flock on f (exclusive for a writer, shared for a reader)
// before bbolt looks at the file, waiting up to timeout or until ctx is done.
// bbolt's own flock on the same descriptor then succeeds at once. The lock
// belongs to the open file description, so a second Open in the same process
// conflicts like another process would.
func lockFile(ctx context.Context, f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH | syscall.LOCK_NB
	if exclusive {
		how = syscall.LOCK_EX | syscall.LOCK_NB
	}
	fd := int(f.Fd())
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(fd, how)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errLockTimeout
		}
		t := time.NewTimer(min(lockRetry, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// unlockFile drops the lock explicitly. Closing f alone is not enough after
// bbolt panicked in Open: its leftover mapping keeps the open file
// description, and with it the flock, alive.
func unlockFile(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

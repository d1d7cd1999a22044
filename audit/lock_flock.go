//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockWait bounds how long lockFile retries a held lock. A live second
// writer holds it for as long as it runs, so a short wait still reports it;
// but between fork and exec a child process briefly shares every open file
// description, this lock included, and a passman process that starts
// subprocesses (a rotation hook, a test) must not make a concurrent Open fail.
const lockWait = time.Second

// lockFile takes an exclusive advisory lock on f, released when f is closed.
// Two Logs appending to one file would both chain onto the same head and fork
// the chain, so the second Open fails instead.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		var lerr error
		if err := rc.Control(func(fd uintptr) {
			lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		}); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		switch {
		case lerr == nil:
			return nil
		case !errors.Is(lerr, syscall.EWOULDBLOCK):
			return fmt.Errorf("lock: %w", lerr)
		case time.Now().After(deadline):
			return errors.New("log is open for appending elsewhere (locked)")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

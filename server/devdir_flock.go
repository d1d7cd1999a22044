//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDevDir takes the dev directory's lock for the life of the process
// (the file stays open until cleanup closes it). The lock file is locked
// and holds the pid before it is renamed into place, so a sweeper never
// sees it unlocked while its owner lives.
func lockDevDir(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".lock-")
	if err != nil {
		return nil, fmt.Errorf("dev lock: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		return nil, errors.Join(fmt.Errorf("dev lock: %w", err), f.Close(), os.Remove(f.Name()))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	if _, err := fmt.Fprintf(f, "%d\n", os.Getpid()); err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, devLockFile)); err != nil {
		return fail(err)
	}
	return f, nil
}

// tryLock takes an exclusive flock on the regular file path if nobody
// holds one; release drops it.
func tryLock(path string) (release func(), ok bool) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

//go:build linux

package server

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/passman-dev/passman/keyring"
)

// hardenProcess keeps the server's secrets out of reach of the programs it
// starts (exec connections, git): it removes the master key from the
// environment once the store has read it, and marks the process
// non-dumpable, so that a child running as the same user cannot read
// /proc/<server>/environ (which keeps the environment the process started
// with, whatever Unsetenv does) or its memory.
func hardenProcess() {
	_ = os.Unsetenv(keyring.EnvVar)
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}

//go:build !linux

package server

import (
	"os"

	"github.com/passman-dev/passman/keyring"
)

// hardenProcess removes the master key from the environment once the
// store has read it, so the programs the server starts do not inherit it.
func hardenProcess() { _ = os.Unsetenv(keyring.EnvVar) }

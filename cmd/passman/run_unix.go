//go:build !windows

package main

import (
	"os"
	"syscall"
)

const exeSuffix = ""

// run replaces this process with the full program: same arguments, same
// environment, same streams, and its exit code is the process's own.
func run(path string, args []string) (int, error) {
	return 0, syscall.Exec(path, append([]string{os.Args[0]}, args...), os.Environ())
}

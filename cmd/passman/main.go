// Command passman manages encrypted, versioned, audited secrets. This is
// its front: it answers the commands that need no store, server, policy or
// rotation code (--version, and scans without --index, --managed or
// --respond) itself, with the same code as the full program, and hands
// every other invocation to the full program, passman-full, installed
// beside it. Linking only the scanner keeps its executable small, so a
// scan in a pre-commit hook or a CI step starts in a few milliseconds
// and its resident memory is mostly the scan's own.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/passman-dev/passman/internal/clibase"
)

// full is the full program's name, installed beside passman.
const full = "passman-full"

func main() {
	args := os.Args[1:]
	if !clibase.Serves(args) {
		os.Exit(handOver(args))
	}
	// Cancel the context on Ctrl-C or SIGTERM so a scan stops at a safe
	// point (its cache closed), as the full program does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	s := &clibase.State{Env: clibase.OSEnv()}
	code := clibase.Run(ctx, s, clibase.NewFront(s), args)
	stop()
	os.Exit(code)
}

// handOver runs the full program with args and returns the exit code to
// leave with (on Unix it replaces this process and returns only if it
// cannot).
func handOver(args []string) int {
	path, err := findFull()
	if err != nil {
		fmt.Fprintf(os.Stderr, "passman: %v\n", err)
		return clibase.ExitUsage
	}
	code, err := run(path, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "passman: run %s: %v\n", path, err)
		return clibase.ExitFailure
	}
	return code
}

// findFull returns the full program: the one beside this executable (what
// `make build` and a release install), else the one on PATH. It is never
// this executable itself, so a misnamed copy cannot hand over in a loop.
func findFull() (string, error) {
	self, err := os.Executable()
	if err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			self = real
		}
		p := filepath.Join(filepath.Dir(self), full+exeSuffix)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return notSelf(p, self)
		}
	}
	p, err := exec.LookPath(full)
	if err != nil {
		return "", fmt.Errorf("%s, which runs every command but scans and --version, is not installed beside passman or on PATH (make build builds both; go install github.com/passman-dev/passman/cmd/%s)", full, full)
	}
	return notSelf(p, self)
}

func notSelf(p, self string) (string, error) {
	a, errA := os.Stat(p)
	b, errB := os.Stat(self)
	if errA == nil && errB == nil && os.SameFile(a, b) {
		return "", fmt.Errorf("%s is this passman front itself, not the full program (make build builds both)", p)
	}
	return p, nil
}

// Package regalserve is the passman-regal program (cmd/passman-regal):
// Regal's lint for `passman policy lint`, in a process of its own so that
// passman itself does not link Regal (see package regalexec).
package regalserve

import (
	"context"
	"fmt"
	"io"

	"github.com/passman-dev/passman/internal/regalexec"
	"github.com/passman-dev/passman/policy/regotool/regal"
)

// Main runs `passman-regal lint -- DIR`, writing a regalexec.Response to
// stdout, and returns the exit code: 0 when a response was written (a
// failed lint is a response too), 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 3 || args[0] != "lint" || args[1] != "--" {
		fmt.Fprintf(stderr, "usage: %s lint -- DIR (run by passman policy lint)\n", regalexec.Program)
		return 2
	}
	rep, err := regal.Lint(ctx, args[2])
	b, err := regalexec.Encode(rep, err)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", regalexec.Program, err)
		return 1
	}
	if _, err := stdout.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", regalexec.Program, err)
		return 1
	}
	return 0
}

// Command passman-full is the whole passman program: it manages encrypted,
// versioned, audited secrets. All of it lives in package cli; main only
// wires the process to it. The passman command users run (cmd/passman) is
// a small front that answers scans and the version itself and hands every
// other invocation to this program, found beside it; this program never
// hands anything back.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/passman-dev/passman/cli"
)

func main() {
	// Cancel the context on Ctrl-C or SIGTERM so an operation stops at a
	// safe point and the store is closed, rather than the process dying
	// mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}

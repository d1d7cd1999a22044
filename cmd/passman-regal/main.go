// Command passman-regal is `passman policy lint`'s linter: passman runs it
// from beside its own executable, so that only a lint pays Regal's
// start-up. It is not meant to be run by hand.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/passman-dev/passman/internal/regalserve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := regalserve.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

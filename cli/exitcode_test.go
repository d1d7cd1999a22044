package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/secret"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err  error
		want int
	}{
		"nil":                  {nil, clibase.ExitOK},
		"invalid path":         {secret.ErrInvalidPath, clibase.ExitUsage},
		"invalid argument":     {secret.ErrInvalidArgument, clibase.ExitUsage},
		"too large":            {secret.ErrTooLarge, clibase.ExitUsage},
		"key":                  {secret.ErrKey, clibase.ExitUsage},
		"not found":            {secret.ErrNotFound, clibase.ExitNotFound},
		"conflict":             {secret.ErrConflict, clibase.ExitFailure},
		"deleted":              {secret.ErrDeleted, clibase.ExitFailure},
		"destroyed":            {secret.ErrDestroyed, clibase.ExitFailure},
		"precondition":         {secret.ErrPrecondition, clibase.ExitFailure},
		"permission denied":    {secret.ErrPermissionDenied, clibase.ExitFailure},
		"corrupt":              {secret.ErrCorrupt, clibase.ExitFailure},
		"audit":                {secret.ErrAudit, clibase.ExitFailure},
		"tampered":             {secret.ErrTampered, clibase.ExitFailure},
		"unclassified":         {errors.New("disk on fire"), clibase.ExitFailure},
		"canceled":             {context.Canceled, clibase.ExitFailure},
		"wrapped not found":    {fmt.Errorf("get a/b: %w", fmt.Errorf("%w: secret a/b does not exist", secret.ErrNotFound)), clibase.ExitNotFound},
		"wrapped key":          {fmt.Errorf("open store: %w", secret.ErrKey), clibase.ExitUsage},
		"usage":                {clibase.UsageErrorf("bad flag"), clibase.ExitUsage},
		"usage wraps sentinel": {clibase.UsageErrorf("--stage: %w", secret.ErrInvalidArgument), clibase.ExitUsage},
		"reported":             {&clibase.ReportedError{Code: clibase.ExitFailure, Msg: "broken"}, clibase.ExitFailure},
		// A failed read whose audit entry could not be written either: the
		// audit failure is the one that matters.
		"not found and audit": {errors.Join(secret.ErrNotFound, secret.ErrAudit), clibase.ExitFailure},
		"key and tampered":    {errors.Join(secret.ErrKey, secret.ErrTampered), clibase.ExitFailure},
		"not found and close": {errors.Join(secret.ErrNotFound, errors.New("close store: boom")), clibase.ExitNotFound},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := clibase.ExitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// TestExitCodeHelp checks that the documented codes are the real ones.
func TestExitCodeHelp(t *testing.T) {
	t.Parallel()
	help := clibase.ExitCodeHelp()
	for _, code := range []int{clibase.ExitOK, clibase.ExitFailure, clibase.ExitUsage, clibase.ExitNotFound} {
		if !strings.Contains(help, "\n  "+strconv.Itoa(code)+"  ") {
			t.Errorf("exit code help does not document %d:\n%s", code, help)
		}
	}
}

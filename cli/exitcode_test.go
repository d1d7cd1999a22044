package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/passman-dev/passman/secret"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err  error
		want int
	}{
		"nil":                  {nil, ExitOK},
		"invalid path":         {secret.ErrInvalidPath, ExitUsage},
		"invalid argument":     {secret.ErrInvalidArgument, ExitUsage},
		"too large":            {secret.ErrTooLarge, ExitUsage},
		"key":                  {secret.ErrKey, ExitUsage},
		"not found":            {secret.ErrNotFound, ExitNotFound},
		"conflict":             {secret.ErrConflict, ExitFailure},
		"deleted":              {secret.ErrDeleted, ExitFailure},
		"destroyed":            {secret.ErrDestroyed, ExitFailure},
		"precondition":         {secret.ErrPrecondition, ExitFailure},
		"permission denied":    {secret.ErrPermissionDenied, ExitFailure},
		"corrupt":              {secret.ErrCorrupt, ExitFailure},
		"audit":                {secret.ErrAudit, ExitFailure},
		"tampered":             {secret.ErrTampered, ExitFailure},
		"unclassified":         {errors.New("disk on fire"), ExitFailure},
		"canceled":             {context.Canceled, ExitFailure},
		"wrapped not found":    {fmt.Errorf("get a/b: %w", fmt.Errorf("%w: secret a/b does not exist", secret.ErrNotFound)), ExitNotFound},
		"wrapped key":          {fmt.Errorf("open store: %w", secret.ErrKey), ExitUsage},
		"usage":                {usageErrorf("bad flag"), ExitUsage},
		"usage wraps sentinel": {usageErrorf("--stage: %w", secret.ErrInvalidArgument), ExitUsage},
		"reported":             {&reportedError{Code: ExitFailure, Msg: "broken"}, ExitFailure},
		// A failed read whose audit entry could not be written either: the
		// audit failure is the one that matters.
		"not found and audit": {errors.Join(secret.ErrNotFound, secret.ErrAudit), ExitFailure},
		"key and tampered":    {errors.Join(secret.ErrKey, secret.ErrTampered), ExitFailure},
		"not found and close": {errors.Join(secret.ErrNotFound, errors.New("close store: boom")), ExitNotFound},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// TestExitCodeHelp checks that the documented codes are the real ones.
func TestExitCodeHelp(t *testing.T) {
	t.Parallel()
	help := exitCodeHelp()
	for _, code := range []int{ExitOK, ExitFailure, ExitUsage, ExitNotFound} {
		if !strings.Contains(help, "\n  "+strconv.Itoa(code)+"  ") {
			t.Errorf("exit code help does not document %d:\n%s", code, help)
		}
	}
}

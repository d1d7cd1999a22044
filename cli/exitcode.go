package cli

import (
	"errors"
	"fmt"

	"github.com/passman-dev/passman/secret"
)

// Exit codes of the passman command. Scripts branch on them, so they are
// part of its interface: a code's meaning never changes, and exitCode below
// is the only place that decides which one an error gets.
const (
	// ExitOK means the command did what was asked.
	ExitOK = 0
	// ExitFailure means the command failed or found a violation: a
	// check-and-set conflict, a deleted or destroyed version, a broken or
	// unwritable audit log, corrupt data, or any unexpected error.
	ExitFailure = 1
	// ExitUsage means the command was invoked or configured wrongly: bad
	// flags or arguments, an invalid path or argument, a value that is too
	// large, or a missing, wrong or unprotected master key. Retrying the
	// same command cannot help; fixing the invocation can.
	ExitUsage = 2
	// ExitNotFound means the secret, version or store does not exist.
	ExitNotFound = 3
)

// exitCodeHelp documents the exit codes in the root command's help, next to
// the constants so the two cannot drift apart unnoticed.
func exitCodeHelp() string {
	return fmt.Sprintf(`Exit codes:
  %d  success
  %d  failure or violation (conflict, denied by policy, deleted or destroyed
     version, tampered audit log, audit verify found a break, corrupt data,
     other errors; plan: error)
  %d  usage or configuration error (bad flags or arguments, invalid path or
     argument, value too large, missing, wrong or unprotected master key)
  %d  not found (no such secret, version or store)`, ExitOK, ExitFailure, ExitUsage, ExitNotFound)
}

// usageError marks an error in how passman was invoked, as opposed to an
// error the operation itself ran into. Main adds a pointer to --help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf builds a usage error; %w verbs are kept for errors.Is.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// reportedError is a failure the command has already reported on stdout
// (audit verify's BROKEN report): Main exits with code and prints nothing
// more, so the report is not repeated on stderr.
type reportedError struct {
	code int
	msg  string
}

func (e *reportedError) Error() string { return e.msg }

// exitError forces an exit code for an error that is printed as usual:
// plan reserves 2 for "changes present", so its failures all exit 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode maps an error to the process exit code. It is the only such
// mapping, and it goes by secret.Class, whose priority order decides an
// error that wraps two classes (integrity failures win).
func exitCode(err error) int {
	var ue *usageError
	var re *reportedError
	var xe *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &re):
		return re.code
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		return ExitUsage
	}
	switch secret.Class(err) {
	case "invalid_path", "invalid_argument", "too_large", "key":
		return ExitUsage
	case "not_found":
		return ExitNotFound
	default:
		// audit, tampered, corrupt, conflict, deleted, destroyed,
		// failed_precondition, permission_denied and anything unexpected.
		return ExitFailure
	}
}

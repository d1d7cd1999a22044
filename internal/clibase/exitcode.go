package clibase

import (
	"errors"
	"fmt"

	"github.com/passman-dev/passman/secret"
)

// Exit codes of the passman command. Scripts branch on them, so they are
// part of its interface: a code's meaning never changes, and ExitCode below
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

// ExitCodeHelp documents the exit codes in the root command's help, next to
// the constants so the two cannot drift apart unnoticed.
func ExitCodeHelp() string {
	return fmt.Sprintf(`Exit codes:
  %d  success
  %d  failure or violation (conflict, denied by policy, deleted or destroyed
     version, tampered audit log, audit verify found a break, corrupt data,
     other errors; plan: error)
  %d  usage or configuration error (bad flags or arguments, invalid path or
     argument, value too large, missing, wrong or unprotected master key)
  %d  not found (no such secret, version or store)`, ExitOK, ExitFailure, ExitUsage, ExitNotFound)
}

// UsageError marks an error in how passman was invoked, as opposed to an
// error the operation itself ran into. Main adds a pointer to --help.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// UsageErrorf builds a usage error; %w verbs are kept for errors.Is.
func UsageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ReportedError is a failure the command has already reported on stdout
// (audit verify's BROKEN report): Main exits with code and prints nothing
// more, so the report is not repeated on stderr.
type ReportedError struct {
	Code int
	Msg  string
}

func (e *ReportedError) Error() string { return e.Msg }

// ExitError forces an exit code for an error that is printed as usual:
// plan reserves 2 for "changes present", so its failures all exit 1.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error to the process exit code. It is the only such
// mapping, and it goes by secret.Class, whose priority order decides an
// error that wraps two classes (integrity failures win).
func ExitCode(err error) int {
	var ue *UsageError
	var re *ReportedError
	var xe *ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &re):
		return re.Code
	case errors.As(err, &xe):
		return xe.Code
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

package secret

import "errors"

// Sentinel errors a caller branches on with errors.Is. Every error returned by
// a Service wraps at most one of them; Class names it for audit entries, exit
// codes and API responses.
var (
	ErrInvalidPath      = errors.New("invalid path")
	ErrInvalidArgument  = errors.New("invalid argument")
	ErrTooLarge         = errors.New("too large")
	ErrNotFound         = errors.New("not found")
	ErrConflict         = errors.New("conflict")
	ErrDeleted          = errors.New("version is deleted")
	ErrDestroyed        = errors.New("version is destroyed")
	ErrPrecondition     = errors.New("failed precondition")
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnauthenticated means the caller could not be identified: no
	// credentials, or a token that is unknown, expired or revoked.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrKey covers a missing, wrong or unusable master key.
	ErrKey = errors.New("master key error")
	// ErrCorrupt means stored data failed an integrity check.
	ErrCorrupt = errors.New("corrupt data")
	// ErrAudit means an audit entry could not be written; the operation was
	// not performed (fail closed).
	ErrAudit = errors.New("audit log unavailable")
	// ErrTampered means the audit log's hash chain does not verify.
	ErrTampered = errors.New("audit log tampered")
)

// classes is in priority order: an operation can fail twice (a read of a
// missing secret whose audit entry could not be written, joined into one
// error), and then the more serious failure names it. Integrity failures
// come first.
var classes = []struct {
	err  error
	name string
}{
	{ErrAudit, "audit"},
	{ErrTampered, "tampered"},
	{ErrCorrupt, "corrupt"},
	{ErrKey, "key"},
	{ErrUnauthenticated, "unauthenticated"},
	{ErrPermissionDenied, "permission_denied"},
	{ErrInvalidPath, "invalid_path"},
	{ErrInvalidArgument, "invalid_argument"},
	{ErrTooLarge, "too_large"},
	{ErrNotFound, "not_found"},
	{ErrConflict, "conflict"},
	{ErrDeleted, "deleted"},
	{ErrDestroyed, "destroyed"},
	{ErrPrecondition, "failed_precondition"},
}

// Class returns a stable, machine-readable name for err's kind: "" for nil,
// "internal" for an error that wraps none of the sentinels.
func Class(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "internal"
}

// ClassError returns the sentinel for a class name, so a remote client can
// rebuild an error that errors.Is recognises. Unknown names return nil.
func ClassError(name string) error {
	for _, c := range classes {
		if c.name == name {
			return c.err
		}
	}
	return nil
}

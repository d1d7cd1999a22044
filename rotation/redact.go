package rotation

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// Redaction of values from error text, for the engine and every connector.

const redactedText = "[redacted]"

// redactString replaces every occurrence of the secrets in s, longest
// first so that a secret containing another is replaced whole.
func redactString(s string, secrets ...[]byte) string {
	sorted := make([][]byte, 0, len(secrets))
	for _, b := range secrets {
		if len(b) > 0 {
			sorted = append(sorted, b)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, b := range sorted {
		s = strings.ReplaceAll(s, string(b), redactedText)
	}
	return s
}

// redactedError is an error whose text had secrets removed. It does not
// unwrap to the original (whose text holds them), but errors.Is still
// sees the original's sentinels.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.cause, target) }

// redactError returns err unchanged unless its text holds one of the
// secrets (which a remote server echoing a request could cause); then it
// returns a redacted copy.
func redactError(err error, secrets ...[]byte) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := redactString(msg, secrets...); red != msg {
		return &redactedError{msg: red, cause: err}
	}
	return err
}

// scrub replaces any of values in a connector's error text with
// [redacted] and bounds its length: connectors must not put values in
// errors, and this makes sure a careless one cannot put them in the store.
// Values under 4 bytes are left alone: they would blank out ordinary words.
func scrub(msg string, values ...secret.Value) string {
	var secrets [][]byte
	for _, v := range values {
		if b := v.Reveal(); len(b) >= 4 {
			secrets = append(secrets, b)
		}
	}
	msg = redactString(msg, secrets...)
	if len(msg) > 1000 {
		msg = strings.ToValidUTF8(msg[:1000], "") + "…"
	}
	return msg
}

// netCause says why a connection failed without naming where it went
// (a connection's endpoint is its configuration, and connector errors
// become the rotation's status, which the secret's readers see): the system call's error ("connection refused"), a name lookup
// failure, or a timeout.
func netCause(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &dnsErr):
		return "host name lookup failed"
	case errors.As(err, &opErr):
		var sysErr *os.SyscallError
		if errors.As(opErr.Err, &sysErr) {
			return sysErr.Err.Error()
		}
		return opErr.Op + " failed"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	}
	return "could not be reached (details withheld: they name the connection's endpoint)"
}

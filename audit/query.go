package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/passman-dev/passman/secret"
)

// Filter selects entries for Read and Tail. Its conditions are ANDed and a
// zero field matches everything, so the zero Filter matches every entry.
type Filter struct {
	// Path matches entries for exactly this secret path.
	Path string
	// PathPrefix matches entries whose path starts with it.
	PathPrefix string
	// Actor matches entries by this actor.
	Actor string
	// Action matches entries for this action, such as "secret.put".
	Action string
	// Outcome matches entries with this outcome.
	Outcome Outcome
	// Since matches entries at or after it.
	Since time.Time
	// Until matches entries before it.
	Until time.Time
}

func (f *Filter) match(e *Entry) bool {
	return (f.Path == "" || e.Path == f.Path) &&
		strings.HasPrefix(e.Path, f.PathPrefix) &&
		(f.Actor == "" || e.Actor == f.Actor) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Outcome == "" || e.Outcome == f.Outcome) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until))
}

func (f *Filter) validate() error {
	if f.Outcome != "" && !f.Outcome.valid() {
		return fmt.Errorf("%w: unknown outcome %q in audit filter", secret.ErrInvalidArgument, f.Outcome)
	}
	return nil
}

// Read calls fn, in log order, for each entry of the log at path that matches
// f. It checks the chain as it goes (but not against an anchor: that is
// Verify's job) and stops at the first line that breaks it with an error
// wrapping secret.ErrTampered that names the line; entries before that line
// have already been passed to fn. A final line without a newline is an append
// in progress or a torn write that Open will remove, never an acknowledged
// entry, so Read ends before it. If fn returns an error, Read stops and
// returns it unchanged.
func Read(ctx context.Context, path string, f Filter, fn func(Entry) error) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer file.Close() // read-only: a close error loses nothing
	return scan(ctx, file, func(e Entry) error {
		if !f.match(&e) {
			return nil
		}
		return fn(e)
	})
}

// Tail returns the last n entries of the log at path that match f, oldest
// first. It reads the whole log, checking it as Read does, but holds only n
// entries at a time. n must be positive.
func Tail(ctx context.Context, path string, n int, f Filter) ([]Entry, error) {
	if n <= 0 {
		return nil, fmt.Errorf("tail audit log: %w: n must be positive, got %d", secret.ErrInvalidArgument, n)
	}
	// A ring buffer: grown up to n on demand, since n may be far larger than
	// the log, then overwritten oldest first.
	var ring []Entry
	next := 0
	err := Read(ctx, path, f, func(e Entry) error {
		if len(ring) < n {
			ring = append(ring, e)
			return nil
		}
		ring[next] = e
		next = (next + 1) % n
		return nil
	})
	if err != nil {
		return nil, err // already says "read audit log"
	}
	// Rotate so the oldest entry comes first.
	out := make([]Entry, 0, len(ring))
	out = append(out, ring[next:]...)
	return append(out, ring[:next]...), nil
}

// scan calls fn with each entry read from r, checking the chain.
func scan(ctx context.Context, r io.Reader, fn func(Entry) error) error {
	lr := newLineReader(r)
	var c chain
	for {
		if lr.line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("read audit log: %w", err)
			}
		}
		line, err := lr.next()
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, errTorn):
			return nil
		case errors.Is(err, errLineTooLong):
			return fmt.Errorf("read audit log: line %d: malformed entry: line exceeds %d bytes: %w", lr.line, maxLine, secret.ErrTampered)
		case err != nil:
			return fmt.Errorf("read audit log: line %d: %w", lr.line+1, err)
		}
		e, reason := c.add(line)
		if reason != "" {
			return fmt.Errorf("read audit log: line %d: %s: %w", lr.line, reason, secret.ErrTampered)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

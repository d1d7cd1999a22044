package audit

import (
	"bytes"
	"context"
	"fmt"

	"github.com/passman-dev/passman/secret"
)

// Reservation holds the end of a log's chain for entries whose operation
// may still fail: they are sealed (their Seq and Hash are final, so a
// transaction can record them and the head they make) but written to the
// file only by Commit. Abort drops them as if they were never sealed. While
// a reservation is open, other appends wait for it to end, since their
// entries would chain onto the reserved ones.
//
// This is how a change whose commit can fail on a conflict with another
// writer (store/etcd's optimistic transactions) is audited: its entry goes
// into the log only if the commit succeeded, so a failed attempt that is
// run again leaves one entry, not two.
type Reservation struct {
	l       *Log
	prev    Head // the chain's tip when the reservation was taken
	head    Head // the last reserved entry (prev while there is none)
	lines   []byte
	entries []Entry
	// ends[i] is where entry i's line ends in lines.
	ends  []int
	ended bool
}

// Reserve waits until no other reservation is open and opens one. The
// caller must end it with Commit or Abort, soon: every append waits.
func (l *Log) Reserve(ctx context.Context) (*Reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.reserved {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reserve audit entries: %w: %w", secret.ErrAudit, err)
		}
		l.released.Wait()
	}
	if err := l.usable(); err != nil {
		return nil, err
	}
	l.reserved = true
	return &Reservation{l: l, prev: l.head, head: l.head}, nil
}

// Prev is the chain's tip the reserved entries follow.
func (r *Reservation) Prev() Head { return r.prev }

// Seal seals e as the next entry after those reserved so far, as Append
// would, and keeps it until Commit.
func (r *Reservation) Seal(e Entry) (Entry, error) {
	if r.ended {
		return Entry{}, fmt.Errorf("append audit entry: %w: reservation has ended", secret.ErrAudit)
	}
	if !e.Outcome.valid() {
		return Entry{}, fmt.Errorf("append audit entry: %w: invalid outcome %q", secret.ErrAudit, e.Outcome)
	}
	if err := sanitize(&e); err != nil {
		return Entry{}, fmt.Errorf("append audit entry: %w: %w", secret.ErrAudit, err)
	}
	e.Seq = r.head.Seq + 1
	e.PrevHash = r.head.Hash
	if e.Seq == 1 {
		e.PrevHash = genesisHash
	}
	if e.Time.IsZero() {
		e.Time = r.l.now()
	}
	e.Time = e.Time.UTC()
	n0 := len(r.lines)
	lines, err := seal(r.lines, &e)
	if err != nil {
		return Entry{}, fmt.Errorf("append audit entry: %w: encode: %w", secret.ErrAudit, err)
	}
	if n := len(lines) - n0 - 1; n > MaxEntrySize {
		return Entry{}, fmt.Errorf("append audit entry: %w: entry is %d bytes encoded, limit %d", secret.ErrAudit, n, MaxEntrySize)
	}
	r.lines = lines
	r.head = Head{Seq: e.Seq, Hash: e.Hash}
	r.entries = append(r.entries, e)
	r.ends = append(r.ends, len(lines))
	return e, nil
}

// Entries are the entries sealed so far, in order.
func (r *Reservation) Entries() []Entry { return r.entries }

// Lines are the entries' lines as the log will hold them, newline
// included, in order: what a replica stores, without encoding them again.
func (r *Reservation) Lines() [][]byte {
	out := make([][]byte, len(r.ends))
	start := 0
	for i, end := range r.ends {
		out[i] = r.lines[start:end:end]
		start = end
	}
	return out
}

// Commit appends the reserved entries to the log and ends the reservation;
// they are written with the next flush (Sync, or any Append's). Committing
// an ended reservation does nothing.
func (r *Reservation) Commit() error {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.ended {
		return nil
	}
	r.ended = true
	l.reserved = false
	defer l.released.Broadcast()
	if err := l.usable(); err != nil {
		return err
	}
	l.pending = append(l.pending, r.lines...)
	l.head = r.head
	return nil
}

// Abort ends the reservation, dropping its entries. Aborting an ended
// reservation does nothing.
func (r *Reservation) Abort() {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	l.reserved = false
	l.released.Broadcast()
}

// usable reports whether entries may be appended. l.mu is held.
func (l *Log) usable() error {
	if l.f == nil {
		return fmt.Errorf("append audit entry: %w: log is closed", secret.ErrAudit)
	}
	if l.failed != nil {
		return fmt.Errorf("append audit entry: %w: log failed earlier and must be reopened: %w", secret.ErrAudit, l.failed)
	}
	return nil
}

// Adopt appends entries sealed elsewhere, lines of the log's format each
// ending in a newline, after checking that they continue the chain from
// its tip: a copy of the log (a replica in a shared store) that holds
// entries this file lost in a crash gives them back. It syncs them (as
// SyncMode says) before it returns. Lines that do not continue the chain
// are refused with an error wrapping secret.ErrTampered, and nothing is
// appended.
func (l *Log) Adopt(ctx context.Context, lines [][]byte) (Head, error) {
	if err := ctx.Err(); err != nil {
		return Head{}, fmt.Errorf("adopt audit entries: %w: %w", secret.ErrAudit, err)
	}
	l.mu.Lock()
	for l.reserved {
		l.released.Wait()
	}
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return Head{}, err
	}
	c := chain{head: l.head}
	var buf []byte
	for _, line := range lines {
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > maxLine {
			l.mu.Unlock()
			return Head{}, fmt.Errorf("adopt audit entries: entry %d: line longer than %d bytes: %w", c.head.Seq+1, maxLine, secret.ErrTampered)
		}
		if _, reason := c.add(line); reason != "" {
			l.mu.Unlock()
			return Head{}, fmt.Errorf("adopt audit entries: entry %d: %s: %w", c.head.Seq+1, reason, secret.ErrTampered)
		}
		buf = append(append(buf, line...), '\n')
	}
	l.pending = append(l.pending, buf...)
	l.head = c.head
	head := c.head
	l.mu.Unlock()
	if err := l.flush(head.Seq, true); err != nil {
		return Head{}, fmt.Errorf("adopt audit entries: %w", err)
	}
	return head, nil
}

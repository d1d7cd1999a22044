package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/secret"
)

// SyncMode chooses when an appended entry counts as written; see the package
// documentation under Durability.
type SyncMode string

// The sync modes.
const (
	// SyncFsync returns from Append after fsync: entries survive an OS crash
	// or power loss.
	SyncFsync SyncMode = "fsync"
	// SyncWrite returns from Append after write(2): entries survive a crash of
	// the process only, in exchange for much faster appends.
	SyncWrite SyncMode = "write"
)

// ParseSyncMode validates a sync mode name from configuration. The empty
// string means the default, SyncFsync.
func ParseSyncMode(s string) (SyncMode, error) {
	switch m := SyncMode(s); m {
	case SyncFsync, SyncWrite:
		return m, nil
	case "":
		return SyncFsync, nil
	}
	return "", fmt.Errorf("%w: unknown audit sync mode %q (want %q or %q)", secret.ErrInvalidArgument, s, SyncFsync, SyncWrite)
}

// Options configures Open.
type Options struct {
	// Sync is when an entry counts as written; "" means SyncFsync.
	Sync SyncMode
	// Now supplies entry times; nil means time.Now. It exists for tests.
	Now func() time.Time
}

// Log appends entries to one audit log file. It is safe for concurrent use.
type Log struct {
	path string
	mode SyncMode
	now  func() time.Time

	mu sync.Mutex
	f  *os.File // nil once closed
	// head is the chain's tip: the last entry sealed. Its line and those
	// before it not yet written wait in pending.
	head    Head
	pending []byte
	spare   []byte // the buffer pending had before the last flush, reused
	// written is the last entry written to the file; durable the last that
	// counts as written (see SyncMode): written itself in SyncWrite mode,
	// the last fsynced entry in SyncFsync.
	written Head
	durable Head
	failed  error // first write or sync error; sticky, see Append

	// flushing is set while an appender leads a flush (see flush): one at
	// a time, so the lines in the file stay in Seq order. flushed, on mu,
	// is broadcast when a flush ends.
	flushing bool
	flushed  sync.Cond

	// reserved is set while a Reservation holds the chain's tip; released,
	// on mu, is broadcast when it ends.
	reserved bool
	released sync.Cond
}

// Open opens the log at path for appending, creating it with mode 0600 if it
// does not exist (its directory must). It recovers the chain head from the
// last complete line, reading only the end of the file. Where flock exists
// it holds an exclusive lock on the file until Close, so a second Open of the
// same file, here or in another process, fails.
//
// If the file ends in a partial line, the remains of a write torn by a crash,
// Open truncates it away: Append never acknowledged it. If the last complete
// line is not a valid entry, Open fails with an error wrapping
// secret.ErrTampered, so nothing is ever chained onto a broken log. Other
// failures wrap secret.ErrAudit.
func Open(ctx context.Context, path string, opts Options) (*Log, error) {
	mode, err := ParseSyncMode(string(opts.Sync))
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open audit log: %w: %w", secret.ErrAudit, err)
	}
	f, created, err := openFile(path)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w: %w", secret.ErrAudit, err)
	}
	head, err := prepare(f, created, mode)
	if err != nil {
		_ = f.Close() // the error from prepare is the one that matters
		if errors.Is(err, secret.ErrTampered) {
			return nil, fmt.Errorf("open audit log %s: %w", path, err)
		}
		return nil, fmt.Errorf("open audit log %s: %w: %w", path, secret.ErrAudit, err)
	}
	l := &Log{path: path, mode: mode, now: now, f: f, head: head, written: head, durable: head}
	l.flushed.L = &l.mu
	l.released.L = &l.mu
	return l, nil
}

// openFile opens path for reading and appending, reporting whether it created
// the file. One descriptor serves both, so the file whose tail Open reads is
// the file it appends to.
func openFile(path string) (f *os.File, created bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	return f, false, err
}

func prepare(f *os.File, created bool, mode SyncMode) (Head, error) {
	// Lock before taking the size: a writer that held the lock until just
	// now may have appended after an earlier Stat, and recovering from a
	// stale size would fork the chain.
	if err := lockFile(f); err != nil {
		return Head{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return Head{}, err
	}
	if !fi.Mode().IsRegular() {
		return Head{}, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if created && mode == SyncFsync {
		// The new directory entry must be durable too, or a power loss could
		// lose the whole file along with entries acknowledged as synced.
		if err := fsx.SyncDir(filepath.Dir(f.Name())); err != nil {
			return Head{}, err
		}
	}
	return recoverHead(f, fi.Size())
}

// recoverHead finds the last complete line of f, truncating a torn partial
// line after it, and returns its entry as the head. Lines are bounded, so it
// reads one bounded window from the end however large the log is.
func recoverHead(f *os.File, size int64) (Head, error) {
	if size == 0 {
		return Head{}, nil
	}
	// Room for a torn partial line (at most MaxEntrySize bytes: a complete
	// write of an entry ends in '\n'), one complete line and its newline, and
	// the newline before it.
	const window = MaxEntrySize + maxLine + 2
	off := max(0, size-window)
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return Head{}, fmt.Errorf("read end of log: %w", err)
	}
	if buf[len(buf)-1] != '\n' {
		nl := bytes.LastIndexByte(buf, '\n')
		if partial := len(buf) - (nl + 1); partial > MaxEntrySize {
			return Head{}, fmt.Errorf("final line has no newline and is longer than any entry (%d bytes), so it is not a torn write: %w", partial, secret.ErrTampered)
		}
		buf = buf[:nl+1]
		if err := f.Truncate(off + int64(len(buf))); err != nil {
			return Head{}, fmt.Errorf("truncate torn final line: %w", err)
		}
		// Make the repair durable before anything is appended after it.
		if err := f.Sync(); err != nil {
			return Head{}, fmt.Errorf("truncate torn final line: %w", err)
		}
		if len(buf) == 0 {
			return Head{}, nil
		}
	}
	body := buf[:len(buf)-1]
	start := bytes.LastIndexByte(body, '\n') + 1
	line := body[start:]
	if (start == 0 && off > 0) || len(line) > maxLine {
		return Head{}, fmt.Errorf("last line is longer than %d bytes: %w", maxLine, secret.ErrTampered)
	}
	e, reason := decodeLine(line)
	if reason == "" {
		reason = checkSeal(line, &e)
	}
	if reason == "" && e.Seq == 0 {
		reason = "seq 0"
	}
	if reason != "" {
		return Head{}, fmt.Errorf("last entry, at byte %d: %s: %w", off+int64(start), reason, secret.ErrTampered)
	}
	return Head{Seq: e.Seq, Hash: e.Hash}, nil
}

// Append writes e as the next entry and returns it as stored. It sets Seq,
// PrevHash and Hash (ignoring any values in e), sets Time to Now if it is
// zero, converts Time to UTC, and replaces invalid UTF-8 in strings with
// U+FFFD. e.Outcome must be one of the Outcome constants and the encoded
// entry at most MaxEntrySize bytes.
//
// The entry counts as written when Append returns nil; see SyncMode. Any
// error wraps secret.ErrAudit and means the operation being audited must not
// proceed. A failed write or sync leaves the Log failed, so this and every
// later call fail until the file is reopened; the entry, or part of it, may
// nonetheless be in the file, and so may whole entries of other appenders
// that failed with it (their lines went out in the same write).
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	return l.append(ctx, e, true)
}

// AppendDeferred is Append without the fsync: the entry is written, and
// becomes durable at the next Sync. A caller that commits several changes
// at once (a database group commit) appends each entry with AppendDeferred
// and calls Sync once before the commit, paying one fsync instead of one per
// entry. Until Sync returns nil the entry counts as written only in the
// SyncWrite sense.
func (l *Log) AppendDeferred(ctx context.Context, e Entry) (Entry, error) {
	return l.append(ctx, e, false)
}

// Sync makes every entry appended so far durable: an fsync in SyncFsync mode
// (skipped when nothing was appended since the last one), nothing in
// SyncWrite mode. A failed sync leaves the Log failed, as in Append.
func (l *Log) Sync() error {
	l.mu.Lock()
	seq := l.head.Seq
	l.mu.Unlock()
	return l.flush(seq, true)
}

// Flush writes every entry appended so far to the file, without the fsync
// Sync adds: they survive a crash of the process, not yet one of the
// machine, and do not yet count in Head in SyncFsync mode. It is for a
// caller that holds the entries durably elsewhere (a cluster's store) and
// syncs later. A failed write leaves the Log failed, as in Append.
func (l *Log) Flush() error {
	l.mu.Lock()
	seq := l.head.Seq
	l.mu.Unlock()
	return l.flush(seq, false)
}

// flush returns once entry seq is written and, with fsync in SyncFsync
// mode, durable. One appender at a time leads a flush: it writes every line
// sealed so far in one write(2) and fsyncs once, while the lines of others
// pile up in pending for the next flush (group commit). Waiters sleep on
// flushed and all wake when a flush ends: those it covered return at once
// and one of the rest leads the next, so a server's concurrent reads share
// write calls and fsyncs and none waits out a flush it was not part of.
func (l *Log) flush(seq uint64, fsync bool) error {
	fsync = fsync && l.mode == SyncFsync
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		switch {
		case l.f == nil:
			return fmt.Errorf("write audit log: %w: log is closed", secret.ErrAudit)
		case l.failed != nil:
			return fmt.Errorf("write audit log: %w: log failed earlier and must be reopened: %w", secret.ErrAudit, l.failed)
		case l.durable.Seq >= seq || l.written.Seq >= seq && !fsync:
			return nil
		case l.flushing:
			l.flushed.Wait()
			continue
		}
		if err := l.lead(fsync); err != nil {
			return err
		}
	}
}

// lead runs one flush, with mu held on entry and exit but not during I/O.
func (l *Log) lead(fsync bool) error {
	l.flushing = true
	defer l.flushed.Broadcast()
	defer func() { l.flushing = false }()
	f := l.f
	if l.written.Seq < l.head.Seq {
		batch, target := l.pending, l.head
		l.pending = l.spare[:0]
		l.mu.Unlock()
		// One write call for the batch: a crash tears at most its last
		// line, which Open removes.
		_, err := f.Write(batch)
		l.mu.Lock()
		l.spare = batch
		if err != nil {
			l.failed = err
			return fmt.Errorf("write audit log: %w: %w", secret.ErrAudit, err)
		}
		l.written = target
		if l.mode != SyncFsync {
			l.durable = target
		}
	}
	if !fsync || l.durable.Seq >= l.written.Seq {
		return nil
	}
	// Lines sealed while the fsync runs wait for the next flush.
	target := l.written
	l.mu.Unlock()
	err := f.Sync()
	l.mu.Lock()
	if err != nil {
		l.failed = err
		return fmt.Errorf("sync audit log: %w: %w", secret.ErrAudit, err)
	}
	if target.Seq > l.durable.Seq {
		l.durable = target
	}
	return nil
}

func (l *Log) append(ctx context.Context, e Entry, sync bool) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("append audit entry: %w: %w", secret.ErrAudit, err)
	}
	if !e.Outcome.valid() {
		return Entry{}, fmt.Errorf("append audit entry: %w: invalid outcome %q", secret.ErrAudit, e.Outcome)
	}
	if err := sanitize(&e); err != nil {
		return Entry{}, fmt.Errorf("append audit entry: %w: %w", secret.ErrAudit, err)
	}
	e, err := l.seal(e)
	if err != nil {
		return Entry{}, err
	}
	if err := l.flush(e.Seq, sync); err != nil {
		return Entry{}, fmt.Errorf("append audit entry: %w", err)
	}
	return e, nil
}

// seal chains e onto the head and queues its line for the next flush,
// under mu.
func (l *Log) seal(e Entry) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.reserved {
		l.released.Wait()
	}
	if err := l.usable(); err != nil {
		return Entry{}, err
	}
	e.Seq = l.head.Seq + 1
	e.PrevHash = l.head.Hash
	if e.Seq == 1 {
		e.PrevHash = genesisHash
	}
	// Taking the time under the lock keeps Time in Seq order, barring steps
	// of the wall clock.
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	// Straight into the batch: the line is not built on its own.
	n0 := len(l.pending)
	batch, err := seal(l.pending, &e)
	if err != nil {
		return Entry{}, fmt.Errorf("append audit entry: %w: encode: %w", secret.ErrAudit, err)
	}
	if n := len(batch) - n0 - 1; n > MaxEntrySize {
		l.pending = batch[:n0]
		return Entry{}, fmt.Errorf("append audit entry: %w: entry is %d bytes encoded, limit %d", secret.ErrAudit, n, MaxEntrySize)
	}
	l.pending = batch
	l.head = Head{Seq: e.Seq, Hash: e.Hash}
	return e, nil
}

// Head returns the last entry that counts as written (see SyncMode), or
// the one recovered by Open: the value the caller records in the store as
// the anchor for Verify. An entry from AppendDeferred counts once Sync has
// returned.
func (l *Log) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

// Path returns the file name the Log was opened with.
func (l *Log) Path() string {
	return l.path
}

// Close syncs and closes the file, so that entries appended with SyncWrite
// are durable after a clean shutdown. Closing a closed Log does nothing.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	var err error
	if l.failed == nil {
		err = l.f.Sync()
	}
	err = errors.Join(err, l.f.Close())
	l.f = nil
	if err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

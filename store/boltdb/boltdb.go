// Package boltdb implements store.Backend on a single bbolt file.
//
// All keys live in one bucket ("kv") so the store's flat, prefix-structured
// keyspace ("s/", "v/", "f/", "m/", ...) maps directly onto one ordered B+tree
// and a prefix scan is a single cursor walk.
//
// bbolt trusts its file: a damaged data page makes it panic, and a page
// outside the mapped file makes it fault. A password store must not crash on
// a bad disk or a truncated copy, so every entry point here recovers those
// panics (and turns memory faults into panics with debug.SetPanicOnFault) and
// reports them as errors wrapping secret.ErrCorrupt. Only bbolt's full
// consistency check (tx.Check, too slow to run on every open) would catch the
// rest: a branch page that refers to itself recurses until the stack
// overflows, which no recover can stop, and damage that still looks valid
// returns wrong data instead of an error.
package boltdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/internal/groupcommit"
)

// bucketName is the single bucket holding the whole keyspace.
var bucketName = []byte("kv")

// defaultLockTimeout is how long Open waits for another process's lock. It is
// short because passman commands are interactive: a second command should
// fail quickly with a clear message rather than hang.
const defaultLockTimeout = time.Second

// Options configures Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another process;
	// 0 (or a negative value) means 1s.
	LockTimeout time.Duration
	// ReadOnly opens the file without write access and with a shared lock,
	// so several readers may share it but not with a writer. Writes fail with
	// store.ErrReadOnly and a missing file is an error rather than created.
	ReadOnly bool
	// NoSync skips fsync on commit. DANGER: a crash or power loss can then
	// lose acknowledged writes or leave the file corrupt. It exists only for
	// benchmarks and tests that measure the store logic rather than the disk;
	// never set it for a real store.
	NoSync bool
	// MaxMappedResident bounds how much of the memory-mapped file stays in
	// the process's resident set; 0 means DefaultMaxMappedResident and a
	// negative value means no bound. See trimmer.
	MaxMappedResident int64
}

// DefaultMaxMappedResident is the default bound on mapped file pages kept
// resident: a million-secret store is about a gigabyte, and a process that
// reads across all of it should not carry the whole file in its RSS.
const DefaultMaxMappedResident = 128 << 20

// Stats reports the size of a store, for benchmarks and metrics.
type Stats struct {
	// Keys is the number of keys in the keyspace.
	Keys int
	// FileSize is the size of the file on disk in bytes; bbolt grows it in
	// steps and never shrinks it, so it exceeds the live data.
	FileSize int64
}

// ErrLocked is wrapped by the error Open returns when another process holds
// the store's lock, so callers can tell "busy, retry later" from other
// failures.
var ErrLocked = errors.New("store is locked by another process")

// ErrClosed is wrapped by errors from a DB that has been closed.
var ErrClosed = errors.New("store is closed")

// DB is a store.Backend on one bbolt file. It is safe for concurrent use.
type DB struct {
	bolt     *bolt.DB
	file     *os.File // the file bbolt opened; used by Stats
	path     string
	readOnly bool

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	batch groupcommit.Queue
	trim  trimmer
}

var _ store.Backend = (*DB)(nil)

// lockedError keeps the exact user-facing wording while still matching
// ErrLocked with errors.Is.
type lockedError struct {
	path    string
	timeout time.Duration
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("store %s is in use by another passman process (lock not acquired within %s)", e.path, e.timeout)
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// errLockTimeout is returned by lockFile when the wait runs out.
var errLockTimeout = errors.New("lock timeout")

// opener is the Options.OpenFile hook handed to bbolt. It takes the lock and
// inspects the file itself, before bbolt reads it, so that a busy store is
// reported as busy (not as empty) and an existing empty file is refused
// rather than silently initialised as a new store.
type opener struct {
	ctx      context.Context
	path     string
	readOnly bool
	timeout  time.Duration

	file    *os.File
	created bool  // this call created the file
	err     error // the hook's own error, returned to the caller unchanged
}

func (o *opener) open(name string, flag int, mode os.FileMode) (*os.File, error) {
	f, err := o.openFile(name, flag, mode)
	if err != nil {
		o.err = err
		return nil, err
	}
	o.file = f
	return f, nil
}

func (o *opener) openFile(name string, flag int, mode os.FileMode) (*os.File, error) {
	var f *os.File
	var err error
	if flag&os.O_CREATE != 0 {
		// O_EXCL tells us whether the file is new: only a file we created
		// may legitimately be empty.
		f, err = os.OpenFile(name, flag|os.O_EXCL, mode)
		if err == nil {
			o.created = true
		} else if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(name, flag&^os.O_CREATE, mode)
		}
	} else {
		f, err = os.OpenFile(name, flag, mode)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	switch err := lockFile(o.ctx, f, !o.readOnly, o.timeout); {
	case errors.Is(err, errLockTimeout):
		f.Close()
		return nil, &lockedError{path: o.path, timeout: o.timeout}
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("lock store %s: %w", o.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("store %s is not a regular file: %w", o.path, secret.ErrInvalidArgument)
	}
	if fi.Size() == 0 && !o.created {
		// A truncated or half-copied store must not be mistaken for a
		// new one: a user would see no secrets and might back up the
		// empty file over a good backup.
		f.Close()
		return nil, fmt.Errorf("store %s: %w (the file is empty, not a passman database); "+
			"restore it from a backup, or delete it to create a new store", o.path, secret.ErrCorrupt)
	}
	return f, nil
}

// Open opens or creates the store at path, creating the file with mode 0600.
// ctx bounds the wait for the lock in addition to opts.LockTimeout. Errors
// wrap ErrLocked when another process holds the file, secret.ErrCorrupt when
// the file is not a usable bbolt database, and fs.ErrNotExist when a
// read-only open finds no file.
func Open(ctx context.Context, path string, opts Options) (db *DB, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = defaultLockTimeout
	}
	o := &opener{ctx: ctx, path: path, readOnly: opts.ReadOnly, timeout: timeout}
	defer func() {
		if err != nil && o.created {
			// Do not leave an empty file behind that the next Open would
			// refuse; a file bbolt already initialised holds no user data
			// either but is harmless, so only remove an empty one.
			if fi, serr := os.Stat(path); serr == nil && fi.Size() == 0 {
				os.Remove(path)
			}
		}
	}()

	bdb, panicked, err := openBolt(path, &bolt.Options{
		Timeout:  timeout,
		ReadOnly: opts.ReadOnly,
		NoSync:   opts.NoSync,
		OpenFile: o.open,
	})
	if err != nil {
		if o.file != nil && panicked {
			// bbolt closes the file on its own errors but not when it
			// panics. The mapping it made is then unreachable and stays
			// until the process exits, keeping the file open underneath,
			// so the lock must be dropped explicitly.
			unlockFile(o.file)
			o.file.Close()
		}
		return nil, openError(path, o, err)
	}
	d := &DB{bolt: bdb, file: o.file, path: path, readOnly: opts.ReadOnly}
	d.batch.Init(maxBatch, d.commit)
	if !opts.ReadOnly {
		// Only create the bucket when it is missing: an open that commits
		// would change the file even when the caller goes on to refuse it
		// (wrong master key), and a refused open must change nothing.
		exists := false
		err := d.exec(false, nil, func(btx *bolt.Tx) error {
			exists = btx.Bucket(bucketName) != nil
			return nil
		})
		if err == nil && !exists {
			err = d.exec(true, nil, func(btx *bolt.Tx) error {
				_, err := btx.CreateBucketIfNotExists(bucketName)
				return err
			})
		}
		if err != nil {
			bdb.Close()
			return nil, d.boltError(err)
		}
	}
	d.trim.start(d, opts.MaxMappedResident)
	return d, nil
}

// openBolt calls bolt.Open, converting its panics on a damaged freelist or
// page into errors.
func openBolt(path string, opts *bolt.Options) (bdb *bolt.DB, panicked bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			bdb, panicked, err = nil, true, corruptPanic(path, r)
		}
	}()
	bdb, err = bolt.Open(path, 0o600, opts)
	return bdb, false, err
}

// openError turns an error from bolt.Open into one a user can act on.
func openError(path string, o *opener, err error) error {
	switch {
	case o.err != nil && err == o.err, errors.Is(err, secret.ErrCorrupt):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		// Platforms without flock, where bbolt does the locking.
		return &lockedError{path: path, timeout: o.timeout}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch),
		// bbolt reports a file shorter than its two meta pages only by
		// this message.
		strings.Contains(err.Error(), "file size too small"):
		return fmt.Errorf("store %s: %w (not a bbolt database, or its meta pages are damaged: %w); "+
			"restore it from a backup", path, secret.ErrCorrupt, err)
	}
	return fmt.Errorf("open store %s: %w", path, err)
}

// corruptPanic describes a panic recovered from bbolt.
func corruptPanic(path string, r any) error {
	return fmt.Errorf("store %s: %w (bbolt failed reading it: %v); restore it from a backup",
		path, secret.ErrCorrupt, r)
}

// Close waits for pending Batch calls and in-flight transactions to finish,
// then releases the file and its lock. Later calls return the first result.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		// Drain Batch first: its queued calls run through exec, which
		// refuses to start once closed is set.
		d.batch.Close()
		d.trim.stop()
		d.closed.Store(true)
		d.closeErr = d.bolt.Close()
	})
	return d.closeErr
}

// Path returns the path the store was opened with.
func (d *DB) Path() string { return d.path }

// Stats returns the key count and file size. It walks every page of the
// keyspace, so it is meant for benchmarks and occasional metrics, not hot
// paths.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := d.run(ctx, false, func(t store.Tx) error {
		n, err := t.(*tx).keyCount()
		s.Keys = n
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	fi, err := d.file.Stat()
	if err != nil {
		return Stats{}, fmt.Errorf("store %s: %w", d.path, err)
	}
	s.FileSize = fi.Size()
	return s, nil
}

func (d *DB) errClosed() error {
	return fmt.Errorf("store %s: %w", d.path, ErrClosed)
}

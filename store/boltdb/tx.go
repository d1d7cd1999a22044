package boltdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// View runs fn in a read-only transaction on a consistent snapshot. It
// returns ctx.Err() without starting if ctx is already done; once started,
// the transaction is not interrupted (bbolt is not cancellable). Damaged
// pages yield an error wrapping secret.ErrCorrupt; a panic in fn itself is
// re-raised unchanged.
func (d *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return d.run(ctx, false, fn)
}

// Update runs fn in a read-write transaction, committing (with fsync unless
// Options.NoSync) when fn returns nil and rolling back otherwise. fn's error
// is returned unchanged so callers can match it with errors.Is; writes on a
// read-only store fail with an error wrapping store.ErrReadOnly. fn runs
// exactly once. Context and panics are handled as in View.
func (d *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	return d.run(ctx, true, fn)
}

// run is View and Update: it wraps fn's transaction in a store.Tx and maps
// bbolt's errors, leaving fn's own error untouched.
func (d *DB) run(ctx context.Context, writable bool, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	var inFn bool
	err := d.exec(writable, &inFn, func(btx *bolt.Tx) error {
		t, err := d.newTx(btx, writable)
		if err != nil {
			return err
		}
		defer t.end()
		inFn = true
		fnErr = fn(t)
		inFn = false
		if fnErr != nil {
			return fnErr
		}
		// A Tx method recovered a bbolt panic and fn carried on: the
		// transaction's pages may be half-modified, so never commit it.
		if t.err != nil {
			return t.err
		}
		if !writable {
			d.trim.afterRead()
		}
		return t.runBeforeCommit()
	})
	if fnErr != nil {
		return fnErr // unchanged, even if the rollback failed as well
	}
	if err == nil {
		return nil
	}
	return d.boltError(err)
}

// exec runs body in a bbolt transaction on the calling goroutine. A panic
// raised while *inUser is true comes from the caller's code, not from bbolt,
// and is re-raised so that bugs are not disguised as corruption; any other
// panic comes from bbolt reading damaged pages and becomes an error.
// SetPanicOnFault turns a read outside the mapped file (a truncated store)
// into such a panic instead of a fatal signal.
func (d *DB) exec(writable bool, inUser *bool, body func(*bolt.Tx) error) (err error) {
	if d.closed.Load() {
		return d.errClosed()
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if inUser != nil && *inUser {
				panic(r)
			}
			err = corruptPanic(d.path, r)
		}
	}()
	if writable {
		return d.bolt.Update(body)
	}
	return d.bolt.View(body)
}

// boltError adds the store's path and this package's sentinels to an error
// from bbolt itself (begin or commit).
func (d *DB) boltError(err error) error {
	switch {
	case errors.Is(err, secret.ErrCorrupt), errors.Is(err, ErrClosed):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return d.errClosed()
	case errors.Is(err, berrors.ErrDatabaseReadOnly):
		return fmt.Errorf("store %s is open read-only: %w", d.path, store.ErrReadOnly)
	}
	return fmt.Errorf("store %s: %w", d.path, err)
}

// errTxDone is returned by a Tx used after its transaction ended, which
// would otherwise make bbolt panic and be misreported as corruption.
var errTxDone = fmt.Errorf("boltdb: %w", berrors.ErrTxClosed)

// tx is the store.Tx for one bbolt transaction.
type tx struct {
	path     string
	b        *bolt.Bucket // nil only in a read-only store without the bucket
	writable bool
	done     bool
	// gen counts writes so Scan can tell that fn modified the bucket, which
	// may invalidate a bbolt cursor.
	gen uint64
	// err is set once a method has recovered a bbolt panic; every later
	// call returns it and the transaction will not commit.
	err error
	// beforeCommit holds the callbacks registered with BeforeCommit, in
	// the order they will run.
	beforeCommit []hook
}

type hook struct {
	key string
	fn  func() error
}

// BeforeCommit registers fn to run once every function of the transaction
// has succeeded (in a Batch: every batched call), just before the commit; an
// error from fn rolls the transaction back and becomes the commit's error.
// Callbacks run in registration order. A non-empty key makes a callback
// run once per transaction however often it is registered, at the place of
// its last registration: the audit log registers its fsync under one key
// after each entry, so a batch of entries shares one fsync after the last.
// Unlike the functions themselves, callbacks run once per commit attempt,
// so they may have effects outside the transaction.
func (t *tx) BeforeCommit(key string, fn func() error) {
	if key != "" {
		t.beforeCommit = slices.DeleteFunc(t.beforeCommit, func(h hook) bool { return h.key == key })
	}
	t.beforeCommit = append(t.beforeCommit, hook{key, fn})
}

func (t *tx) runBeforeCommit() error {
	for _, h := range t.beforeCommit {
		if err := h.fn(); err != nil {
			return fmt.Errorf("before commit: %w", err)
		}
	}
	return nil
}

func (d *DB) newTx(btx *bolt.Tx, writable bool) (*tx, error) {
	t := &tx{path: d.path, b: btx.Bucket(bucketName), writable: writable}
	if t.b == nil && writable {
		// Open created the bucket and nothing deletes it.
		return nil, fmt.Errorf("store %s: %w (bucket %q is missing); restore it from a backup",
			d.path, secret.ErrCorrupt, bucketName)
	}
	return t, nil
}

// end invalidates t once its transaction is over.
func (t *tx) end() { t.done = true }

func (t *tx) check() error {
	if t.done {
		return errTxDone
	}
	return t.err
}

// guard, deferred by every method that enters bbolt, converts a bbolt panic
// into an ErrCorrupt error and poisons the transaction.
func (t *tx) guard(err *error) {
	if r := recover(); r != nil {
		t.err = corruptPanic(t.path, r)
		*err = t.err
	}
}

// Get returns the value for key or store.ErrKeyNotFound. For speed the slice
// is bbolt's own, not a copy: it usually points into the read-only memory
// map of the file and is valid only until the transaction ends. Never modify
// it (that faults); copy it to keep it.
func (t *tx) Get(key []byte) (v []byte, err error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if t.b == nil {
		return nil, store.ErrKeyNotFound
	}
	defer t.guard(&err)
	if v = t.b.Get(key); v == nil {
		return nil, store.ErrKeyNotFound
	}
	return v, nil
}

// Put sets key to value. value is copied, because bbolt would otherwise keep
// referring to the caller's buffer until commit; a nil value is stored as an
// empty one. Fails with store.ErrReadOnly in a View.
func (t *tx) Put(key, value []byte) (err error) {
	if err := t.check(); err != nil {
		return err
	}
	if !t.writable {
		return store.ErrReadOnly
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if int64(len(value)) > bolt.MaxValueSize {
		return fmt.Errorf("boltdb: %w: value of %d bytes exceeds the %d-byte limit",
			secret.ErrTooLarge, len(value), int64(bolt.MaxValueSize))
	}
	defer t.guard(&err)
	t.gen++
	v := make([]byte, len(value))
	copy(v, value)
	return t.b.Put(key, v)
}

// Delete removes key; a missing key is not an error. Fails with
// store.ErrReadOnly in a View.
func (t *tx) Delete(key []byte) (err error) {
	if err := t.check(); err != nil {
		return err
	}
	if !t.writable {
		return store.ErrReadOnly
	}
	if err := checkKey(key); err != nil {
		return err
	}
	defer t.guard(&err)
	t.gen++
	return t.b.Delete(key)
}

func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return fmt.Errorf("boltdb: %w: empty key", secret.ErrInvalidArgument)
	case len(key) > bolt.MaxKeySize:
		return fmt.Errorf("boltdb: %w: key of %d bytes exceeds the %d-byte limit",
			secret.ErrTooLarge, len(key), bolt.MaxKeySize)
	}
	return nil
}

// Scan calls fn for each key with prefix, in ascending order, from the first
// key >= max(prefix, start). It stops when a key lacks the prefix, when fn
// returns false, or when fn returns an error, which Scan returns unchanged.
// fn may Put and Delete in an Update: the cursor is then repositioned after
// the last key visited, so keys fn adds further on are visited too. The
// slices passed to fn follow Get's rules.
func (t *tx) Scan(prefix, start []byte, fn func(key, value []byte) (bool, error)) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.b == nil {
		return nil
	}
	from := prefix
	if bytes.Compare(start, prefix) > 0 {
		from = start
	}
	c := t.b.Cursor()
	k, v, err := t.seek(c, from, nil)
	for err == nil && k != nil && bytes.HasPrefix(k, prefix) {
		gen := t.gen
		more, ferr := fn(k, v)
		if ferr != nil || !more {
			return ferr
		}
		if t.gen != gen {
			k, v, err = t.seek(c, k, k)
		} else {
			k, v, err = t.next(c)
		}
	}
	return err
}

// seek positions c at the first key >= key, skipping it if it equals after.
// fn's callbacks run outside seek and next so that only bbolt's own panics
// are treated as corruption.
func (t *tx) seek(c *bolt.Cursor, key, after []byte) (k, v []byte, err error) {
	if err := t.check(); err != nil {
		return nil, nil, err
	}
	defer t.guard(&err)
	k, v = c.Seek(key)
	if after != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	return k, v, nil
}

func (t *tx) next(c *bolt.Cursor) (k, v []byte, err error) {
	if err := t.check(); err != nil {
		return nil, nil, err
	}
	defer t.guard(&err)
	k, v = c.Next()
	return k, v, nil
}

// keyCount backs Stats.
func (t *tx) keyCount() (n int, err error) {
	if t.b == nil {
		return 0, nil
	}
	defer t.guard(&err)
	return t.b.Stats().KeyN, nil
}

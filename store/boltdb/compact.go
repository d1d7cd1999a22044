package boltdb

import (
	"context"
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/passman-dev/passman/store"
)

// compactTxSize bounds one transaction of a compaction's copy.
const compactTxSize = 64 << 20

// CompactTo writes a compacted copy of the database to path (which must not
// exist) and syncs it. Only live keys are copied: bbolt never clears the
// pages a delete frees, so the bytes of a destroyed secret's ciphertext stay
// in the file until the page is reused — a compacted copy does not carry
// them. The caller swaps the copy in while nothing has the store open.
func (d *DB) CompactTo(ctx context.Context, path string) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: defaultLockTimeout})
	if err != nil {
		return fmt.Errorf("create compacted copy %s: %w", path, err)
	}
	defer func() {
		if cerr := dst.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close compacted copy: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	defer func() {
		// bbolt reads the source pages here: damage panics, as in View.
		if r := recover(); r != nil {
			err = corruptPanic(d.path, r)
		}
	}()
	if err := bolt.Compact(dst, d.bolt, compactTxSize); err != nil {
		return fmt.Errorf("compact %s: %w", d.path, err)
	}
	return nil
}

// Snapshot runs fn in one read transaction, with tx for reading the store
// and writeTo for copying the whole database file as that transaction
// sees it (bbolt's Tx.WriteTo): a consistent copy while writers carry on.
// A long snapshot holds old pages from reuse, and a writer that must grow
// the file's mapping waits for it to end, so copy to local disk and
// stream from there rather than to a slow peer.
func (d *DB) Snapshot(ctx context.Context, fn func(tx store.Tx, size int64, writeTo func(w io.Writer) (int64, error)) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	var inFn bool
	err := d.exec(false, &inFn, func(btx *bolt.Tx) error {
		t, err := d.newTx(btx, false)
		if err != nil {
			return err
		}
		defer t.end()
		inFn = true
		fnErr = fn(t, btx.Size(), btx.WriteTo)
		inFn = false
		if fnErr != nil {
			return fnErr
		}
		return t.err
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return d.boltError(err)
	}
	return nil
}

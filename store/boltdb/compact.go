package boltdb

import (
	"context"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
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

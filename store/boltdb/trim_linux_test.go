//go:build linux

package boltdb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/passman-dev/passman/store"
)

// TestTrimBoundsMappedResident reads every page of a 48 MiB database many
// times over: without a bound the mapping stays resident; with a 4 MiB
// bound the process's file-backed resident set stays far below the file.
// Not parallel: it measures the whole process.
func TestTrimBoundsMappedResident(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.db")
	ctx := context.Background()
	d := openT(t, path, Options{NoSync: true})
	val := make([]byte, 4000)
	for batch := range 12 {
		if err := d.Update(ctx, func(tx store.Tx) error {
			for i := range 1000 {
				if err := tx.Put(fmt.Appendf(nil, "k/%02d/%04d", batch, i), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	readAll := func(limit int64) int64 {
		d := openT(t, path, Options{ReadOnly: true, MaxMappedResident: limit})
		defer d.Close()
		peak := int64(0)
		for range 3 {
			for batch := range 12 {
				for i := range 1000 {
					if err := d.View(ctx, func(tx store.Tx) error {
						_, err := tx.Get(fmt.Appendf(nil, "k/%02d/%04d", batch, i))
						return err
					}); err != nil {
						t.Fatal(err)
					}
				}
				peak = max(peak, fileResident())
			}
		}
		return peak
	}
	unbounded := readAll(-1)
	bounded := readAll(4 << 20)
	t.Logf("peak file-backed RSS: unbounded %d MiB, bounded %d MiB", unbounded>>20, bounded>>20)
	if unbounded-bounded < 24<<20 {
		t.Fatalf("trimming saved only %d MiB of a 48 MiB mapping", (unbounded-bounded)>>20)
	}
}

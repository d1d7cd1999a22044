// Package fsx holds file-system steps several packages need to get exactly
// right.
package fsx

import (
	"fmt"
	"os"
	"runtime"
)

// SyncDir fsyncs a directory, so a file created or renamed in it survives a
// crash: without it the new directory entry may be lost even though the
// file's own data was synced. Windows cannot open directories for sync; the
// rename is durable there without it.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

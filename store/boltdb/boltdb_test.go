package boltdb

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/storetest"
)

var errBoom = errors.New("boom")

func openT(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	d, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newDB(t testing.TB) *DB {
	return openT(t, filepath.Join(t.TempDir(), "store.db"), Options{})
}

// The Backend conformance suite, shared with the etcd backend.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) store.Backend { return newDB(t) })
}

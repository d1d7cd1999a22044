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

func putAll(t testing.TB, d *DB, kv ...string) {
	t.Helper()
	err := d.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < len(kv); i += 2 {
			if err := tx.Put([]byte(kv[i]), []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, d *DB, key string) (string, error) {
	t.Helper()
	var v string
	err := d.View(context.Background(), func(tx store.Tx) error {
		b, err := tx.Get([]byte(key))
		v = string(b)
		return err
	})
	return v, err
}

func scan(t testing.TB, d *DB, prefix, start string, limit int) []string {
	t.Helper()
	var keys []string
	var st []byte
	if start != "" {
		st = []byte(start)
	}
	err := d.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte(prefix), st, func(k, v []byte) (bool, error) {
			keys = append(keys, string(k))
			return limit <= 0 || len(keys) < limit, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// The Backend conformance suite, shared with the etcd backend.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) store.Backend { return newDB(t) })
}

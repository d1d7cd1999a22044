package boltdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
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

func TestGetPutDelete(t *testing.T) {
	d := newDB(t)
	if _, err := get(t, d, "s/a"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("Get missing = %v, want ErrKeyNotFound", err)
	}
	putAll(t, d, "s/a", "1", "s/b", "2")
	putAll(t, d, "s/a", "3")
	if v, err := get(t, d, "s/a"); err != nil || v != "3" {
		t.Fatalf("Get = %q, %v; want 3", v, err)
	}
	err := d.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Delete([]byte("s/a")); err != nil {
			return err
		}
		if err := tx.Delete([]byte("s/missing")); err != nil {
			return fmt.Errorf("delete missing: %w", err)
		}
		if _, err := tx.Get([]byte("s/a")); !errors.Is(err, store.ErrKeyNotFound) {
			return fmt.Errorf("Get after Delete in tx = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, d, "s/a"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("Get deleted = %v", err)
	}
	if v, _ := get(t, d, "s/b"); v != "2" {
		t.Fatalf("s/b = %q", v)
	}
}

func TestPutEmptyAndCopiedValue(t *testing.T) {
	d := newDB(t)
	buf := []byte("secret")
	err := d.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put([]byte("m/nil"), nil); err != nil {
			return err
		}
		if v, err := tx.Get([]byte("m/nil")); err != nil || len(v) != 0 {
			return fmt.Errorf("Get nil value in tx = %q, %v", v, err)
		}
		if err := tx.Put([]byte("m/buf"), buf); err != nil {
			return err
		}
		copy(buf, "XXXXXX") // the caller reuses its buffer before commit
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, d, "m/nil"); err != nil || v != "" {
		t.Fatalf("nil value = %q, %v", v, err)
	}
	if v, _ := get(t, d, "m/buf"); v != "secret" {
		t.Fatalf("value = %q, want the bytes at Put time", v)
	}
}

func TestKeyValidation(t *testing.T) {
	d := newDB(t)
	err := d.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put(nil, []byte("x")); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("Put empty key = %v", err)
		}
		if err := tx.Put(make([]byte, bolt.MaxKeySize+1), nil); !errors.Is(err, secret.ErrTooLarge) {
			t.Errorf("Put huge key = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestScan(t *testing.T) {
	d := newDB(t)
	putAll(t, d, "m/x", "", "s/a", "", "s/a/1", "", "s/a/2", "", "s/ab", "", "s/b", "", "s/b/1", "", "v/x", "")
	cases := []struct {
		prefix, start string
		limit         int
		want          string
	}{
		{"s/a", "", 0, "s/a s/a/1 s/a/2 s/ab"}, // byte prefix: never s/b
		{"s/a/", "", 0, "s/a/1 s/a/2"},
		{"s/b", "", 0, "s/b s/b/1"},
		{"s/", "s/ab", 0, "s/ab s/b s/b/1"},
		{"s/", "s/a/10", 0, "s/a/2 s/ab s/b s/b/1"},      // start need not exist
		{"s/", "a", 0, "s/a s/a/1 s/a/2 s/ab s/b s/b/1"}, // start < prefix
		{"s/", "t", 0, ""},                               // start past prefix
		{"s/", "", 2, "s/a s/a/1"},                       // early stop
		{"x/", "", 0, ""},
		{"", "", 0, "m/x s/a s/a/1 s/a/2 s/ab s/b s/b/1 v/x"},
		{"v/x", "", 0, "v/x"},
	}
	for _, c := range cases {
		got := strings.Join(scan(t, d, c.prefix, c.start, c.limit), " ")
		if got != c.want {
			t.Errorf("Scan(%q, %q, limit %d) = %q, want %q", c.prefix, c.start, c.limit, got, c.want)
		}
	}
}

func TestScanError(t *testing.T) {
	d := newDB(t)
	putAll(t, d, "s/a", "1", "s/b", "2", "s/c", "3")
	calls := 0
	err := d.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("s/"), nil, func(k, v []byte) (bool, error) {
			calls++
			if string(k) == "s/b" {
				return true, errBoom
			}
			return true, nil
		})
	})
	if err != errBoom || calls != 2 {
		t.Fatalf("err = %v after %d calls, want errBoom after 2", err, calls)
	}
}

func TestScanWhileWriting(t *testing.T) {
	d := newDB(t)
	var kv []string
	for i := range 500 {
		kv = append(kv, fmt.Sprintf("s/%04d", i), "v")
	}
	putAll(t, d, kv...)
	putAll(t, d, "t/after", "v")

	// Deleting every visited key must neither skip nor repeat keys.
	var seen []string
	err := d.Update(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("s/"), nil, func(k, v []byte) (bool, error) {
			seen = append(seen, string(k))
			if string(k) == "s/0010" {
				// Keys added ahead of the cursor are visited.
				if err := tx.Put([]byte("s/0010x"), []byte("new")); err != nil {
					return false, err
				}
			}
			return true, tx.Delete(k)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 501 || seen[11] != "s/0010x" || seen[500] != "s/0499" {
		t.Fatalf("visited %d keys (%v ... %v)", len(seen), seen[:min(12, len(seen))], seen[len(seen)-1])
	}
	if left := scan(t, d, "", "", 0); strings.Join(left, " ") != "t/after" {
		t.Fatalf("left = %v", left)
	}
}

func TestUpdateRollback(t *testing.T) {
	d := newDB(t)
	putAll(t, d, "s/keep", "old")
	err := d.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put([]byte("s/new"), []byte("x")); err != nil {
			return err
		}
		if err := tx.Put([]byte("s/keep"), []byte("new")); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("Update = %v, want errBoom unchanged", err)
	}
	if _, err := get(t, d, "s/new"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("rolled-back key visible: %v", err)
	}
	if v, _ := get(t, d, "s/keep"); v != "old" {
		t.Fatalf("s/keep = %q after rollback", v)
	}
}

func TestUpdatePanicPropagates(t *testing.T) {
	d := newDB(t)
	func() {
		defer func() {
			if r := recover(); r != "caller bug" {
				t.Fatalf("recovered %v, want the caller's panic value", r)
			}
		}()
		d.Update(context.Background(), func(tx store.Tx) error {
			tx.Put([]byte("s/x"), []byte("x"))
			panic("caller bug")
		})
	}()
	// The write lock was released and the write rolled back.
	putAll(t, d, "s/y", "y")
	if _, err := get(t, d, "s/x"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("s/x after panic: %v", err)
	}
}

func TestViewIsReadOnly(t *testing.T) {
	d := newDB(t)
	putAll(t, d, "s/a", "1")
	err := d.View(context.Background(), func(tx store.Tx) error {
		if err := tx.Put([]byte("s/a"), []byte("2")); !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("Put in View = %v", err)
		}
		if err := tx.Delete([]byte("s/a")); !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("Delete in View = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTxAfterTransaction(t *testing.T) {
	d := newDB(t)
	putAll(t, d, "s/a", "1")
	var kept store.Tx
	d.View(context.Background(), func(tx store.Tx) error { kept = tx; return nil })
	if _, err := kept.Get([]byte("s/a")); err == nil || errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("Get on an ended tx = %v, want a misuse error, not corruption", err)
	}
}

func TestGetSliceValidInTx(t *testing.T) {
	d := newDB(t)
	putAll(t, d, "s/a", "value-a")
	err := d.View(context.Background(), func(tx store.Tx) error {
		a, err := tx.Get([]byte("s/a"))
		if err != nil {
			return err
		}
		if _, err := tx.Get([]byte("s/zzz")); !errors.Is(err, store.ErrKeyNotFound) {
			return err
		}
		if !bytes.Equal(a, []byte("value-a")) {
			return fmt.Errorf("a = %q", a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

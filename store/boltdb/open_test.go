package boltdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/storetest"
)

func TestReadOnlyStoreAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	d := openT(t, path, Options{})
	storetest.PutAll(t, d, "s/a", "1", "v/b", "2")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	ro := openT(t, path, Options{ReadOnly: true})
	ro2 := openT(t, path, Options{ReadOnly: true}) // readers share the lock
	for _, db := range []*DB{ro, ro2} {
		if v, err := storetest.Get(t, db, "v/b"); err != nil || v != "2" {
			t.Fatalf("read-only Get = %q, %v", v, err)
		}
	}
	write := func(tx store.Tx) error { return tx.Put([]byte("s/c"), []byte("3")) }
	if err := ro.Update(context.Background(), write); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("Update on read-only store = %v", err)
	}
	if err := ro.Batch(context.Background(), write); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("Batch on read-only store = %v", err)
	}
	ro.Close()
	ro2.Close()

	d = openT(t, path, Options{})
	if got := strings.Join(storetest.Scan(t, d, "", "", 0), " "); got != "s/a v/b" {
		t.Fatalf("after reopen: %q", got)
	}
}

func TestReadOnlyMissingBucketIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain.db")
	bdb, err := bolt.Open(path, 0o600, nil) // a bbolt file without our bucket
	if err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	d := openT(t, path, Options{ReadOnly: true})
	if _, err := storetest.Get(t, d, "s/a"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("Get = %v", err)
	}
	if keys := storetest.Scan(t, d, "", "", 0); len(keys) != 0 {
		t.Fatalf("Scan = %v", keys)
	}
	if s, err := d.Stats(context.Background()); err != nil || s.Keys != 0 {
		t.Fatalf("Stats = %+v, %v", s, err)
	}
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	_, err := Open(context.Background(), path, Options{ReadOnly: true})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open = %v, want ErrNotExist", err)
	}
	if _, serr := os.Stat(path); !errors.Is(serr, fs.ErrNotExist) {
		t.Fatalf("read-only Open created the file")
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	openT(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestLockedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	d := openT(t, path, Options{})
	for _, ro := range []bool{false, true} {
		start := time.Now()
		_, err := Open(context.Background(), path, Options{LockTimeout: 100 * time.Millisecond, ReadOnly: ro})
		elapsed := time.Since(start)
		want := fmt.Sprintf("store %s is in use by another passman process (lock not acquired within 100ms)", path)
		if !errors.Is(err, ErrLocked) || err.Error() != want {
			t.Fatalf("second Open (read-only %v) = %v, want %q", ro, err, want)
		}
		if elapsed < 90*time.Millisecond || elapsed > 3*time.Second {
			t.Fatalf("gave up after %v, want about 100ms", elapsed)
		}
	}
	// The failed attempts did not disturb the holder, and closing frees it.
	storetest.PutAll(t, d, "s/a", "1")
	d.Close()
	d2 := openT(t, path, Options{LockTimeout: 100 * time.Millisecond})
	if v, _ := storetest.Get(t, d2, "s/a"); v != "1" {
		t.Fatalf("s/a = %q", v)
	}
}

func TestOpenLockWaitHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	openT(t, path, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Open(ctx, path, Options{LockTimeout: 10 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Open = %v after %v", err, time.Since(start))
	}
}

func TestDoneContext(t *testing.T) {
	d := newDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fn := func(store.Tx) error { t.Error("fn called with a done context"); return nil }
	for name, run := range map[string]func(context.Context, func(store.Tx) error) error{
		"View": d.View, "Update": d.Update, "Batch": d.Batch,
	} {
		if err := run(ctx, fn); !errors.Is(err, context.Canceled) {
			t.Errorf("%s = %v", name, err)
		}
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open = %v", err)
	}
}

func TestClose(t *testing.T) {
	d := newDB(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	nop := func(store.Tx) error { return nil }
	for name, err := range map[string]error{
		"View":   d.View(context.Background(), nop),
		"Update": d.Update(context.Background(), nop),
		"Batch":  d.Batch(context.Background(), nop),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v", name, err)
		}
	}
}

func TestStatsAndPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	d := openT(t, path, Options{NoSync: true})
	if d.Path() != path {
		t.Fatalf("Path = %q", d.Path())
	}
	var kv []string
	for i := range 2000 {
		kv = append(kv, fmt.Sprintf("s/%05d", i), strings.Repeat("v", 100))
	}
	storetest.PutAll(t, d, kv...)
	s, err := d.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if s.Keys != 2000 || s.FileSize != fi.Size() || s.FileSize < 200_000 {
		t.Fatalf("Stats = %+v, file is %d bytes", s, fi.Size())
	}
}

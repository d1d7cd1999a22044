package boltdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/storetest"
)

// fixtureData caches the fixture file: building it is the slow part of the
// damage tests.
var fixtureData struct {
	sync.Mutex
	bytes []byte
}

// fixture writes a closed store with enough keys for a multi-level tree and
// returns its path and page layout.
func fixture(t *testing.T) (path string, l layout) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "store.db")
	fixtureData.Lock()
	defer fixtureData.Unlock()
	if fixtureData.bytes == nil {
		d := openT(t, path, Options{NoSync: true})
		var kv []string
		for i := range fixtureKeys {
			kv = append(kv, fmt.Sprintf("s/%05d", i), strings.Repeat("v", 100))
		}
		storetest.PutAll(t, d, kv...)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fixtureData.bytes = b
	} else if err := os.WriteFile(path, fixtureData.bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pageLayout(t, path)
}

type layout struct {
	pageSize   int
	pages      int   // high water mark
	bucketRoot int   // root page of the kv bucket
	freelist   int   // -1 if none
	leaves     []int // leaf pages of the kv bucket
}

// pageLayout reads the page structure with bbolt directly, as a test oracle,
// and checks that it is the multi-level tree the tests expect.
func pageLayout(t *testing.T, path string) layout {
	t.Helper()
	l := readLayout(t, path)
	if l.bucketRoot == 0 || len(l.leaves) < 10 || l.freelist < 0 {
		t.Fatalf("unexpected layout %+v", l)
	}
	return l
}

func readLayout(t *testing.T, path string) layout {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	l := layout{pageSize: bdb.Info().PageSize, freelist: -1}
	err = bdb.View(func(tx *bolt.Tx) error {
		l.pages = int(tx.Size()) / l.pageSize
		l.bucketRoot = int(tx.Bucket(bucketName).Root())
		for id := 2; id < l.pages; id++ {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				continue
			}
			switch p.Type {
			case "freelist":
				l.freelist = id
			case "leaf":
				if id != int(tx.Cursor().Bucket().Root()) {
					l.leaves = append(l.leaves, id)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func overwrite(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func garbage(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func wantCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("%s = %v, want an error wrapping secret.ErrCorrupt", what, err)
	}
	if !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("%s = %v, want a restore hint", what, err)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	for _, size := range []int{1, 100, 3000, 5000, 64 << 10} {
		for _, ro := range []bool{false, true} {
			path := filepath.Join(t.TempDir(), "junk.db")
			if err := os.WriteFile(path, garbage(uint64(size), size), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(context.Background(), path, Options{ReadOnly: ro})
			wantCorrupt(t, fmt.Sprintf("Open(%d random bytes, read-only %v)", size, ro), err)
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
		}
	}
}

func TestOpenEmptyFile(t *testing.T) {
	for _, ro := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "empty.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(context.Background(), path, Options{ReadOnly: ro})
		wantCorrupt(t, fmt.Sprintf("Open(empty file, read-only %v)", ro), err)
		if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
			t.Fatalf("the empty file was modified or removed: %v", err)
		}
	}
}

func TestOpenBadMetaPages(t *testing.T) {
	path, l := fixture(t)
	// One bad meta page: bbolt falls back to the other one.
	overwrite(t, path, 0, garbage(1, l.pageSize))
	d := openT(t, path, Options{})
	if _, err := storetest.Get(t, d, "s/00042"); err != nil {
		t.Fatalf("with one meta page left: %v", err)
	}
	d.Close()

	// Both bad: the file is unusable.
	overwrite(t, path, 0, garbage(2, l.pageSize))
	overwrite(t, path, int64(l.pageSize), garbage(3, l.pageSize))
	for _, ro := range []bool{false, true} {
		_, err := Open(context.Background(), path, Options{ReadOnly: ro})
		wantCorrupt(t, fmt.Sprintf("Open(read-only %v)", ro), err)
	}
}

// fixtureKeys is the number of keys fixture writes, each s/%05d with value
// fixtureValue.
const fixtureKeys = 3000

var fixtureValue = strings.Repeat("v", 100)

// checkOps runs every operation against a possibly damaged store; each must
// succeed or fail with ErrCorrupt, and none may panic. What a read returns
// without an error must be exactly what was written: damage may be reported,
// never served as data (garbage, a lost key or an extra one). It reports
// whether any operation failed.
func checkOps(t *testing.T, path string, ro bool) (corrupt bool) {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, path, Options{ReadOnly: ro, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		wantCorrupt(t, "Open", err)
		return true
	}
	defer d.Close()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			wantCorrupt(t, what, err)
			corrupt = true
		}
	}
	// One transaction per key, so that damage met by one read does not
	// hide what the reads of other keys return.
	for i := range fixtureKeys {
		key := fmt.Sprintf("s/%05d", i)
		check("View Get "+key, d.View(ctx, func(tx store.Tx) error {
			v, err := tx.Get([]byte(key))
			if err != nil {
				if errors.Is(err, store.ErrKeyNotFound) {
					t.Fatalf("Get(%s) on a damaged store: key silently lost", key)
				}
				return err
			}
			if string(v) != fixtureValue {
				t.Fatalf("Get(%s) on a damaged store = %q, want the value written", key, v)
			}
			return nil
		}))
	}
	next := 0
	scanErr := d.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte("s/"), nil, func(k, v []byte) (bool, error) {
			if want := fmt.Sprintf("s/%05d", next); string(k) != want || string(v) != fixtureValue {
				t.Fatalf("Scan on a damaged store visited %q = %q, want %s = the value written", k, v, want)
			}
			next++
			return true, nil
		})
	})
	check("View Scan", scanErr)
	if scanErr == nil && next != fixtureKeys {
		t.Fatalf("Scan on a damaged store visited %d keys without an error, want %d", next, fixtureKeys)
	}
	st, err := d.Stats(ctx)
	check("Stats", err)
	if err == nil && st.Keys != fixtureKeys {
		t.Fatalf("Stats on a damaged store = %d keys without an error, want %d", st.Keys, fixtureKeys)
	}
	if ro {
		return corrupt
	}
	updErr := d.Update(ctx, func(tx store.Tx) error {
		for i := 0; i < fixtureKeys; i += 11 {
			if err := tx.Put(fmt.Appendf(nil, "s/%05d", i), []byte("new")); err != nil {
				return err
			}
			if err := tx.Delete(fmt.Appendf(nil, "s/%05d", i+1)); err != nil {
				return err
			}
		}
		return nil
	})
	check("Update", updErr)
	batchErr := d.Batch(ctx, func(tx store.Tx) error {
		return tx.Put([]byte("s/00500"), []byte("batch"))
	})
	check("Batch", batchErr)
	// A write reported as done must read back as written.
	if updErr == nil || batchErr == nil {
		check("View after writes", d.View(ctx, func(tx store.Tx) error {
			readBack := func(key, want string) error {
				v, err := tx.Get([]byte(key))
				switch {
				case err != nil && !errors.Is(err, store.ErrKeyNotFound):
					return err
				case want == "" && err == nil:
					t.Fatalf("Get(%s) = %q after its delete was acknowledged", key, v)
				case want != "" && (err != nil || string(v) != want):
					t.Fatalf("Get(%s) = %q, %v after writing %q was acknowledged", key, v, err, want)
				}
				return nil
			}
			if batchErr == nil {
				if err := readBack("s/00500", "batch"); err != nil {
					return err
				}
			}
			if updErr == nil {
				for i := 0; i < fixtureKeys; i += 11 {
					if err := readBack(fmt.Sprintf("s/%05d", i), "new"); err != nil {
						return err
					}
					if i+1 == 500 && batchErr == nil {
						continue
					}
					if err := readBack(fmt.Sprintf("s/%05d", i+1), ""); err != nil {
						return err
					}
				}
			}
			return nil
		}))
	}
	return corrupt
}

func TestDataPageGarbage(t *testing.T) {
	for _, ro := range []bool{false, true} {
		path, l := fixture(t)
		overwrite(t, path, int64(l.bucketRoot*l.pageSize), garbage(4, l.pageSize))
		if !checkOps(t, path, ro) {
			t.Fatalf("read-only %v: garbage bucket root went unnoticed", ro)
		}
	}
}

func TestLeafPageGarbage(t *testing.T) {
	path, l := fixture(t)
	for _, id := range l.leaves {
		overwrite(t, path, int64(id*l.pageSize), garbage(uint64(id), l.pageSize))
	}
	if !checkOps(t, path, false) {
		t.Fatal("garbage leaf pages went unnoticed")
	}
}

func TestFreelistGarbage(t *testing.T) {
	path, l := fixture(t)
	overwrite(t, path, int64(l.freelist*l.pageSize), garbage(5, l.pageSize))
	// A writer loads the freelist in Open, inside bbolt, which panics.
	_, err := Open(context.Background(), path, Options{LockTimeout: 100 * time.Millisecond})
	wantCorrupt(t, "Open", err)
	// The failed Open released the file lock: this is corrupt, not busy.
	_, err = Open(context.Background(), path, Options{LockTimeout: 100 * time.Millisecond})
	wantCorrupt(t, "second Open", err)
	// A reader does not need the freelist.
	if checkOps(t, path, true) {
		t.Fatal("read-only store unusable with only the freelist damaged")
	}
}

// TestBranchBodyGarbage keeps the root page's header valid but scrambles its
// elements, so bbolt follows wild page numbers: out of range, or into memory
// that is not mapped (a fault).
func TestBranchBodyGarbage(t *testing.T) {
	for seed := range uint64(8) {
		path, l := fixture(t)
		overwrite(t, path, int64(l.bucketRoot*l.pageSize+16), garbage(seed, l.pageSize-16))
		if !checkOps(t, path, seed%2 == 0) {
			t.Fatalf("seed %d: a scrambled bucket root went unnoticed", seed)
		}
	}
}

// TestTruncated reads a store cut short, as after an interrupted copy.
// bbolt maps at least 32KiB, so in a small store the pages past the end of
// the file are mapped but not backed and reading them faults (SIGBUS), which
// only debug.SetPanicOnFault turns into a recoverable panic.
func TestTruncated(t *testing.T) {
	for _, ro := range []bool{false, true} {
		path, l := fixture(t)
		if err := os.Truncate(path, int64(4*l.pageSize)); err != nil {
			t.Fatal(err)
		}
		if !checkOps(t, path, ro) {
			t.Fatalf("read-only %v: truncation went unnoticed", ro)
		}

		path = filepath.Join(t.TempDir(), "small.db")
		d := openT(t, path, Options{})
		storetest.PutAll(t, d, "s/a", strings.Repeat("a", 3000), "s/b", strings.Repeat("b", 3000))
		d.Close()
		if sl := readLayout(t, path); sl.pages > 8 {
			t.Fatalf("small store has %d pages", sl.pages)
		}
		if err := os.Truncate(path, int64(2*l.pageSize)); err != nil {
			t.Fatal(err)
		}
		if !checkOps(t, path, ro) {
			t.Fatalf("read-only %v: truncation of a small store went unnoticed", ro)
		}
	}
}

// TestRandomPageDamage overwrites random pages, whole or all but the header,
// and requires every operation to succeed with the data written or report
// corruption; damage to a page the bucket's tree uses must be reported.
func TestRandomPageDamage(t *testing.T) {
	for seed := range uint64(24) {
		path, l := fixture(t)
		r := rand.New(rand.NewPCG(seed, 2))
		inTree := false
		for range 1 + r.IntN(3) {
			id := 2 + r.IntN(l.pages-2)
			inTree = inTree || id == l.bucketRoot || slices.Contains(l.leaves, id)
			skip := 0
			if r.IntN(2) == 0 {
				skip = 16
			}
			overwrite(t, path, int64(id*l.pageSize+skip), garbage(r.Uint64(), l.pageSize-skip))
		}
		if !checkOps(t, path, seed%3 == 0) && inTree {
			t.Fatalf("seed %d: damage to the bucket's tree went unnoticed", seed)
		}
	}
}

// Package storetest is the conformance suite every store.Backend passes:
// the semantics the store relies on (snapshots, read-your-writes, scans
// that see the transaction's own changes, rollback, serializability) pinned
// down once and run against each backend.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// MaxKeySize is the largest key every backend accepts (bbolt's limit).
const MaxKeySize = 32768

// Opener returns a new, empty backend for one test; the test closes it
// through t.Cleanup or leaves that to the opener.
type Opener func(t testing.TB) store.Backend

// batcher is the optional group-commit method of a backend.
type batcher interface {
	Batch(ctx context.Context, fn func(store.Tx) error) error
}

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Backend)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"PutEmptyAndCopiedValue", testPutEmptyAndCopiedValue},
		{"KeyValidation", testKeyValidation},
		{"Scan", testScan},
		{"ScanError", testScanError},
		{"ScanWhileWriting", testScanWhileWriting},
		{"ScanSeesOwnWrites", testScanSeesOwnWrites},
		{"UpdateRollback", testUpdateRollback},
		{"UpdatePanicPropagates", testUpdatePanicPropagates},
		{"ViewIsReadOnly", testViewIsReadOnly},
		{"ViewSnapshot", testViewSnapshot},
		{"TxAfterTransaction", testTxAfterTransaction},
		{"GetSliceValidInTx", testGetSliceValidInTx},
		{"NoLostUpdates", testNoLostUpdates},
		{"NoWriteSkew", testNoWriteSkew},
		{"NoPhantoms", testNoPhantoms},
		{"Batch", testBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var errBoom = errors.New("boom")

// PutAll puts key/value pairs kv in one Update, failing t on error.
func PutAll(t testing.TB, d store.Backend, kv ...string) {
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

// Get reads key in a View.
func Get(t testing.TB, d store.Backend, key string) (string, error) {
	t.Helper()
	var v string
	err := d.View(context.Background(), func(tx store.Tx) error {
		b, err := tx.Get([]byte(key))
		v = string(b)
		return err
	})
	return v, err
}

// Scan lists the keys under prefix from start ("" for the first), at most
// limit of them (0: all), failing t on error.
func Scan(t testing.TB, d store.Backend, prefix, start string, limit int) []string {
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

func testGetPutDelete(t *testing.T, d store.Backend) {
	if _, err := Get(t, d, "s/a"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("Get missing = %v, want ErrKeyNotFound", err)
	}
	PutAll(t, d, "s/a", "1", "s/b", "2")
	PutAll(t, d, "s/a", "3")
	if v, err := Get(t, d, "s/a"); err != nil || v != "3" {
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
			return fmt.Errorf("get after delete in tx = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Get(t, d, "s/a"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("Get deleted = %v", err)
	}
	if v, _ := Get(t, d, "s/b"); v != "2" {
		t.Fatalf("s/b = %q", v)
	}
}

func testPutEmptyAndCopiedValue(t *testing.T, d store.Backend) {
	buf := []byte("secret")
	err := d.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put([]byte("m/nil"), nil); err != nil {
			return err
		}
		if v, err := tx.Get([]byte("m/nil")); err != nil || len(v) != 0 {
			return fmt.Errorf("get of nil value in tx = %q, %v", v, err)
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
	if v, err := Get(t, d, "m/nil"); err != nil || v != "" {
		t.Fatalf("nil value = %q, %v", v, err)
	}
	if v, _ := Get(t, d, "m/buf"); v != "secret" {
		t.Fatalf("value = %q, want the bytes at Put time", v)
	}
}

func testKeyValidation(t *testing.T, d store.Backend) {
	err := d.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put(nil, []byte("x")); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("Put empty key = %v", err)
		}
		if err := tx.Put(make([]byte, MaxKeySize+1), nil); !errors.Is(err, secret.ErrTooLarge) {
			t.Errorf("Put huge key = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testScan(t *testing.T, d store.Backend) {
	PutAll(t, d, "m/x", "", "s/a", "", "s/a/1", "", "s/a/2", "", "s/ab", "", "s/b", "", "s/b/1", "", "v/x", "")
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
		got := strings.Join(Scan(t, d, c.prefix, c.start, c.limit), " ")
		if got != c.want {
			t.Errorf("Scan(%q, %q, limit %d) = %q, want %q", c.prefix, c.start, c.limit, got, c.want)
		}
	}
}

func testScanError(t *testing.T, d store.Backend) {
	PutAll(t, d, "s/a", "1", "s/b", "2", "s/c", "3")
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

func testScanWhileWriting(t *testing.T, d store.Backend) {
	var kv []string
	for i := range 500 {
		kv = append(kv, fmt.Sprintf("s/%04d", i), "v")
	}
	PutAll(t, d, kv...)
	PutAll(t, d, "t/after", "v")

	// Deleting every visited key must neither skip nor repeat keys.
	var seen []string
	err := d.Update(context.Background(), func(tx store.Tx) error {
		seen = seen[:0]
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
	if left := Scan(t, d, "", "", 0); strings.Join(left, " ") != "t/after" {
		t.Fatalf("left = %v", left)
	}
}

func testScanSeesOwnWrites(t *testing.T, d store.Backend) {
	PutAll(t, d, "s/b", "old", "s/d", "old")
	err := d.Update(context.Background(), func(tx store.Tx) error {
		for _, kv := range [][2]string{{"s/a", "new"}, {"s/b", "changed"}, {"s/c", "new"}} {
			if err := tx.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		if err := tx.Delete([]byte("s/d")); err != nil {
			return err
		}
		var got []string
		err := tx.Scan([]byte("s/"), nil, func(k, v []byte) (bool, error) {
			got = append(got, string(k)+"="+string(v))
			return true, nil
		})
		if err != nil {
			return err
		}
		if g := strings.Join(got, " "); g != "s/a=new s/b=changed s/c=new" {
			return fmt.Errorf("scan in tx = %q", g)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testUpdateRollback(t *testing.T, d store.Backend) {
	PutAll(t, d, "s/keep", "old")
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
	if _, err := Get(t, d, "s/new"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("rolled-back key visible: %v", err)
	}
	if v, _ := Get(t, d, "s/keep"); v != "old" {
		t.Fatalf("s/keep = %q after rollback", v)
	}
}

func testUpdatePanicPropagates(t *testing.T, d store.Backend) {
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
	// Any lock was released and the write rolled back.
	PutAll(t, d, "s/y", "y")
	if _, err := Get(t, d, "s/x"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("s/x after panic: %v", err)
	}
}

func testViewIsReadOnly(t *testing.T, d store.Backend) {
	PutAll(t, d, "s/a", "1")
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

// testViewSnapshot: a View sees one state, whatever commits while it runs.
func testViewSnapshot(t *testing.T, d store.Backend) {
	var kv []string
	for i := range 20 {
		kv = append(kv, fmt.Sprintf("s/%02d", i), "old")
	}
	PutAll(t, d, kv...)
	writerDone := make(chan error, 1)
	writerFinished := false
	err := d.View(context.Background(), func(tx store.Tx) error {
		if v, err := tx.Get([]byte("s/00")); err != nil || string(v) != "old" {
			return fmt.Errorf("first read = %q, %v", v, err)
		}
		// A writer that cannot run beside a read transaction (bbolt's
		// single writer can) would wait for it: do not wait for it here.
		go func() {
			writerDone <- d.Update(context.Background(), func(tx store.Tx) error {
				for i := range 20 {
					if err := tx.Put(fmt.Appendf(nil, "s/%02d", i), []byte("new")); err != nil {
						return err
					}
				}
				return tx.Put([]byte("s/99"), []byte("new"))
			})
		}()
		select {
		case err := <-writerDone:
			writerFinished = true
			if err != nil {
				return err
			}
		case <-time.After(2 * time.Second):
			// bbolt's writer may wait for the read to end to grow its
			// mapping: the snapshot is then checked before the write.
		}
		n := 0
		err := tx.Scan([]byte("s/"), nil, func(k, v []byte) (bool, error) {
			n++
			if string(v) != "old" {
				return false, fmt.Errorf("%s = %q in the snapshot", k, v)
			}
			return true, nil
		})
		if err == nil && n != 20 {
			err = fmt.Errorf("snapshot scan saw %d keys, want 20", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !writerFinished {
		if err := <-writerDone; err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := Get(t, d, "s/05"); v != "new" {
		t.Fatalf("after the View, s/05 = %q", v)
	}
}

func testTxAfterTransaction(t *testing.T, d store.Backend) {
	PutAll(t, d, "s/a", "1")
	var kept store.Tx
	d.View(context.Background(), func(tx store.Tx) error { kept = tx; return nil })
	if _, err := kept.Get([]byte("s/a")); err == nil || errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("Get on an ended tx = %v, want a misuse error, not corruption", err)
	}
}

func testGetSliceValidInTx(t *testing.T, d store.Backend) {
	PutAll(t, d, "s/a", "value-a")
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

// testNoLostUpdates: concurrent read-modify-writes of one counter all count.
func testNoLostUpdates(t *testing.T, d store.Backend) {
	const workers, each = 6, 10
	PutAll(t, d, "c/n", "0")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				err := d.Update(context.Background(), func(tx store.Tx) error {
					b, err := tx.Get([]byte("c/n"))
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(string(b))
					if err != nil {
						return err
					}
					return tx.Put([]byte("c/n"), []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _ := Get(t, d, "c/n"); v != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s after %d increments", v, workers*each)
	}
}

// meet lets two transactions both read before either commits where the
// backend runs them side by side; a backend that runs writers one at a time
// makes the first wait in vain for a short while.
type meet struct {
	wg   sync.WaitGroup
	once [2]sync.Once
}

func newMeet() *meet { m := &meet{}; m.wg.Add(2); return m }

func (m *meet) arrive(i int) {
	m.once[i].Do(m.wg.Done)
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(300 * time.Millisecond):
	}
}

// testNoWriteSkew: two on-call doctors each go off call only if the other
// is on; under serializability at least one stays.
func testNoWriteSkew(t *testing.T, d store.Backend) {
	PutAll(t, d, "d/a", "on", "d/b", "on")
	m := newMeet()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, me := range []string{"d/a", "d/b"} {
		other := map[string]string{"d/a": "d/b", "d/b": "d/a"}[me]
		wg.Go(func() {
			errs[i] = d.Update(context.Background(), func(tx store.Tx) error {
				o, err := tx.Get([]byte(other))
				if err != nil {
					return err
				}
				m.arrive(i)
				if string(o) == "on" {
					return tx.Put([]byte(me), []byte("off"))
				}
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, _ := Get(t, d, "d/a")
	b, _ := Get(t, d, "d/b")
	if a == "off" && b == "off" {
		t.Fatal("write skew: both went off call")
	}
}

// testNoPhantoms: two transactions each insert a key under a prefix only if
// a scan finds it empty; exactly one key results.
func testNoPhantoms(t *testing.T, d store.Backend) {
	m := newMeet()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			errs[i] = d.Update(context.Background(), func(tx store.Tx) error {
				n := 0
				if err := tx.Scan([]byte("p/"), nil, func(k, v []byte) (bool, error) { n++; return true, nil }); err != nil {
					return err
				}
				m.arrive(i)
				if n == 0 {
					return tx.Put(fmt.Appendf(nil, "p/%d", i), nil)
				}
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if keys := Scan(t, d, "p/", "", 0); len(keys) != 1 {
		t.Fatalf("phantom: keys %v, want exactly one", keys)
	}
}

// testBatch: concurrent Batch calls all commit, a failing one alone fails,
// and each sees its own writes.
func testBatch(t *testing.T, d store.Backend) {
	b, ok := d.(batcher)
	if !ok {
		t.Skip("backend has no Batch")
	}
	PutAll(t, d, "b/n", "0")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			errs[i] = b.Batch(context.Background(), func(tx store.Tx) error {
				if i == 7 {
					tx.Put([]byte("b/never"), nil)
					return errBoom
				}
				v, err := tx.Get([]byte("b/n"))
				if err != nil {
					return err
				}
				n, _ := strconv.Atoi(string(v))
				if err := tx.Put([]byte("b/n"), []byte(strconv.Itoa(n+1))); err != nil {
					return err
				}
				return tx.Put(fmt.Appendf(nil, "b/%02d", i), nil)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i == 7 {
			if err != errBoom {
				t.Errorf("failing call = %v, want errBoom", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if v, _ := Get(t, d, "b/n"); v != "19" {
		t.Fatalf("counter = %s, want 19", v)
	}
	if _, err := Get(t, d, "b/never"); !errors.Is(err, store.ErrKeyNotFound) {
		t.Fatalf("failed call's write committed: %v", err)
	}
}

package etcd

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/internal/groupcommit"
)

// A batch's calls run beside each other, yet each sees what the calls
// before it wrote, by key or by scan, as if they had run in order; and a
// callback registered by a call sees the merged transaction.
func TestConcurrentBatchKeepsCallOrder(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: etcdtest.Prefix(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	count := func(tx store.Tx) (int, error) {
		n := 0
		err := tx.Scan([]byte("s/"), nil, func(_, _ []byte) (bool, error) { n++; return true, nil })
		return n, err
	}
	var seenByHook int
	calls := []*groupcommit.Call{
		groupcommit.NewCall(func(tx store.Tx) error { return tx.Put([]byte("s/a"), []byte("1")) }),
		groupcommit.NewCall(func(tx store.Tx) error {
			n, err := count(tx)
			if err != nil {
				return err
			}
			return tx.Put([]byte("scanned"), []byte(strconv.Itoa(n)))
		}),
		groupcommit.NewCall(func(tx store.Tx) error {
			v, err := tx.Get([]byte("scanned"))
			if err != nil {
				return err
			}
			if err := tx.Put([]byte("copied"), v); err != nil {
				return err
			}
			tx.(interface{ BeforeCommit(string, func() error) }).BeforeCommit("", func() error {
				n, err := count(tx)
				seenByHook = n
				if err != nil {
					return err
				}
				return tx.Put([]byte("s/hook"), nil)
			})
			return nil
		}),
		groupcommit.NewCall(func(tx store.Tx) error { return tx.Put([]byte("s/b"), []byte("2")) }),
	}
	// A commit makes the batch read at the revision it saw, with no
	// round trip first.
	if err := d.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("other"), nil) }); err != nil {
		t.Fatal(err)
	}
	if d.seen.Load() == 0 {
		t.Fatal("no revision seen after a commit")
	}
	ok, failed, err := d.attemptBatch(calls, false, groupKind{snapshot: d.seen.Load, concurrent: true})
	if err != nil || !ok || failed >= 0 {
		t.Fatalf("batch: committed %v, failed call %d, %v", ok, failed, err)
	}
	err = d.View(ctx, func(tx store.Tx) error {
		for k, want := range map[string]string{"scanned": "1", "copied": "1"} {
			v, err := tx.Get([]byte(k))
			if err != nil || string(v) != want {
				t.Errorf("%s = %q, %v; want %q", k, v, err, want)
			}
		}
		n, err := count(tx)
		if n != 3 {
			t.Errorf("%d keys under s/, want 3", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if seenByHook != 2 {
		t.Fatalf("callback saw %d keys under s/, want 2 (the calls' merged writes)", seenByHook)
	}
}

// A batch reads at the latest revision its server saw, which may miss
// another server's write: the commit's compares catch it and the batch
// runs again at a linearizable revision; a function that fails on the
// stale data is re-run alone, linearizably, before its caller hears of it.
func TestBatchOnStaleSnapshot(t *testing.T) {
	ctx := context.Background()
	prefix := etcdtest.Prefix(t.Name())
	open := func() *DB {
		d, err := Open(ctx, Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	d1, d2 := open(), open()
	put := func(d *DB, v string) {
		t.Helper()
		if err := d.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	put(d1, "1")
	put(d2, "2") // d1 has not seen it
	err := d1.Batch(ctx, func(tx store.Tx) error {
		v, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		return tx.Put([]byte("k"), append(v, '+'))
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(d *DB) string {
		t.Helper()
		var v []byte
		err := d.View(ctx, func(tx store.Tx) (err error) {
			v, err = tx.Get([]byte("k"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if v := get(d2); v != "2+" {
		t.Fatalf("k = %q after a batch on a stale snapshot, want 2+", v)
	}
	// A batch that writes nothing answers from what it read: checked too.
	put(d2, "3")
	var seen string
	err = d1.Batch(ctx, func(tx store.Tx) error {
		v, err := tx.Get([]byte("k"))
		seen = string(v)
		return err
	})
	if err != nil || seen != "3" {
		t.Fatalf("read-only batch after another server's write saw %q (%v), want 3", seen, err)
	}
	// One that fails on what it read is re-run before it fails.
	put(d2, "4")
	errStale := errors.New("read a stale value")
	err = d1.Batch(ctx, func(tx store.Tx) error {
		v, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		if string(v) != "4" {
			return errStale
		}
		return nil
	})
	if err != nil {
		t.Fatalf("failing batch after another server's write: %v", err)
	}
}

package etcd

import (
	"context"
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
	ok, failed, err := d.attemptBatch(calls)
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

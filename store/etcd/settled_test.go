package etcd

import (
	"context"
	"testing"

	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/store"
)

// A key read with GetSettled is not checked at commit, the key read with
// Get before it is; and a Get of it afterwards checks it again.
func TestGetSettledIsNotCompared(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: etcdtest.Prefix(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, k := range []string{"s/record", "s/value"} {
		if err := d.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte(k), []byte("1")) }); err != nil {
			t.Fatal(err)
		}
	}
	// attempts runs a transaction that reads the record and the value
	// twice, as two readers of one secret in a read group do (the value
	// the second time with Get when getAgain), has another writer change
	// key during its first attempt, and writes: how many attempts it took.
	attempts := func(key string, getAgain bool) int {
		t.Helper()
		n := 0
		err := d.Update(ctx, func(stx store.Tx) error {
			tx := stx.(*tx)
			n++
			for range 2 {
				if _, err := tx.Get([]byte("s/record")); err != nil {
					return err
				}
				if _, err := tx.GetSettled([]byte("s/value")); err != nil {
					return err
				}
			}
			if getAgain {
				if _, err := tx.Get([]byte("s/value")); err != nil {
					return err
				}
			}
			if n == 1 {
				if _, err := d.cli.Put(ctx, d.prefix+key, "changed"); err != nil {
					return err
				}
			}
			return tx.Put([]byte("s/out"), []byte("x"))
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := attempts("s/value", false); n != 1 {
		t.Errorf("a settled read's key changed: %d attempts, want 1", n)
	}
	if n := attempts("s/record", false); n != 2 {
		t.Errorf("the record changed: %d attempts, want 2", n)
	}
	if n := attempts("s/value", true); n != 2 {
		t.Errorf("a key read again with Get changed: %d attempts, want 2", n)
	}
}

package etcd_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

// TestExclusive: one job at a time holds a prefix; another prefix is not
// held by it; a release frees it at once; and a job whose hold is lost
// (its lease gone, as when its process pauses past the TTL) writes
// nothing more.
func TestExclusive(t *testing.T) {
	ctx := context.Background()
	d := open(t, etcd.Config{})
	other := open(t, etcd.Config{Prefix: etcdtest.Prefix(t.Name() + "-other")})

	held, release, err := d.Exclusive(ctx, "restore")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Exclusive(ctx, "migrate"); !errors.Is(err, secret.ErrConflict) || !strings.Contains(err.Error(), d.Prefix()) {
		t.Fatalf("second job on a held prefix: %v, want a conflict naming the prefix", err)
	}
	_, releaseOther, err := other.Exclusive(ctx, "restore")
	if err != nil {
		t.Fatalf("a job on another prefix: %v", err)
	}
	if err := releaseOther(); err != nil {
		t.Fatal(err)
	}
	// The hold is outside the prefix: the store under it stays empty.
	if err := d.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, _ []byte) (bool, error) {
			t.Errorf("key %q under the held prefix", k)
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Update(held, func(tx store.Tx) error { return tx.Put([]byte("a"), []byte("1")) }); err != nil {
		t.Fatalf("write while held: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if held.Err() == nil {
		t.Error("the held context outlives its release")
	}

	held2, release2, err := d.Exclusive(ctx, "restore")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	defer release2()
	// Revoke the hold's lease behind the job's back: its key (the mutex's,
	// named by the lease id) goes, and with it the job's right to write.
	resp, err := d.Client().Get(ctx, etcd.LockPrefix(d.Prefix())+"/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("hold keys: %v, %v", resp, err)
	}
	lease, err := strconv.ParseInt(strings.TrimPrefix(string(resp.Kvs[0].Key), etcd.LockPrefix(d.Prefix())+"/"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client().Revoke(ctx, clientv3.LeaseID(lease)); err != nil {
		t.Fatal(err)
	}
	err = d.Update(store.WithFence(context.Background(), store.FenceOf(held2)), func(tx store.Tx) error { return tx.Put([]byte("b"), []byte("1")) })
	if !errors.Is(err, store.ErrFenced) {
		t.Errorf("write after the hold was lost: %v, want ErrFenced", err)
	}
	if err := d.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get([]byte("b"))
		if !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("b after the fenced write: %v, want not found", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The prefix is free again for the next job.
	_, release3, err := d.Exclusive(ctx, "restore")
	if err != nil {
		t.Fatalf("after the lost hold: %v", err)
	}
	if err := release3(); err != nil {
		t.Fatal(err)
	}
}

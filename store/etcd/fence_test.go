package etcd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

type otherFence struct{}

func (otherFence) String() string { return "another backend's fence" }

// TestFence: a write under a KeyFence commits while the key exists with
// its create revision, alone or through Batch; once the key is gone, or
// made again (a new lead), the write fails with ErrFenced and writes
// nothing. A fence the backend cannot check is refused, not ignored.
func TestFence(t *testing.T) {
	d := open(t, etcd.Config{})
	ctx := context.Background()
	fenceKey := "fence/" + d.Prefix() + "lead"
	put, err := d.Client().Put(ctx, fenceKey, "a")
	if err != nil {
		t.Fatal(err)
	}
	held := store.WithFence(ctx, etcd.KeyFence{Key: fenceKey, CreateRev: put.Header.Revision})
	write := func(ctx context.Context, k, v string) error {
		return d.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte(k), []byte(v)) })
	}
	batch := func(ctx context.Context, k, v string) error {
		return d.Batch(ctx, func(tx store.Tx) error { return tx.Put([]byte(k), []byte(v)) })
	}
	get := func(k string) string {
		var v []byte
		if err := d.View(ctx, func(tx store.Tx) error {
			b, err := tx.Get([]byte(k))
			if errors.Is(err, store.ErrKeyNotFound) {
				return nil
			}
			v = append(v, b...)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if err := write(held, "x", "1"); err != nil {
		t.Fatalf("fenced write while the key is held: %v", err)
	}
	if err := batch(held, "y", "1"); err != nil {
		t.Fatalf("fenced batch while the key is held: %v", err)
	}
	if err := store.CheckFence(held, d); err != nil {
		t.Fatalf("fence check while the key is held: %v", err)
	}
	// The key is made again, as a new lead's would be: the old fence's
	// revision no longer matches.
	if _, err := d.Client().Delete(ctx, fenceKey); err != nil {
		t.Fatal(err)
	}
	if err := write(held, "x", "2"); !errors.Is(err, store.ErrFenced) {
		t.Errorf("write after the key is gone: %v, want ErrFenced", err)
	}
	if err := store.CheckFence(held, d); !errors.Is(err, store.ErrFenced) {
		t.Errorf("fence check after the key is gone: %v, want ErrFenced", err)
	}
	if _, err := d.Client().Put(ctx, fenceKey, "b"); err != nil {
		t.Fatal(err)
	}
	if err := batch(held, "y", "2"); !errors.Is(err, store.ErrFenced) {
		t.Errorf("batch after the key is made again: %v, want ErrFenced", err)
	}
	if err := write(store.WithFence(ctx, otherFence{}), "x", "3"); !errors.Is(err, store.ErrFenced) {
		t.Errorf("write under a fence etcd cannot check: %v, want ErrFenced", err)
	}
	if err := store.CheckFence(store.WithFence(ctx, otherFence{}), d); !errors.Is(err, store.ErrFenced) {
		t.Errorf("check of a fence etcd cannot check: %v, want ErrFenced", err)
	}
	if err := store.CheckFence(ctx, d); err != nil {
		t.Errorf("check without a fence: %v", err)
	}
	if x, y := get("x"), get("y"); x != "1" || y != "1" {
		t.Errorf("x=%q y=%q after the refused writes, want both 1", x, y)
	}
	// A conflict under a held fence runs again rather than failing.
	resp, err := d.Client().Get(ctx, fenceKey)
	if err != nil {
		t.Fatal(err)
	}
	held = store.WithFence(ctx, etcd.KeyFence{Key: fenceKey, CreateRev: resp.Kvs[0].CreateRevision})
	runs := 0
	err = d.Update(held, func(tx store.Tx) error {
		runs++
		if _, err := tx.Get([]byte("x")); err != nil {
			return err
		}
		if runs == 1 {
			if _, err := d.Client().Put(ctx, d.Prefix()+"x", "other"); err != nil {
				return err
			}
		}
		return tx.Put([]byte("x"), []byte("4"))
	})
	if err != nil || runs != 2 || get("x") != "4" {
		t.Errorf("conflicting fenced write: %v after %d runs, x=%q; want it run again and committed", err, runs, get("x"))
	}
}

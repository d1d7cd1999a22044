package boltdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/storetest"
)

func TestBatchConcurrent(t *testing.T) {
	d := newDB(t)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	txs := map[store.Tx]bool{}
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errs <- d.Batch(context.Background(), func(tx store.Tx) error {
					mu.Lock()
					txs[tx] = true
					mu.Unlock()
					return tx.Put(fmt.Appendf(nil, "s/%02d/%02d", w, i), []byte("v"))
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	// Writers arriving during a commit share the next one.
	if len(txs) >= writers*each {
		t.Errorf("%d writes took %d transactions: nothing was batched", writers*each, len(txs))
	}
	t.Logf("%d writes in %d transactions", writers*each, len(txs))
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		for i := range each {
			if _, err := storetest.Get(t, d, fmt.Sprintf("s/%02d/%02d", w, i)); err != nil {
				t.Fatalf("s/%02d/%02d: %v", w, i, err)
			}
		}
	}
	if s, _ := d.Stats(context.Background()); s.Keys != writers*each {
		t.Fatalf("Keys = %d", s.Keys)
	}
}

func TestBatchFailureIsolated(t *testing.T) {
	d := newDB(t)
	var wg sync.WaitGroup
	results := make([]error, 16)
	for i := range results {
		wg.Go(func() {
			results[i] = d.Batch(context.Background(), func(tx store.Tx) error {
				if err := tx.Put(fmt.Appendf(nil, "s/%02d", i), []byte("v")); err != nil {
					return err
				}
				if i%4 == 0 {
					return fmt.Errorf("writer %d: %w", i, errBoom)
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range results {
		_, gerr := storetest.Get(t, d, fmt.Sprintf("s/%02d", i))
		if i%4 == 0 {
			if !errors.Is(err, errBoom) || !errors.Is(gerr, store.ErrKeyNotFound) {
				t.Errorf("failing writer %d: Batch = %v, Get = %v", i, err, gerr)
			}
		} else if err != nil || gerr != nil {
			t.Errorf("writer %d: Batch = %v, Get = %v", i, err, gerr)
		}
	}
}

func TestBatchPanicReachesCaller(t *testing.T) {
	d := newDB(t)
	defer func() {
		if r := recover(); r != "caller bug" {
			t.Fatalf("recovered %v", r)
		}
		storetest.PutAll(t, d, "s/ok", "1") // store still usable
	}()
	d.Batch(context.Background(), func(tx store.Tx) error { panic("caller bug") })
}

// TestBeforeCommit checks that callbacks run once the transaction's
// functions are done, and that a failing callback rolls the change back.
func TestBeforeCommit(t *testing.T) {
	d := newDB(t)
	ctx := context.Background()
	var order []string
	err := d.Update(ctx, func(t store.Tx) error {
		t.(*tx).BeforeCommit("", func() error { order = append(order, "hook1"); return nil })
		t.(*tx).BeforeCommit("sync", func() error { order = append(order, "sync"); return nil })
		t.(*tx).BeforeCommit("", func() error { order = append(order, "hook2"); return nil })
		t.(*tx).BeforeCommit("sync", func() error { order = append(order, "sync"); return nil })
		order = append(order, "fn")
		return t.Put([]byte("k1"), []byte("v"))
	})
	if err != nil || fmt.Sprint(order) != "[fn hook1 hook2 sync]" {
		t.Fatalf("order %v, err %v", order, err)
	}
	boom := errors.New("fsync failed")
	err = d.Batch(ctx, func(t store.Tx) error {
		t.(*tx).BeforeCommit("", func() error { return boom })
		return t.Put([]byte("k2"), []byte("v"))
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failing hook: %v", err)
	}
	_ = d.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Get([]byte("k2")); !errors.Is(err, store.ErrKeyNotFound) {
			t.Errorf("change committed despite a failing hook: %v", err)
		}
		if _, err := tx.Get([]byte("k1")); err != nil {
			t.Errorf("k1: %v", err)
		}
		return nil
	})
}

package boltdb

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/passman-dev/passman/store"
)

// benchValue is the size of a typical stored secret version with its
// envelope.
var benchValue = make([]byte, 256)

// BenchmarkUpdate measures one durable (fsync) commit per write with a
// single writer: the latency floor of an interactive command.
func BenchmarkUpdate(b *testing.B) {
	d := openT(b, filepath.Join(b.TempDir(), "store.db"), Options{})
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		err := d.Update(ctx, func(tx store.Tx) error {
			return tx.Put(fmt.Appendf(nil, "s/%08d", i), benchValue)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// writers32 runs b.N writes spread over exactly 32 goroutines (RunParallel
// would tie the count to GOMAXPROCS).
func writers32(b *testing.B, write func(ctx context.Context, fn func(store.Tx) error) error) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				err := write(ctx, func(tx store.Tx) error {
					return tx.Put(fmt.Appendf(nil, "s/%08d", i), benchValue)
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkBatch32 measures durable writes from 32 concurrent writers that
// share commits through Batch; compare with BenchmarkUpdate32.
func BenchmarkBatch32(b *testing.B) {
	d := openT(b, filepath.Join(b.TempDir(), "store.db"), Options{})
	writers32(b, d.Batch)
}

// BenchmarkUpdate32 is BenchmarkBatch32 with one commit per write, the
// baseline Batch has to beat.
func BenchmarkUpdate32(b *testing.B) {
	d := openT(b, filepath.Join(b.TempDir(), "store.db"), Options{})
	writers32(b, d.Update)
}

// BenchmarkGet measures a View with one Get in a store of 100k keys.
func BenchmarkGet(b *testing.B) {
	const keys = 100_000
	d := openT(b, filepath.Join(b.TempDir(), "store.db"), Options{NoSync: true})
	ctx := context.Background()
	for start := 0; start < keys; start += 10_000 {
		err := d.Update(ctx, func(tx store.Tx) error {
			for i := start; i < start+10_000; i++ {
				if err := tx.Put(fmt.Appendf(nil, "s/%08d", i), benchValue); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	key := make([]byte, 0, 16)
	b.ResetTimer()
	for i := range b.N {
		key = fmt.Appendf(key[:0], "s/%08d", (i*7919)%keys)
		err := d.View(ctx, func(tx store.Tx) error {
			_, err := tx.Get(key)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

package core_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
)

// BenchmarkPut measures a durable, audited Put through the Service: the
// database commit and the audit entry are both fsynced. With 32 writers the
// backend's group commit lets them share fsyncs.
func BenchmarkPut(b *testing.B) {
	for _, writers := range []int{1, 32} {
		for _, sync := range []audit.SyncMode{audit.SyncFsync, audit.SyncWrite} {
			b.Run(fmt.Sprintf("writers=%d/audit=%s", writers, sync), func(b *testing.B) {
				l := open(b, initStore(b, sync))
				defer l.Close()
				ctx := context.Background()
				var seq atomic.Int64
				b.SetParallelism((writers + 1) / 2) // GOMAXPROCS is 2 here
				start := time.Now()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := seq.Add(1)
						if _, err := l.Put(ctx, fmt.Sprintf("bench/k%d", i%5000), secret.NewValue([]byte("value")), secret.PutOptions{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
			})
		}
	}
}

// BenchmarkGet measures an audited Get through the Service.
func BenchmarkGet(b *testing.B) {
	for _, sync := range []audit.SyncMode{audit.SyncFsync, audit.SyncWrite} {
		b.Run("audit="+string(sync), func(b *testing.B) {
			l := open(b, initStore(b, sync))
			defer l.Close()
			ctx := context.Background()
			for i := range 1000 {
				if _, err := l.Put(ctx, fmt.Sprintf("bench/k%d", i), secret.NewValue([]byte("value")), secret.PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			i := 0
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				if _, err := l.Get(ctx, fmt.Sprintf("bench/k%d", i%1000), secret.Selector{}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkGetParallel measures audited reads from 32 concurrent callers,
// as a server sees them: with audit fsync each read is durable before it
// returns, and concurrent reads share fsyncs (the audit log's group commit).
func BenchmarkGetParallel(b *testing.B) {
	for _, sync := range []audit.SyncMode{audit.SyncFsync, audit.SyncWrite} {
		b.Run("audit="+string(sync), func(b *testing.B) {
			benchParallelReads(b, initStore(b, sync))
		})
	}
}

// benchParallelReads opens a store with opts, puts 1,000 secrets and
// reads them from 32 goroutines on 2 cores, reporting reads/s.
func benchParallelReads(b *testing.B, opts core.Options) {
	l := open(b, opts)
	defer l.Close()
	ctx := context.Background()
	for i := range 1000 {
		if _, err := l.Put(ctx, fmt.Sprintf("bench/k%d", i), secret.NewValue([]byte("value")), secret.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.SetParallelism(16) // 32 goroutines on 2 cores
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := l.Get(ctx, fmt.Sprintf("bench/k%d", i%1000), secret.Selector{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
}

// BenchmarkGetCheckpoint measures what the background checkpointer costs
// reads: 32 concurrent readers (audit=write, where a database commit is
// largest next to a read) with the checkpointer practically off (1h), at
// the default interval, and at 10 ms. Each tick that finds the head moved
// records it with one database commit.
func BenchmarkGetCheckpoint(b *testing.B) {
	for _, every := range []time.Duration{time.Hour, core.DefaultCheckpointInterval, 10 * time.Millisecond} {
		b.Run("interval="+every.String(), func(b *testing.B) {
			opts := initStore(b, audit.SyncWrite)
			opts.CheckpointInterval = every
			benchParallelReads(b, opts)
		})
	}
}

// BenchmarkCreateToken measures one token creation (an OIDC login's store
// work) in a store already holding 1k or 100k tokens: it must not grow
// with the number of tokens.
func BenchmarkCreateToken(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			opts := initStore(b, audit.SyncWrite)
			opts.NoSync = true // the figure is the work per login, not the disk's fsync
			l := open(b, opts)
			defer l.Close()
			ctx := context.Background()
			if err := core.SeedTokens(ctx, l, n); err != nil {
				b.Fatal(err)
			}
			req := secret.TokenRequest{Identity: "repo:acme/app:ref:refs/heads/main", Claims: map[string]string{"repository": "acme/app"}, TTL: 15 * time.Minute}
			for b.Loop() {
				if _, _, err := l.CreateToken(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

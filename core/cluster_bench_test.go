package core_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
)

// clusterBenchOpts initialises a store in the shared etcd cluster and
// returns the options of its server "a" with the audit sync mode given.
func clusterBenchOpts(b *testing.B, sync audit.SyncMode) core.Options {
	opts, _, _ := initCluster(b)
	opts.AuditSync = sync
	return opts
}

// BenchmarkClusterGet is benchParallelReads on one server of a store in
// the shared etcd cluster: beside BenchmarkGetParallel's figures it shows
// what the etcd reads and the replication of every read's audit entry
// cost (waited for with audit fsync, in the background with write).
func BenchmarkClusterGet(b *testing.B) {
	for _, sync := range []audit.SyncMode{audit.SyncFsync, audit.SyncWrite} {
		b.Run("audit="+string(sync), func(b *testing.B) {
			benchParallelReads(b, clusterBenchOpts(b, sync))
		})
	}
}

// BenchmarkClusterPut measures writes from 16 concurrent callers on one
// server of a store in etcd, each a new version of one of 1,000 secrets:
// the server's group commit and the etcd Txn that carries each batch.
func BenchmarkClusterPut(b *testing.B) {
	l := open(b, clusterBenchOpts(b, audit.SyncFsync))
	defer l.Close()
	ctx := context.Background()
	var seq atomic.Int64
	b.SetParallelism(8) // 16 goroutines on 2 cores
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := l.Put(ctx, fmt.Sprintf("bench/w%d", i%1000), secret.NewValue([]byte("value")), secret.PutOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

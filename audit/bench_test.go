package audit

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []SyncMode{SyncFsync, SyncWrite} {
		b.Run("sync="+string(mode), func(b *testing.B) {
			ctx := context.Background()
			l := openBenchLog(b, mode)
			e := sample(3) // a denial with details: a larger than average entry
			for b.Loop() {
				if _, err := l.Append(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkAppendParallel is a server's load: 16 appenders at once, whose
// lines share write calls and fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	for _, mode := range []SyncMode{SyncFsync, SyncWrite} {
		b.Run("sync="+string(mode), func(b *testing.B) {
			ctx := context.Background()
			l := openBenchLog(b, mode)
			e := sample(3)
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(ctx, e); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	const n = 10_000
	path, entries := writeLog(b, n)
	anchor := Head{Seq: entries[n-1].Seq, Hash: entries[n-1].Hash}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	ctx := context.Background()
	for b.Loop() {
		rep, err := Verify(ctx, path, anchor)
		if err != nil || !rep.OK {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func openBenchLog(b *testing.B, mode SyncMode) *Log {
	b.Helper()
	l, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.log"), Options{Sync: mode})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

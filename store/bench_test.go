package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// benchStore is a populated store shared by the benchmarks of one size;
// building the million-secret one takes a while, so it is built once per
// process.
type benchStore struct {
	dir  string
	kr   *keyring.Keyring
	n    int
	err  error
	once sync.Once
}

var benchStores = map[int]*benchStore{1_000: {n: 1_000}, 100_000: {n: 100_000}, 1_000_000: {n: 1_000_000}}

func benchPath(i int) string { return fmt.Sprintf("team%03d/app%03d/secret%07d", i%997, i%101, i) }

func (bs *benchStore) build(b *testing.B) {
	bs.once.Do(func() {
		bs.dir, bs.err = os.MkdirTemp("", "passman-bench-")
		if bs.err != nil {
			return
		}
		ctx := context.Background()
		if bs.kr, bs.err = keyring.New(time.Now()); bs.err != nil {
			return
		}
		db, err := boltdb.Open(ctx, filepath.Join(bs.dir, "passman.db"), boltdb.Options{NoSync: true})
		if err != nil {
			bs.err = err
			return
		}
		defer db.Close()
		if bs.err = store.Init(ctx, db, bs.kr, "bench", store.Options{}); bs.err != nil {
			return
		}
		st, err := store.Open(ctx, db, bs.kr, store.Options{})
		if err != nil {
			bs.err = err
			return
		}
		// Concurrent writers let the backend batch commits: loading a
		// million secrets one commit at a time would take minutes.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < bs.n; i += 8 {
					if _, err := st.Put(ctx, store.Call{Actor: "bench"}, benchPath(i), []byte(fmt.Sprintf("value-%d-%032d", i, i)), secret.PutOptions{}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		bs.err = <-errs
	})
	if bs.err != nil {
		b.Fatal(bs.err)
	}
}

// BenchmarkGet measures a store-level Get, decryption included, at three
// store sizes, reporting p50/p99 latency. Paths are drawn at random so the
// B+tree is exercised across its whole key range.
func BenchmarkGet(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			bs := benchStores[n]
			bs.build(b)
			ctx := context.Background()
			db, err := boltdb.Open(ctx, filepath.Join(bs.dir, "passman.db"), boltdb.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			st, err := store.Open(ctx, db, bs.kr, store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p := benchPath(rng.IntN(n))
				t0 := time.Now()
				if _, err := st.Get(ctx, p, secret.Selector{}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportPercentiles(b, lat)
		})
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

const rssChildEnv = "PASSMAN_BENCH_RSS_CHILD"

// BenchmarkOpenAndReadRSS opens the million-secret store in a fresh process,
// reads 100,000 random secrets and reports that process's peak resident set
// size: the figure a sidecar or CI job would see.
func BenchmarkOpenAndReadRSS(b *testing.B) {
	if dir := os.Getenv(rssChildEnv); dir != "" {
		b.Skip("child")
	}
	bs := benchStores[1_000_000]
	bs.build(b)
	// One child per run, whatever b.N: each child reads 100k secrets, and the
	// figure is its peak RSS, not a time per iteration.
	b.StopTimer()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), rssChildEnv+"="+bs.dir, keyring.EnvVar+"="+bs.kr.EncodeEnv())
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out)
	}
	figures := map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		if name, v, ok := strings.Cut(line, "-kb "); ok {
			kb, _ := strconv.Atoi(v)
			figures[name] = float64(kb) / 1024
		}
	}
	if figures["VmHWM"] == 0 {
		b.Fatalf("child reported no RSS:\n%s", out)
	}
	// Peak RSS, and at the end the split between anonymous memory (heap,
	// stacks) and file pages mapped from the database.
	b.ReportMetric(figures["VmHWM"], "peak-RSS-MB")
	b.ReportMetric(figures["RssAnon"], "anon-MB")
	b.ReportMetric(figures["RssFile"], "file-MB")
}

// TestRSSChild is BenchmarkOpenAndReadRSS's child; it does nothing in a
// normal test run.
func TestRSSChild(t *testing.T) {
	dir := os.Getenv(rssChildEnv)
	if dir == "" {
		t.Skip("child process of BenchmarkOpenAndReadRSS")
	}
	ctx := context.Background()
	kr, err := keyring.FromEnv(os.Getenv(keyring.EnvVar))
	if err != nil {
		t.Fatal(err)
	}
	db, err := boltdb.Open(ctx, filepath.Join(dir, "passman.db"), boltdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := store.Open(ctx, db, kr, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		if _, err := st.Get(ctx, benchPath(rng.IntN(1_000_000)), secret.Selector{}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, field := range []string{"VmHWM", "RssAnon", "RssFile"} {
			if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
				fmt.Printf("%s-kb %s\n", field, strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
}

// BenchmarkPut measures a durable store-level Put (fsync on commit), single
// writer and 32 concurrent writers sharing commits through batching.
func BenchmarkPut(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			ctx := context.Background()
			kr, _ := keyring.New(time.Now())
			db, err := boltdb.Open(ctx, filepath.Join(b.TempDir(), "passman.db"), boltdb.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := store.Init(ctx, db, kr, "bench", store.Options{}); err != nil {
				b.Fatal(err)
			}
			st, _ := store.Open(ctx, db, kr, store.Options{})
			var seq int64
			var mu sync.Mutex
			next := func() int64 { mu.Lock(); defer mu.Unlock(); seq++; return seq }
			b.SetParallelism((writers + 1) / 2)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next()
					if _, err := st.Put(ctx, store.Call{Actor: "bench"}, fmt.Sprintf("bench/k%d", i%5000), []byte("value"), secret.PutOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
		})
	}
}

// TestMain removes the benchmark stores, which are too big to leave behind.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, bs := range benchStores {
		if bs.dir != "" {
			os.RemoveAll(bs.dir)
		}
	}
	os.Exit(code)
}

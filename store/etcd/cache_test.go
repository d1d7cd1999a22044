package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/store"
)

// pair opens a writer without a cache and a reader that caches prefix, on
// one store of the shared cluster, and waits for the reader's cache.
func pair(t *testing.T, prefix string) (w, r *DB) {
	t.Helper()
	ctx := context.Background()
	p := etcdtest.Prefix(t.Name())
	var err error
	if w, err = Open(ctx, Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: p}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if r, err = Open(ctx, Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: p, ReadCache: []string{prefix}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	waitReady(t, r.caches[0])
	return w, r
}

func waitReady(t *testing.T, c *readCache) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		c.mu.RLock()
		ready := c.ready
		c.mu.RUnlock()
		if ready {
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("read cache not loaded after 10s")
		}
	}
}

func put(t *testing.T, d *DB, k, v string) {
	t.Helper()
	if err := d.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte(k), []byte(v)) }); err != nil {
		t.Fatal(err)
	}
}

// read returns k's value as r's View sees it, "" for a missing key.
func read(t *testing.T, r *DB, k string) string {
	t.Helper()
	var got string
	err := r.View(context.Background(), func(tx store.Tx) error {
		v, err := tx.Get([]byte(k))
		if errors.Is(err, store.ErrKeyNotFound) {
			return nil
		}
		got = string(v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A write acknowledged to one server is what the next read on another
// sees, when the reader answers from its cache: the read waits for the
// watch to pass the barrier's revision. Deletes and re-creations too.
func TestReadCacheIsLinearizable(t *testing.T) {
	w, r := pair(t, "s/")
	ctx := context.Background()
	hits, _ := CacheStats()
	const n = 200
	for i := range n {
		k := fmt.Sprintf("s/k%d", i%7)
		want := fmt.Sprint(i)
		if i%5 == 4 {
			if err := w.Update(ctx, func(tx store.Tx) error { return tx.Delete([]byte(k)) }); err != nil {
				t.Fatal(err)
			}
			want = ""
		} else {
			put(t, w, k, want)
		}
		if got := read(t, r, k); got != want {
			t.Fatalf("write %d: the other server read %q, want %q", i, got, want)
		}
	}
	if h, _ := CacheStats(); h-hits < n/2 {
		t.Fatalf("the cache answered %d of %d reads", h-hits, n)
	}
}

// A revision that moves outside the cached prefix (no event reaches the
// watch) still reaches the cache: it asks its member for a progress
// notification. Without one the cache's revision would never pass the
// other key's, and every read would go to etcd. (Whether a read is then
// answered by the cache depends on other tests' writes moving etcd's
// revision meanwhile: TestConformanceReadCache counts those.)
func TestReadCacheAsksForProgress(t *testing.T) {
	w, r := pair(t, "s/")
	put(t, w, "s/a", "1")
	for i := range 5 {
		put(t, w, "m/other", fmt.Sprint(i))
		rev := w.seen.Load()
		// A notification may go unanswered (a member answers only while
		// its watches are in sync): each wait asks again, within a bound
		// a loaded machine keeps.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := r.caches[0].waitFor(context.Background(), rev); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cache did not reach revision %d, where only a key outside it changed", rev)
			}
		}
		if got := read(t, r, "s/a"); got != "1" {
			t.Fatalf("read %q, want 1", got)
		}
	}
}

// A transaction keeps its snapshot: a key another server changed after
// the snapshot is read from etcd at the snapshot, not from the newer cache.
func TestReadCacheKeepsSnapshot(t *testing.T) {
	w, r := pair(t, "s/")
	put(t, w, "s/a", "old-a")
	put(t, w, "s/b", "old-b")
	err := r.View(context.Background(), func(tx store.Tx) error {
		if v, err := tx.Get([]byte("s/a")); err != nil || string(v) != "old-a" {
			return fmt.Errorf("s/a: %q, %v", v, err)
		}
		put(t, w, "s/b", "new-b")
		// Until the watch has it, the cache would answer old-b anyway:
		// wait for it so that the snapshot rule is what is tested.
		if _, ok := r.caches[0].waitFor(context.Background(), w.seen.Load()); !ok {
			return errors.New("cache did not catch up")
		}
		if v, err := tx.Get([]byte("s/b")); err != nil || string(v) != "old-b" {
			return fmt.Errorf("s/b in the snapshot: %q, %v (want old-b)", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, r, "s/b"); got != "new-b" {
		t.Fatalf("next read %q, want new-b", got)
	}
}

// A watch that breaks drops the cache: reads go to etcd meanwhile, and
// the cache is loaded again with what was written while it was down. A
// compaction leaves a live watch be; one that passes the watch while its
// member is lost (the client resumes it on another member from where it
// stopped, now compacted away) breaks it, and the cache is loaded again.
// On a cluster of its own: compaction is cluster-wide.
func TestReadCacheReloads(t *testing.T) {
	ec := etcdtest.New(t, etcdtest.Options{})
	ctx := context.Background()
	// The writer talks to member 1, the reader to member 0 alone, so that
	// the reader's watch can be cut off.
	w, err := Open(ctx, Config{Endpoints: []string{ec.Member(1).ClientURL}, Prefix: "rl/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	rcli, err := clientv3.New(clientv3.Config{Endpoints: []string{ec.Member(0).ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rcli.Close() })
	r, err := Open(ctx, Config{Client: rcli, Prefix: "rl/", ReadCache: []string{"s/"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c := r.caches[0]
	waitReady(t, c)
	cached := func(want map[string]string) {
		t.Helper()
		hits, _ := CacheStats()
		for k, v := range want {
			if got := read(t, r, k); got != v {
				t.Fatalf("%s: read %q, want %q", k, got, v)
			}
		}
		if h, _ := CacheStats(); h-hits != int64(len(want)) {
			t.Fatalf("the cache answered %d of %d reads", h-hits, len(want))
		}
	}
	base := func() int64 {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return c.base
	}

	// The watch breaks.
	put(t, w, "s/a", "1")
	c.mu.RLock()
	stop := c.stopWatch
	c.mu.RUnlock()
	stop()
	put(t, w, "s/a", "2")
	put(t, w, "s/b", "3")
	if got := read(t, r, "s/a"); got != "2" {
		t.Fatalf("read while the cache reloads: %q, want 2", got)
	}
	waitReady(t, c)
	cached(map[string]string{"s/a": "2", "s/b": "3"})

	// A compaction up to the latest revision, the watch live.
	loaded := base()
	put(t, w, "s/a", "4")
	if _, err := w.cli.Compact(ctx, w.seen.Load()); err != nil {
		t.Fatal(err)
	}
	put(t, w, "s/c", "5")
	cached(map[string]string{"s/a": "4", "s/c": "5"})
	if b := base(); b != loaded {
		t.Fatalf("the cache was loaded again (base %d, was %d): a compaction behind the watch broke it", b, loaded)
	}

	// The reader's member is lost; writes and a compaction pass the watch
	// meanwhile; the watch resumes on another member.
	if err := ec.Kill(0); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := ec.WaitLeader(lctx); err != nil {
		t.Fatal(err)
	}
	put(t, w, "s/a", "6")
	put(t, w, "s/d", "7")
	compacted := w.seen.Load()
	if _, err := w.cli.Compact(ctx, compacted); err != nil {
		t.Fatal(err)
	}
	rcli.SetEndpoints(ec.Member(1).ClientURL)
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		c.mu.RLock()
		ready, b := c.ready, c.base
		c.mu.RUnlock()
		if ready && b >= compacted {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the cache was not loaded again past the compaction at %d (ready %v, base %d)", compacted, ready, b)
		}
	}
	cached(map[string]string{"s/a": "6", "s/b": "3", "s/c": "5", "s/d": "7"})
}

// A watch catching up on a backlog gets it in responses of at most 1,000
// revisions, each headed with the member's latest revision: the cache
// must not take that header as its revision while events up to it are
// still to come, or it answers "missing" for keys written since.
func TestReadCacheCatchesUpInSteps(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: etcdtest.Prefix(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := d.prefix + "s/"
	r0, err := d.cli.Get(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1100
	keys, revs := make([]string, n), make([]int64, n)
	for i := range n {
		keys[i] = fmt.Sprintf("%sk%04d", p, i)
		resp, err := d.cli.Put(ctx, keys[i], "v")
		if err != nil {
			t.Fatal(err)
		}
		revs[i] = resp.Header.Revision
	}
	c := newReadCache(d, "s/")
	c.kv, c.base, c.rev, c.ready = map[string]cacheEntry{}, r0.Header.Revision, r0.Header.Revision, true
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := d.cli.Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithRev(r0.Header.Revision+1))
	responses := 0
	for c.rev < revs[n-1] {
		var resp clientv3.WatchResponse
		select {
		case resp = <-wch:
		case <-time.After(10 * time.Second):
			t.Fatalf("the watch stopped at revision %d of %d", c.rev, revs[n-1])
		}
		if err := resp.Err(); err != nil {
			t.Fatal(err)
		}
		c.apply(resp)
		responses++
		for i, k := range keys {
			if e, ok := c.get(k, c.rev); ok && e.ok != (revs[i] <= c.rev) {
				t.Fatalf("after response %d (%d events, header %d), the cache at revision %d answers %s (written at %d) present=%v",
					responses, len(resp.Events), resp.Header.Revision, c.rev, k, revs[i], e.ok)
			}
		}
	}
	if responses < 2 {
		t.Fatalf("the backlog came in %d response: the test needs it split", responses)
	}
}

// Deleted keys leave tombstones, which the cache drops once they are a
// period old, raising the revision it answers from: its size follows the
// live keys, not every key ever deleted. Reads stay exact.
func TestReadCacheDropsTombstones(t *testing.T) {
	old := tombstoneAge
	tombstoneAge = 20 * time.Millisecond
	t.Cleanup(func() { tombstoneAge = old })
	w, r := pair(t, "s/")
	c := r.caches[0]
	ctx := context.Background()
	const n = 50
	for i := range n {
		put(t, w, fmt.Sprintf("s/k%d", i), "v")
	}
	err := w.Update(ctx, func(tx store.Tx) error {
		for i := range n {
			if err := tx.Delete(fmt.Appendf(nil, "s/k%d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deleted := w.seen.Load()
	put(t, w, "s/live", "1")
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		c.mu.RLock()
		tombs, base := 0, c.base
		for _, e := range c.kv {
			if !e.ok {
				tombs++
			}
		}
		c.mu.RUnlock()
		if tombs == 0 && base >= deleted {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("after 5s the cache holds %d tombstones, base %d (deletes at %d)", tombs, base, deleted)
		}
	}
	hits, _ := CacheStats()
	if got := read(t, r, "s/k7"); got != "" {
		t.Fatalf("deleted key read %q", got)
	}
	if got := read(t, r, "s/live"); got != "1" {
		t.Fatalf("live key read %q, want 1", got)
	}
	if h, _ := CacheStats(); h-hits != 2 {
		t.Fatalf("the cache answered %d of 2 reads", h-hits)
	}
}

// A server's write groups read from its cache, their own earlier writes
// included: the snapshot is the revision the cache reached, not the
// commit's answer, which a leader gives before the member serving the
// watch has applied it.
func TestBatchReadsItsOwnWritesFromCache(t *testing.T) {
	_, d := pair(t, "s/")
	ctx := context.Background()
	_, misses := CacheStats()
	const n = 30
	for i := range n {
		err := d.Batch(ctx, func(tx store.Tx) error {
			v, err := tx.Get([]byte("s/counter"))
			if err != nil && err != store.ErrKeyNotFound {
				return err
			}
			if string(v) != fmt.Sprint(i) && i > 0 {
				return fmt.Errorf("counter %q before write %d", v, i)
			}
			return tx.Put([]byte("s/counter"), fmt.Append(nil, i+1))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, m := CacheStats(); m != misses {
		t.Fatalf("%d of %d write groups read from etcd", m-misses, n)
	}
}

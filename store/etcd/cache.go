package etcd

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A read cache keeps, in memory, the latest value and mod revision of every
// key under the prefixes Config.CacheReads names, loaded by one paginated
// range at revision L and kept current by a watch from L+1: the state at
// its revision rev, exactly as etcd had it. A transaction reading at a
// snapshot revision R (base <= R <= rev) answers a point read from it
// without asking etcd: a key whose mod revision is R or less has not
// changed between R and rev, so its value at R is the cached one; a key
// changed after R is read from etcd at R as before; a key the cache does
// not hold did not exist at any revision since base (L at first; a
// deleted key stays as a tombstone until pruneLocked raises base past its
// delete). A linearizable first read waits for the shared barrier's
// revision B (barrier.go) as before, then for the watch to reach B (asking
// the member for a progress notification when no event moves it there), and
// reads at the cache's revision, a snapshot taken after B: the same
// guarantee as a range at B, without the range. This is Kubernetes'
// "consistent reads from cache". While the watch is broken (a lost member,
// a compaction) the cache is dropped and reads go to etcd until it is
// loaded again.
type readCache struct {
	d      *DB
	prefix string // full key

	mu sync.RWMutex
	// ready: kv holds the state at rev; base is the oldest revision it
	// answers for (the load's, raised as tombstones are dropped).
	ready     bool
	base, rev int64
	kv        map[string]cacheEntry
	// moved is closed (and replaced) whenever rev moves or the cache is
	// dropped, for waitFor.
	moved chan struct{}

	// progress asks the watch's member for a progress notification.
	progress func()
	// stopWatch ends the current watch, as a lost member or a compaction
	// would (tests).
	stopWatch context.CancelFunc
	// asked: a progress request is out and not yet answered.
	asked atomic.Bool
	// tombstoneAge is the package's, read once.
	tombstoneAge time.Duration
}

// cacheEntry is a key's latest state: its value, or a tombstone (ok false)
// at the revision that deleted it.
type cacheEntry struct {
	val    []byte
	modRev int64
	ok     bool
}

// tombstoneAge is how often the cache drops the tombstones older than its
// previous drop (pruneLocked): a deleted key's entry lasts one to two
// periods.
var tombstoneAge = time.Minute

// cacheWait bounds how long a first read waits for the watch to reach the
// barrier's revision before it asks etcd instead.
const cacheWait = 20 * time.Millisecond

// cacheHits and cacheMisses count point reads under a cached prefix that
// the cache answered and that went to etcd, for tests and benchmarks.
var cacheHits, cacheMisses atomic.Int64

// CacheStats returns how many point reads under a cached prefix in this
// process the read cache answered and how many went to etcd.
func CacheStats() (hits, misses int64) { return cacheHits.Load(), cacheMisses.Load() }

func newReadCache(d *DB, prefix string) *readCache {
	return &readCache{d: d, prefix: d.prefix + prefix, moved: make(chan struct{}), tombstoneAge: tombstoneAge}
}

// cacheFor is the cache holding full, nil if none does.
func (d *DB) cacheFor(full string) *readCache {
	for _, c := range d.caches {
		if strings.HasPrefix(full, c.prefix) {
			return c
		}
	}
	return nil
}

// run loads and watches the prefix until ctx ends.
func (c *readCache) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.once(ctx)
		c.drop()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// once loads the prefix and follows its watch until the watch breaks.
func (c *readCache) once(ctx context.Context) {
	p := c.prefix
	end := prefixEnd(p)
	kv := map[string]cacheEntry{}
	var base int64
	from := p
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(c.d.cfg.PageSize))}
		if base != 0 {
			opts = append(opts, clientv3.WithRev(base))
		}
		resp, err := c.d.cli.Get(ctx, from, opts...)
		if err != nil {
			return
		}
		if base == 0 {
			base = resp.Header.Revision
		}
		for _, e := range resp.Kvs {
			kv[string(e.Key)] = cacheEntry{val: e.Value, modRev: e.ModRevision, ok: true}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.d.cli.Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithRev(base+1))
	c.mu.Lock()
	c.kv, c.base, c.rev, c.ready, c.stopWatch = kv, base, base, true, cancel
	c.progress = func() {
		pctx, pcancel := context.WithTimeout(wctx, time.Second)
		defer pcancel()
		_ = c.d.cli.RequestProgress(pctx)
	}
	c.notifyLocked()
	c.mu.Unlock()
	prune := time.NewTicker(c.tombstoneAge)
	defer prune.Stop()
	// mark is the cache's revision at the previous tick: the tombstones
	// dropped at a tick are at least one period old.
	var mark int64
	for {
		select {
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil || resp.Canceled || resp.CompactRevision != 0 {
				return
			}
			c.apply(resp)
		case <-prune.C:
			c.mu.Lock()
			c.pruneLocked(mark)
			mark = c.rev
			c.mu.Unlock()
		}
	}
}

// pruneLocked drops the tombstones of deletes at revision p or before and
// raises base to p: a key the cache does not hold was then missing at
// every revision from p on, and a read at a revision before p goes to
// etcd. Without it every deleted key (version pruning deletes one per
// write past a secret's retention) would stay until the next reload.
func (c *readCache) pruneLocked(p int64) {
	if p <= c.base {
		return
	}
	for k, e := range c.kv {
		if !e.ok && e.modRev <= p {
			delete(c.kv, k)
		}
	}
	c.base = p
}

// apply takes one watch response into the cache. Its header names the
// member's latest revision, which only a progress notification vouches
// for: a watch catching up gets its backlog in responses of at most 1,000
// revisions (each ending on a revision's last event), all headed with the
// latest, so the cache's revision is the last event's.
func (c *readCache) apply(resp clientv3.WatchResponse) {
	var rev int64
	if resp.IsProgressNotify() {
		rev = resp.Header.Revision
	} else if n := len(resp.Events); n > 0 {
		rev = resp.Events[n-1].Kv.ModRevision
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range resp.Events {
		k := string(ev.Kv.Key)
		if ev.Type == clientv3.EventTypeDelete {
			c.kv[k] = cacheEntry{modRev: ev.Kv.ModRevision}
			continue
		}
		c.kv[k] = cacheEntry{val: ev.Kv.Value, modRev: ev.Kv.ModRevision, ok: true}
	}
	c.asked.Store(false)
	if rev > c.rev {
		c.rev = rev
		c.notifyLocked()
	}
}

func (c *readCache) notifyLocked() {
	close(c.moved)
	c.moved = make(chan struct{})
}

// drop forgets everything: reads go to etcd until the next load.
func (c *readCache) drop() {
	c.mu.Lock()
	c.ready, c.kv, c.progress, c.stopWatch = false, nil, nil, nil
	c.notifyLocked()
	c.mu.Unlock()
	c.asked.Store(false)
}

// waitFor returns the cache's revision once it is at least rev, or false
// when the cache is not loaded or does not get there within cacheWait.
func (c *readCache) waitFor(ctx context.Context, rev int64) (int64, bool) {
	var timer *time.Timer
	for {
		c.mu.RLock()
		ready, cur, moved, progress := c.ready, c.rev, c.moved, c.progress
		c.mu.RUnlock()
		if !ready {
			return 0, false
		}
		if cur >= rev {
			return cur, true
		}
		if c.asked.CompareAndSwap(false, true) {
			go progress()
		}
		if timer == nil {
			timer = time.NewTimer(cacheWait)
			defer timer.Stop()
		}
		select {
		case <-moved:
		case <-timer.C:
			// The request may have gone unanswered (a member answers
			// only while its watches are in sync): the next wait asks
			// again.
			c.asked.Store(false)
			return 0, false
		case <-ctx.Done():
			return 0, false
		}
	}
}

// get answers a read of full at revision at, if the cache can.
func (c *readCache) get(full string, at int64) (readEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.ready || at < c.base || at > c.rev {
		return readEntry{}, false
	}
	e, ok := c.kv[full]
	switch {
	case !ok:
		return readEntry{}, true
	case e.modRev > at:
		return readEntry{}, false
	case !e.ok:
		return readEntry{}, true
	}
	return readEntry{modRev: e.modRev, val: e.val, ok: true}, true
}

// cachedRev is a group commit's snapshot (Batch's and ReadBatch's): the
// revision every read cache has reached, so that they answer its reads;
// without a loaded cache, the latest revision this server saw. A cache
// behind this server's own latest write to it is waited for (its watch
// brings that write within milliseconds): a read that follows a write on
// the same server would otherwise read before it, lose its commit and run
// again. Not the latest revision seen: a commit answered by the leader
// names a revision the caches' watches, served by whichever member, reach
// a little later, and a snapshot past them sends every read to etcd
// (bench-cluster's writes: 0.14 ranges per write against 0.015).
func (d *DB) cachedRev() int64 {
	own := d.wroteCached.Load()
	var rev int64
	for _, c := range d.caches {
		c.mu.RLock()
		ready, r := c.ready, c.rev
		c.mu.RUnlock()
		if !ready {
			return d.seen.Load()
		}
		if r < own {
			if at, ok := c.waitFor(context.Background(), own); ok {
				r = at
			}
		}
		if rev == 0 || r < rev {
			rev = r
		}
	}
	if rev == 0 {
		return d.seen.Load()
	}
	return rev
}

// noteCachedWrites records rev as the latest commit of this server that
// wrote a key a read cache holds, if t wrote one.
func (d *DB) noteCachedWrites(t *tx, rev int64) {
	if len(d.caches) == 0 {
		return
	}
	for _, k := range t.order {
		if d.cacheFor(k) != nil {
			for {
				cur := d.wroteCached.Load()
				if rev <= cur || d.wroteCached.CompareAndSwap(cur, rev) {
					return
				}
			}
		}
	}
}

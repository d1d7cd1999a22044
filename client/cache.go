package client

import (
	"container/list"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
)

// DefaultCacheMaxEntries bounds the read cache when Options.CacheMaxEntries
// is 0.
const DefaultCacheMaxEntries = 1024

// CacheResult says how the read cache answered one Get. Pass one with
// WithCacheResult to learn it; a caller that does not ask sees a stale
// value exactly as a fresh one (err is nil either way).
type CacheResult struct {
	// Result is metrics.CacheHit, metrics.CacheMiss or metrics.CacheStale;
	// "" when the client has no cache.
	Result string
	// Age is how long ago the served value came from the server (0 for a
	// miss, which was just fetched).
	Age time.Duration
	// Err is the server failure a stale value stood in for (nil unless
	// Result is metrics.CacheStale).
	Err error
}

// Stale reports whether the value served was past its TTL, served because
// the server could not be reached.
func (r *CacheResult) Stale() bool { return r != nil && r.Result == metrics.CacheStale }

type cacheResultKey struct{}

// WithCacheResult returns a context that makes Get fill in r. The same r
// must not be shared by concurrent calls.
func WithCacheResult(ctx context.Context, r *CacheResult) context.Context {
	return context.WithValue(ctx, cacheResultKey{}, r)
}

func report(ctx context.Context, r CacheResult) {
	if p, ok := ctx.Value(cacheResultKey{}).(*CacheResult); ok && p != nil {
		*p = r
	}
}

// cache is the optional in-memory read cache of Get answers, keyed by
// (path, selector). It holds copies of values, never writes them to disk,
// and wipes a copy when it drops it. A nil *cache is a disabled cache.
type cache struct {
	ttl, staleFor time.Duration
	max           int
	m             *metrics.Metrics
	now           func() time.Time

	mu  sync.Mutex
	lru *list.List // of *cacheEntry, most recently used first
	idx map[string]map[secret.Selector]*list.Element
	// gen counts invalidations: a fetch that started before one does not
	// store its (possibly older) answer.
	gen uint64
}

type cacheEntry struct {
	path    string
	sel     secret.Selector
	v       secret.Versioned
	fetched time.Time
}

// newCache returns the cache opts ask for, or nil when CacheTTL is 0.
func newCache(opts Options) *cache {
	if opts.CacheTTL <= 0 {
		return nil
	}
	k := &cache{
		ttl:      opts.CacheTTL,
		staleFor: max(opts.CacheStaleFor, 0),
		max:      opts.CacheMaxEntries,
		m:        opts.Metrics,
		now:      time.Now,
		lru:      list.New(),
		idx:      map[string]map[secret.Selector]*list.Element{},
	}
	if k.max <= 0 {
		k.max = DefaultCacheMaxEntries
	}
	return k
}

// get answers from the cache while the entry is fresh, else calls fetch;
// when fetch fails because the server is unreachable or failing (see
// staleOK) and the entry is within the stale window, it serves the entry.
func (k *cache) get(ctx context.Context, path string, sel secret.Selector, fetch func(context.Context, string, secret.Selector) (secret.Versioned, error)) (secret.Versioned, error) {
	v, age, ok, gen := k.fresh(path, sel)
	if ok {
		k.m.ObserveCacheRequest(metrics.CacheHit)
		report(ctx, CacheResult{Result: metrics.CacheHit, Age: age})
		return v, nil
	}
	v, err := fetch(ctx, path, sel)
	if err == nil {
		k.store(path, sel, v, gen)
		k.m.ObserveCacheRequest(metrics.CacheMiss)
		report(ctx, CacheResult{Result: metrics.CacheMiss})
		return v, nil
	}
	var ae *Error
	if errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429 {
		// The server answered (not found, denied, ...): nothing cached
		// for the path may stand in for it later.
		k.invalidate(path)
	}
	if staleOK(err) {
		if sv, age, ok := k.stale(path, sel); ok {
			k.m.ObserveCacheRequest(metrics.CacheStale)
			report(ctx, CacheResult{Result: metrics.CacheStale, Age: age, Err: err})
			return sv, nil
		}
	}
	k.m.ObserveCacheRequest(metrics.CacheMiss)
	report(ctx, CacheResult{Result: metrics.CacheMiss})
	return v, err
}

// staleOK reports whether err means the server could not give an answer
// (a network error, a timeout, a 5xx) rather than gave one: a 4xx — not
// found, denied, unauthenticated, rate-limited — is an answer and is never
// masked by a stale value, nor is a caller's cancellation.
func staleOK(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, secret.ErrInvalidArgument) {
		return false
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	return true
}

// fresh returns a copy of the entry for (path, sel) while it is within
// its TTL, and the invalidation generation to store a fetch under.
func (k *cache) fresh(path string, sel secret.Selector) (secret.Versioned, time.Duration, bool, uint64) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	el := k.idx[path][sel]
	if el == nil {
		return secret.Versioned{}, 0, false, k.gen
	}
	e := el.Value.(*cacheEntry)
	age := now.Sub(e.fetched)
	if age >= k.ttl+k.staleFor {
		k.remove(el)
		return secret.Versioned{}, 0, false, k.gen
	}
	if age >= k.ttl || age < 0 {
		return secret.Versioned{}, 0, false, k.gen
	}
	k.lru.MoveToFront(el)
	return copyVersioned(e.v), age, true, k.gen
}

// stale returns a copy of the entry for (path, sel) if it is past its TTL
// but within the stale window, and was not invalidated.
func (k *cache) stale(path string, sel secret.Selector) (secret.Versioned, time.Duration, bool) {
	if k.staleFor == 0 {
		return secret.Versioned{}, 0, false
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	el := k.idx[path][sel]
	if el == nil {
		return secret.Versioned{}, 0, false
	}
	e := el.Value.(*cacheEntry)
	age := now.Sub(e.fetched)
	if age >= k.ttl+k.staleFor || age < 0 {
		k.remove(el)
		return secret.Versioned{}, 0, false
	}
	return copyVersioned(e.v), age, true
}

// store keeps a copy of v unless an invalidation happened since gen.
func (k *cache) store(path string, sel secret.Selector, v secret.Versioned, gen uint64) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen != k.gen {
		return
	}
	if el := k.idx[path][sel]; el != nil {
		k.remove(el)
	}
	byPath := k.idx[path]
	if byPath == nil {
		byPath = map[secret.Selector]*list.Element{}
		k.idx[path] = byPath
	}
	byPath[sel] = k.lru.PushFront(&cacheEntry{path: path, sel: sel, v: copyVersioned(v), fetched: now})
	for k.lru.Len() > k.max {
		k.remove(k.lru.Back())
	}
}

// invalidate drops every entry of path. A nil cache does nothing, so
// write methods call it unconditionally.
func (k *cache) invalidate(path string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen++
	for _, el := range k.idx[path] {
		k.remove(el)
	}
}

// len is the number of entries (tests).
func (k *cache) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lru.Len()
}

// remove drops el and wipes its value; k.mu is held.
func (k *cache) remove(el *list.Element) {
	e := k.lru.Remove(el).(*cacheEntry)
	if byPath := k.idx[e.path]; byPath != nil {
		delete(byPath, e.sel)
		if len(byPath) == 0 {
			delete(k.idx, e.path)
		}
	}
	e.v.Value.Wipe()
}

// copyVersioned copies v deeply: the cache and its callers never share
// bytes, so a caller wiping its value does not wipe the cache's.
func copyVersioned(v secret.Versioned) secret.Versioned {
	v.Info.Stages = slices.Clone(v.Info.Stages)
	v.Value = secret.NewValue(slices.Clone(v.Value.Reveal()))
	return v
}

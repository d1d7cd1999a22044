package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
)

// fakeStore is a test server answering Get from a map and Put into it;
// other writes answer 204. fail, when set, answers every Get instead:
// an HTTP status, or -1 to drop the connection.
type fakeStore struct {
	mu     sync.Mutex
	values map[string]string
	fail   int
	gets   int
}

func (f *fakeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, api.RouteGet.Path)
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, api.RouteGet.Path):
		f.gets++
		if f.fail == -1 {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if f.fail != 0 {
			w.WriteHeader(f.fail)
			fmt.Fprintf(w, `{"error":{"class":%q,"message":"scripted"}}`, api.ClassForStatus(f.fail))
			return
		}
		v, ok := f.values[path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"class":"not_found","message":"not found: scripted"}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(api.GetResponse{Path: path, Info: secret.VersionInfo{Version: 1, Stages: []secret.Stage{secret.StageCurrent}}, Value: []byte(v)})
	case r.Method == http.MethodPut:
		var in api.PutRequest
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.values[path] = string(in.Value)
		_, _ = w.Write([]byte(`{"version":2}`))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeStore) set(path, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[path] = v
}

func (f *fakeStore) setFail(st int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = st
}

func (f *fakeStore) getCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

func newCached(t *testing.T, opts Options) (*Client, *fakeStore, *testclock.Clock) {
	t.Helper()
	f := &fakeStore{values: map[string]string{"app/a": "one"}}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	opts.Addr, opts.Transport, opts.Retries = srv.URL, srv.Client().Transport, -1
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if c.cache != nil {
		c.cache.now = clk.Now
	}
	return c, f, clk
}

// getR is Get returning the cache's report.
func getR(t *testing.T, c *Client, path string, sel secret.Selector) (string, CacheResult, error) {
	t.Helper()
	var r CacheResult
	v, err := c.Get(WithCacheResult(context.Background(), &r), path, sel)
	return string(v.Value.Reveal()), r, err
}

func wantGet(t *testing.T, c *Client, path, want, result string) CacheResult {
	t.Helper()
	got, r, err := getR(t, c, path, secret.Selector{})
	if err != nil || got != want || r.Result != result {
		t.Fatalf("get %s = %q, %+v, %v; want %q, %s", path, got, r, err, want, result)
	}
	return r
}

func cacheCount(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metrics.NameClientCacheRequests {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestCacheOffByDefault(t *testing.T) {
	t.Parallel()
	c, f, _ := newCached(t, Options{})
	if c.cache != nil {
		t.Fatal("cache on without CacheTTL")
	}
	for range 3 {
		if _, r, err := getR(t, c, "app/a", secret.Selector{}); err != nil || r.Result != "" {
			t.Fatalf("get: %+v %v", r, err)
		}
	}
	if f.getCount() != 3 {
		t.Fatalf("server saw %d gets, want 3", f.getCount())
	}
}

func TestCacheHitMissExpiry(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	c, f, clk := newCached(t, Options{CacheTTL: time.Minute, Metrics: m})

	wantGet(t, c, "app/a", "one", metrics.CacheMiss)
	f.set("app/a", "two") // changed behind the client's back
	clk.Advance(59 * time.Second)
	if r := wantGet(t, c, "app/a", "one", metrics.CacheHit); r.Age != 59*time.Second {
		t.Errorf("age %v", r.Age)
	}
	if f.getCount() != 1 {
		t.Fatalf("server saw %d gets, want 1", f.getCount())
	}
	// Another selector is another entry.
	if _, r, _ := getR(t, c, "app/a", secret.Selector{Version: 1}); r.Result != metrics.CacheMiss {
		t.Errorf("version selector: %+v", r)
	}
	clk.Advance(time.Second)
	wantGet(t, c, "app/a", "two", metrics.CacheMiss)
	wantGet(t, c, "app/a", "two", metrics.CacheHit)

	// Values are copies: wiping the caller's does not wipe the cache's.
	v, err := c.Get(context.Background(), "app/a", secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	v.Value.Wipe()
	wantGet(t, c, "app/a", "two", metrics.CacheHit)

	if h, miss := cacheCount(t, m, metrics.CacheHit), cacheCount(t, m, metrics.CacheMiss); h != 4 || miss != 3 {
		t.Errorf("metrics: hit %v miss %v, want 4 3", h, miss)
	}
}

func TestCacheStale(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	c, f, clk := newCached(t, Options{CacheTTL: time.Minute, CacheStaleFor: 5 * time.Minute, Metrics: m})
	wantGet(t, c, "app/a", "one", metrics.CacheMiss)
	clk.Advance(2 * time.Minute)

	// Server failures within the window serve the stale value, and say so.
	for _, st := range []int{500, 502, 503, -1} {
		f.setFail(st)
		r := wantGet(t, c, "app/a", "one", metrics.CacheStale)
		if !r.Stale() || r.Err == nil || r.Age != 2*time.Minute {
			t.Errorf("status %d: %+v", st, r)
		}
	}
	if n := cacheCount(t, m, metrics.CacheStale); n != 4 {
		t.Errorf("stale metric %v, want 4", n)
	}
	// 429 is not served stale (a 4xx), but keeps the entry.
	f.setFail(429)
	if _, r, err := getR(t, c, "app/a", secret.Selector{}); err == nil || r.Stale() {
		t.Fatalf("429: %+v %v", r, err)
	}
	// Past TTL+stale: the error.
	clk.Advance(4*time.Minute - time.Second) // 5m59s: the window is TTL+stale = 6m
	f.setFail(500)
	wantGet(t, c, "app/a", "one", metrics.CacheStale)
	clk.Advance(time.Second)
	if v, r, err := getR(t, c, "app/a", secret.Selector{}); err == nil || v != "" || r.Result != metrics.CacheMiss {
		t.Fatalf("past window: %q %+v %v", v, r, err)
	}
	if c.cache.len() != 0 {
		t.Errorf("expired entry kept")
	}
}

// TestCacheNeverMasksAnswers: a 404 or 403 after the TTL is returned, not
// masked, and drops the entry so that a later outage cannot bring it back.
func TestCacheNeverMasksAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status   int
		sentinel error
	}{{404, secret.ErrNotFound}, {403, secret.ErrPermissionDenied}, {401, secret.ErrUnauthenticated}} {
		c, f, clk := newCached(t, Options{CacheTTL: time.Minute, CacheStaleFor: time.Hour})
		wantGet(t, c, "app/a", "one", metrics.CacheMiss)
		clk.Advance(2 * time.Minute)
		f.setFail(tc.status)
		v, r, err := getR(t, c, "app/a", secret.Selector{})
		var ae *Error
		if !errors.Is(err, tc.sentinel) || !errors.As(err, &ae) || ae.Status != tc.status || v != "" || r.Stale() {
			t.Fatalf("%d: %q %+v %v", tc.status, v, r, err)
		}
		f.setFail(503)
		if v, r, err := getR(t, c, "app/a", secret.Selector{}); err == nil || v != "" || r.Stale() {
			t.Fatalf("%d then 503: %q %+v %v", tc.status, v, r, err)
		}
	}
}

func TestCacheNoStaleWhenOff(t *testing.T) {
	t.Parallel()
	c, f, clk := newCached(t, Options{CacheTTL: time.Minute})
	wantGet(t, c, "app/a", "one", metrics.CacheMiss)
	clk.Advance(time.Minute)
	f.setFail(503)
	if v, _, err := getR(t, c, "app/a", secret.Selector{}); err == nil || v != "" {
		t.Fatalf("stale served with CacheStaleFor 0: %q %v", v, err)
	}
}

func TestCacheCancelNotMasked(t *testing.T) {
	t.Parallel()
	c, f, clk := newCached(t, Options{CacheTTL: time.Minute, CacheStaleFor: time.Hour})
	wantGet(t, c, "app/a", "one", metrics.CacheMiss)
	clk.Advance(2 * time.Minute)
	f.setFail(-1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "app/a", secret.Selector{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled get: %v", err)
	}
}

func TestCacheInvalidateOnWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	writes := map[string]func(c *Client) error{
		"put": func(c *Client) error {
			_, err := c.Put(ctx, "app/a", secret.NewValue([]byte("new")), secret.PutOptions{})
			return err
		},
		"rollback": func(c *Client) error { _, err := c.Rollback(ctx, "app/a", 1); return err },
		"delete":   func(c *Client) error { return c.Delete(ctx, "app/a", nil) },
		"undelete": func(c *Client) error { return c.Undelete(ctx, "app/a", []int{1}) },
		"destroy":  func(c *Client) error { return c.Destroy(ctx, "app/a", []int{1}) },
		"purge":    func(c *Client) error { return c.Purge(ctx, "app/a") },
		"stage":    func(c *Client) error { return c.SetStage(ctx, "app/a", secret.StageCurrent, 1) },
		"metadata": func(c *Client) error {
			_, err := c.UpdateMetadata(ctx, "app/a", secret.MetadataUpdate{})
			return err
		},
	}
	for name, write := range writes {
		c, _, _ := newCached(t, Options{CacheTTL: time.Hour, CacheStaleFor: time.Hour})
		wantGet(t, c, "app/a", "one", metrics.CacheMiss)
		if _, r, _ := getR(t, c, "app/a", secret.Selector{Version: 1}); r.Result != metrics.CacheMiss {
			t.Fatalf("%s: %+v", name, r)
		}
		c.cache.store("app/b", secret.Selector{}, secret.Versioned{Value: secret.NewValue([]byte("b"))}, c.cache.gen)
		_ = write(c) // a failed write may have committed: invalidate anyway
		if c.cache.len() != 1 {
			t.Fatalf("%s: %d entries left, want app/b only", name, c.cache.len())
		}
		if _, r, _ := getR(t, c, "app/a", secret.Selector{}); r.Result != metrics.CacheMiss {
			t.Fatalf("%s: get after write: %+v", name, r)
		}
	}
}

// TestCacheWriteDuringFetch: a fetch that started before an invalidation
// does not store its answer, which may predate the write.
func TestCacheWriteDuringFetch(t *testing.T) {
	t.Parallel()
	k := newCache(Options{CacheTTL: time.Hour})
	fetch := func(context.Context, string, secret.Selector) (secret.Versioned, error) {
		k.invalidate("app/a") // a Put through the client completes meanwhile
		return secret.Versioned{Value: secret.NewValue([]byte("old"))}, nil
	}
	if v, err := k.get(context.Background(), "app/a", secret.Selector{}, fetch); err != nil || string(v.Value.Reveal()) != "old" {
		t.Fatalf("get: %v", err)
	}
	if k.len() != 0 {
		t.Fatal("answer fetched before a write was cached")
	}
}

func TestCacheEviction(t *testing.T) {
	t.Parallel()
	c, f, _ := newCached(t, Options{CacheTTL: time.Hour, CacheMaxEntries: 3})
	for i := range 3 {
		f.set(fmt.Sprintf("app/%d", i), "v")
		wantGet(t, c, fmt.Sprintf("app/%d", i), "v", metrics.CacheMiss)
	}
	wantGet(t, c, "app/0", "v", metrics.CacheHit) // app/1 is now least recently used
	f.set("app/3", "v")
	wantGet(t, c, "app/3", "v", metrics.CacheMiss)
	if c.cache.len() != 3 {
		t.Fatalf("%d entries, want 3", c.cache.len())
	}
	wantGet(t, c, "app/0", "v", metrics.CacheHit)
	wantGet(t, c, "app/1", "v", metrics.CacheMiss)
	if c.cache.len() != 3 {
		t.Fatalf("%d entries, want 3", c.cache.len())
	}
	if newCache(Options{CacheTTL: time.Second}).max != DefaultCacheMaxEntries {
		t.Error("default bound")
	}
}

// TestCacheConcurrent runs readers and writers together (for -race), then
// checks that a Get after the last write sees it.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	c, _, _ := newCached(t, Options{CacheTTL: time.Hour, CacheMaxEntries: 4, Metrics: m})
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				path := fmt.Sprintf("app/%d", i%6)
				if g%4 == 0 {
					if _, err := c.Put(ctx, path, secret.NewValue([]byte(fmt.Sprint(g, i))), secret.PutOptions{}); err != nil {
						t.Error(err)
					}
					continue
				}
				if _, err := c.Get(ctx, path, secret.Selector{}); err != nil && !errors.Is(err, secret.ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if c.cache.len() > 4 {
		t.Errorf("%d entries over the bound", c.cache.len())
	}
	if _, err := c.Put(ctx, "app/1", secret.NewValue([]byte("last")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	wantGet(t, c, "app/1", "last", metrics.CacheMiss)
	if total := cacheCount(t, m, metrics.CacheHit) + cacheCount(t, m, metrics.CacheMiss); total != 6*20+1 {
		t.Errorf("metrics counted %v lookups, want %d", total, 6*20+1)
	}
}

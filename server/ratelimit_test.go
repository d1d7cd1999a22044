package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/internal/testclock"
)

func newTestLimiter(rps float64, burst, max int) (*RateLimiter, *testclock.Clock) {
	l := NewRateLimiter(rps, burst, max)
	c := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l.now = c.Now
	return l, c
}

func TestRateLimiterBurstThenRefuse(t *testing.T) {
	l, clock := newTestLimiter(0.5, 3, 10) // one token per 2 s
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > 2*time.Second {
		t.Fatalf("after burst: ok=%v wait=%v, want refused with 0 < wait <= 2s", ok, wait)
	}
	// Refused attempts do not push the wait out.
	for range 5 {
		l.Allow("a")
	}
	if _, w := l.Allow("a"); w != wait {
		t.Errorf("retrying early moved the wait from %v to %v", wait, w)
	}
	clock.Advance(wait)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("refused after waiting retryAfter")
	}
}

func TestRateLimiterIdentitiesIndependent(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 10)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a allowed past its burst")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("b refused because a is limited")
	}
}

func TestRateLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	l, _ := newTestLimiter(1, 1, 3)
	for i := range 100 {
		l.Allow(fmt.Sprint("id", i))
		if n := l.Len(); n > 3 {
			t.Fatalf("%d identities remembered, bound 3", n)
		}
	}
	// id97 is drained; touching it keeps it while id98, id99 and a new
	// one push the rest out. If "recently used" were ignored, id97 would
	// be evicted and come back with a full bucket.
	l.Allow("id97")
	l.Allow("new")
	if ok, _ := l.Allow("id97"); ok {
		t.Error("recently used id97 was evicted (its bucket refilled)")
	}
	l.Allow("x")
	l.Allow("y")
	l.Allow("z")
	if ok, _ := l.Allow("id97"); !ok {
		t.Error("id97 should have been evicted and start with a full bucket")
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	// Real clock, negligible refill: exactly burst requests per identity
	// may pass however the goroutines interleave.
	const burst, ids, perID = 20, 8, 100
	l := NewRateLimiter(1e-9, burst, ids)
	var allowed [ids]atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range perID {
				id := (g + i) % ids
				if ok, _ := l.Allow(strconv.Itoa(id)); ok {
					allowed[id].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for id := range ids {
		if n := allowed[id].Load(); n != burst {
			t.Errorf("identity %d: %d allowed, want %d", id, n, burst)
		}
	}
}

func TestRateLimitMiddleware(t *testing.T) {
	l, _ := newTestLimiter(0.25, 2, 10) // refill every 4 s
	var served atomic.Int64
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
	}), func(r *http.Request) (string, bool) {
		id := r.Header.Get("X-Id")
		return id, id != ""
	})
	get := func(id string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/list", nil)
		if id != "" {
			req.Header.Set("X-Id", id)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	get("a")
	get("a")
	rec := get("a")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "4" {
		t.Errorf("Retry-After %q, want 4", ra)
	}
	var body api.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Class != api.ClassUnavailable || body.Error.Message == "" {
		t.Errorf("body %q: %+v, %v", rec.Body, body, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if rec := get("b"); rec.Code != http.StatusOK {
		t.Errorf("other identity: %d", rec.Code)
	}
	for range 5 {
		if rec := get(""); rec.Code != http.StatusOK {
			t.Errorf("unlimited request: %d", rec.Code)
		}
	}
	if n := served.Load(); n != 2+1+5 {
		t.Errorf("next served %d requests, want 8", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 4 * time.Second: 4,
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestTokenOrAddr(t *testing.T) {
	req := func(method, path, auth string) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "192.0.2.7:5555"
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	if _, ok := TokenOrAddr(req("GET", "/v1/health", "")); ok {
		t.Error("health probe limited")
	}
	a, ok := TokenOrAddr(req("GET", "/v1/list", "Bearer pm_s3cr3t"))
	b, _ := TokenOrAddr(req("GET", "/v1/list", "Bearer pm_other"))
	if !ok || a == b || len(a) < 10 || a == "token:pm_s3cr3t" || strings.Contains(a, "s3cr3t") {
		t.Errorf("token identities %q %q", a, b)
	}
	if id, ok := TokenOrAddr(req("POST", "/v1/auth/oidc", "")); !ok || id != "addr:192.0.2.7" {
		t.Errorf("anonymous login: %q %v", id, ok)
	}
}

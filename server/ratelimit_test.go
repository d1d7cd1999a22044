package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
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

func TestRateLimiterExhausted(t *testing.T) {
	l, clock := newTestLimiter(0.25, 2, 10) // refill every 4 s
	if over, _ := l.Exhausted("a"); over {
		t.Fatal("a fresh bucket is exhausted")
	}
	// Peeking takes nothing.
	for range 5 {
		l.Exhausted("a")
	}
	l.Allow("a")
	l.Allow("a")
	over, wait := l.Exhausted("a")
	if !over || wait != 4*time.Second {
		t.Fatalf("after burst: over=%v wait=%v, want true 4s", over, wait)
	}
	clock.Advance(wait)
	if over, _ := l.Exhausted("a"); over {
		t.Error("still exhausted after the wait")
	}
}

func TestWriteTooMany(t *testing.T) {
	rec := httptest.NewRecorder()
	writeTooMany(rec, 3500*time.Millisecond)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d", rec.Code)
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

func TestClientIP(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"peer", "198.51.100.7:5555", nil, nil, "198.51.100.7"},
		{"forwarded header ignored without trusted proxies", "198.51.100.7:5555", []string{"203.0.113.9"}, nil, "198.51.100.7"},
		{"forwarded header ignored from an untrusted peer", "198.51.100.7:5555", []string{"203.0.113.9"}, trusted, "198.51.100.7"},
		{"trusted proxy", "10.1.2.3:443", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"client-written entries left of the first untrusted one", "10.1.2.3:443", []string{"1.1.1.1, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"chain of trusted proxies", "10.1.2.3:443", []string{"203.0.113.9, 192.0.2.1", "10.9.9.9"}, trusted, "203.0.113.9"},
		{"garbage stops at the last vouched hop", "10.1.2.3:443", []string{"203.0.113.9, nonsense, 10.2.2.2"}, trusted, "10.2.2.2"},
		{"every hop trusted", "10.1.2.3:443", []string{"10.4.4.4"}, trusted, "10.4.4.4"},
		{"no header from a trusted proxy", "10.1.2.3:443", nil, trusted, "10.1.2.3"},
		{"ipv4-mapped peer", "[::ffff:198.51.100.7]:1", nil, nil, "198.51.100.7"},
		{"ipv6 trusted", "[2001:db8::1]:443", []string{"2001:db9::5"}, trusted, "2001:db9::5"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/v1/list", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientIP(r, c.trusted); got.String() != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestAddrKey(t *testing.T) {
	a := addrKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := addrKey(netip.MustParseAddr("2001:db8:1:2:bbbb::9"))
	c := addrKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Errorf("IPv6 keys %q %q %q: one /64 must be one bucket", a, b, c)
	}
	if k := addrKey(netip.MustParseAddr("192.0.2.7")); k != "addr:192.0.2.7" {
		t.Errorf("IPv4 key %q", k)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.0.0.1/8", "::ffff:192.0.2.1", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "proxy.example", "10.0.0.0/8 "} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

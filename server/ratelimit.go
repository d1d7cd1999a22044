package server

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/passman-dev/passman/api"
)

// DefaultMaxIdentities bounds a RateLimiter's memory when
// NewRateLimiter is given no positive bound.
const DefaultMaxIdentities = 10000

// RateLimiter is a token bucket per identity. Memory is bounded: beyond
// maxIdentities the least recently seen identity is forgotten. A forgotten
// identity starts again with a full bucket, so the bound must comfortably
// exceed the number of identities active within one refill period
// (burst/rps), or a client cycling through many identities could reset
// buckets by pushing others out.
type RateLimiter struct {
	limit rate.Limit
	burst int
	max   int
	// now is the clock; tests replace it.
	now func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *bucket, most recently used first
	byKey map[string]*list.Element
}

type bucket struct {
	key string
	lim *rate.Limiter
}

// NewRateLimiter allows each identity rps requests per second on average
// and burst at once. maxIdentities <= 0 means DefaultMaxIdentities.
func NewRateLimiter(rps float64, burst int, maxIdentities int) *RateLimiter {
	if maxIdentities <= 0 {
		maxIdentities = DefaultMaxIdentities
	}
	return &RateLimiter{
		limit: rate.Limit(rps),
		burst: burst,
		max:   maxIdentities,
		now:   time.Now,
		lru:   list.New(),
		byKey: make(map[string]*list.Element),
	}
}

// Allow takes a token from identity's bucket. When there is none it
// returns false and how long until there will be one.
func (l *RateLimiter) Allow(identity string) (ok bool, retryAfter time.Duration) {
	lim := l.bucket(identity)
	now := l.now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		// Only when burst < 1: no request can ever pass. Say "an hour"
		// rather than infinity so Retry-After stays a sane number.
		return false, time.Hour
	}
	if d := res.DelayFrom(now); d > 0 {
		// Refused: give the token back so a client that keeps retrying
		// too early does not push its own wait further out.
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len is the number of identities remembered.
func (l *RateLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// bucket finds or creates identity's limiter, marks it most recently used
// and evicts beyond the bound. The limiter is used outside the lock: it
// synchronizes itself, and one evicted mid-request just serves that
// request.
func (l *RateLimiter) bucket(identity string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byKey[identity]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*bucket).lim
	}
	b := &bucket{key: identity, lim: rate.NewLimiter(l.limit, l.burst)}
	l.byKey[identity] = l.lru.PushFront(b)
	for l.lru.Len() > l.max {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.byKey, oldest.Value.(*bucket).key)
	}
	return b.lim
}

// Middleware refuses a request with 429 Too Many Requests, a Retry-After
// header (whole seconds, at least 1) and an api.ErrorResponse body of class
// api.ClassUnavailable when its identity's bucket is empty. identityOf
// names the identity; when it returns false the request is not limited
// (say, health probes).
func (l *RateLimiter) Middleware(next http.Handler, identityOf func(*http.Request) (string, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, limited := identityOf(r)
		if !limited {
			next.ServeHTTP(w, r)
			return
		}
		ok, wait := l.Allow(id)
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		secs := retryAfterSeconds(wait)
		body, _ := json.Marshal(api.ErrorResponse{Error: api.ErrorBody{
			Class:   api.ClassUnavailable,
			Message: "rate limit exceeded; retry after " + strconv.Itoa(secs) + "s",
		}})
		h := w.Header()
		h.Set("Retry-After", strconv.Itoa(secs))
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(append(body, '\n'))
	})
}

// retryAfterSeconds rounds up: a client that waits the rounded-down value
// would come back too early and be refused again.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// TokenOrAddr is an identityOf for Middleware usable before
// authentication: a bearer token is identified by a hash of it (the map
// must not hold usable credentials), a request without one by its client
// IP, so unauthenticated guessing (including OIDC logins, whose credential
// is in the body) is limited per address. Only the health and readiness
// probes are exempt: other public routes exchange credentials and are what
// a limit is for. Behind a proxy RemoteAddr is the proxy's, and all
// anonymous clients share one bucket.
func TokenOrAddr(r *http.Request) (string, bool) {
	if route, _, _ := api.Match(r.Method, r.URL.Path); route != nil &&
		(route.Name == api.RouteHealth.Name || route.Name == api.RouteReady.Name) {
		return "", false
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.TrimSpace(tok) != "" {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		return "token:" + hex.EncodeToString(sum[:16]), true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host, true
}

package server

import (
	"container/list"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
)

// DefaultMaxIdentities bounds a RateLimiter's memory when
// NewRateLimiter is given no positive bound.
const DefaultMaxIdentities = 10000

// RateLimiter is a token bucket per caller. The handler asks it once a
// request's caller is known: an authenticated request is charged to its
// validated identity, anything else (a failed authentication, the OIDC
// login, a request for no route) to its client address. Keying on the
// presented token instead would give every made-up token a fresh bucket.
//
// Memory is bounded: beyond maxIdentities the least recently seen caller
// is forgotten. A forgotten caller starts again with a full bucket, so the
// bound must comfortably exceed the number of callers active within one
// refill period (burst/rps), or a client cycling through many addresses
// could reset buckets by pushing others out.
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

// Exhausted reports, without taking a token, whether key's bucket is
// empty, and how long until it holds one again.
func (l *RateLimiter) Exhausted(key string) (bool, time.Duration) {
	lim := l.bucket(key)
	tokens := lim.TokensAt(l.now())
	if tokens >= 1 {
		return false, 0
	}
	if l.limit <= 0 {
		return true, time.Hour
	}
	return true, time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second))
}

// writeTooMany answers 429 Too Many Requests with a Retry-After header
// (whole seconds, at least 1) and an api.ErrorResponse of class
// api.ClassUnavailable.
func writeTooMany(w http.ResponseWriter, wait time.Duration) {
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
}

// retryAfterSeconds rounds up: a client that waits the rounded-down value
// would come back too early and be refused again.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// identityKey is the bucket of an authenticated caller: its validated
// identity, by subject kind (a token's "ci" and a certificate's "ci" are
// different callers), so every token issued to one identity shares one
// budget and minting more tokens buys no more requests.
func identityKey(info secret.TokenInfo) string {
	return "id:" + subjectKind(info.Claims) + ":" + info.Identity
}

// addrKey is the bucket of a request that has not (or not yet)
// authenticated: its client address. An IPv6 client is bucketed by its
// /64, the block one host is usually given, so cycling through its own
// addresses buys nothing.
func addrKey(ip netip.Addr) string {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + ip.String()
}

// clientIP is the address a request came from: the TCP peer's. Only when
// the peer is one of trusted (a load balancer the operator named) is
// X-Forwarded-For believed, read from the right: the first address not
// itself a trusted proxy is the client (anything left of it the client
// may have written). An unparsable entry stops the walk at the last
// address a trusted proxy vouched for.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var ip netip.Addr
	if err == nil {
		ip = ap.Addr().Unmap()
	} else if ip, err = netip.ParseAddr(r.RemoteAddr); err != nil {
		return netip.Addr{}
	}
	if !isTrusted(ip, trusted) {
		return ip
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip
		}
		ip = hop.Unmap()
		if !isTrusted(ip, trusted) {
			return ip
		}
	}
	return ip
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies parses the rate_limit section's trusted_proxies:
// addresses or CIDR blocks of the proxies whose X-Forwarded-For the
// server believes.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: trusted proxy %q is neither an IP address nor a CIDR block", secret.ErrInvalidArgument, s)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// classRateLimited is the log's class of a request refused with 429.
const classRateLimited = "rate_limited"

// probe reports whether route is a health or readiness probe, which no
// rate limit applies to: a load balancer must always get an answer.
func probe(route *api.Route) bool {
	return route.Name == api.RouteHealth.Name || route.Name == api.RouteReady.Name
}

// addrKey is the rate-limit bucket of r's client address.
func (h *handler) addrKey(r *http.Request) string {
	return addrKey(clientIP(r, h.trusted))
}

// limited takes a token from key's bucket. When there is none it answers
// 429 and returns true.
func (h *handler) limited(w http.ResponseWriter, rl *reqLog, key string) bool {
	if h.limiter == nil {
		return false
	}
	ok, wait := h.limiter.Allow(key)
	if ok {
		return false
	}
	rl.class = classRateLimited
	writeTooMany(w, wait)
	return true
}

// exhausted answers 429 and returns true when key's bucket is empty,
// without taking a token from it.
func (h *handler) exhausted(w http.ResponseWriter, rl *reqLog, key string) bool {
	if h.limiter == nil {
		return false
	}
	over, wait := h.limiter.Exhausted(key)
	if !over {
		return false
	}
	rl.class = classRateLimited
	writeTooMany(w, wait)
	return true
}

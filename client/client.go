// Package client is passman.Service over the HTTP API (package api): a
// front end holding a *Client works with a remote server exactly as with
// an in-process core.Local. Errors rebuild the server's class, so
// errors.Is(err, secret.ErrNotFound) and secret.Class work across the wire.
//
// # Retries
//
// A request is retried, with jittered exponential backoff, only when
// repeating it cannot do anything twice:
//
//   - a connection that could not be made (nothing was sent): any request;
//   - 429 Too Many Requests (the server refused before doing anything):
//     any request;
//   - another 5xx or a network error after sending: only requests that
//     change nothing more when repeated (api.Route.Idempotent: reads,
//     delete, undelete, destroy, purge, metadata, stage, revoke), and a
//     Put with a check-and-set version. A Put with CAS is retried because
//     the condition makes a repeat harmless: if the first attempt
//     committed, the repeat fails with a conflict instead of writing a
//     second version, and the error says that an earlier attempt may have
//     written it. A Put without CAS, a Rollback and a token creation are
//     never repeated after they may have reached the server: each would
//     write again.
//
// 4xx answers other than 429 are never retried.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
)

// Version is the client's version in its default User-Agent; the passman
// command sets its own User-Agent with the release version.
var Version = "dev"

// Defaults.
const (
	DefaultTimeout = 30 * time.Second
	DefaultRetries = 2
	// maxResponse bounds a response body read into memory: an audit query
	// of a large log is the biggest answer.
	maxResponse = 256 << 20
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 2 * time.Second
	// maxRetryAfter caps how long a server's Retry-After makes us wait.
	maxRetryAfter = 10 * time.Second
	// maxIdleConns is how many idle connections to the server a Client
	// keeps.
	maxIdleConns = 64
)

// Options configure a Client.
type Options struct {
	// Addr is the server's URL, "https://host:port" ("host:port" means
	// https). Plain http is allowed to a loopback address only (a local
	// TLS-terminating proxy): a bearer token never crosses a network in
	// the clear.
	Addr string
	// Token is the bearer token (PASSMAN_TOKEN).
	Token string
	// CACertFile, when set, is the PEM file of the CA certificates to
	// trust instead of the system's (PASSMAN_CACERT).
	CACertFile string
	// Timeout bounds each attempt of a request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a retryable failure is retried; 0 means
	// DefaultRetries, negative means never.
	Retries int
	// UserAgent names the caller; "" means "passman-client/<Version>".
	UserAgent string
	// Transport, when set, replaces the HTTP transport (tests); CACertFile
	// is then ignored.
	Transport http.RoundTripper

	// CacheTTL, when positive, turns on an in-memory cache of Get answers
	// by (path, selector) that serves them for CacheTTL without asking
	// the server. 0 (the default) means no cache. A cached value may be
	// one the server has since rotated or no longer lets this token read:
	// read "Client read cache" in docs/server.md before turning it on.
	CacheTTL time.Duration
	// CacheStaleFor is how long past CacheTTL an entry may still be
	// served when the server cannot answer (a network error, a timeout, a
	// 5xx; never a 4xx such as 404 or 403). 0 means never serve stale.
	// WithCacheResult tells a caller that it got a stale value.
	CacheStaleFor time.Duration
	// CacheMaxEntries bounds the cache (least recently used entries go
	// first); 0 means DefaultCacheMaxEntries.
	CacheMaxEntries int
	// Metrics, when set, counts cache lookups (hit, miss, stale).
	Metrics *metrics.Metrics
}

// Client is passman.Service over the HTTP API. It is safe for concurrent
// use.
type Client struct {
	base *url.URL
	// cred is the bearer token and its expiry; LoginOIDC replaces it.
	cred    atomic.Pointer[credential]
	hc      *http.Client
	retries int
	ua      string
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// now is the clock a token's expiry is checked against; tests
	// replace it.
	now func() time.Time
	// cache is the read cache; nil when Options.CacheTTL is 0.
	cache *cache
}

// New returns a client for the server at opts.Addr.
func New(opts Options) (*Client, error) {
	base, err := parseAddr(opts.Addr)
	if err != nil {
		return nil, err
	}
	rt := opts.Transport
	if rt == nil {
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.CACertFile != "" {
			pem, err := os.ReadFile(opts.CACertFile)
			if err != nil {
				return nil, fmt.Errorf("%w: read CA certificate: %v", secret.ErrInvalidArgument, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%w: %s holds no PEM certificate", secret.ErrInvalidArgument, opts.CACertFile)
			}
			tlsCfg.RootCAs = pool
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsCfg
		// HTTP/1.1 with keep-alive: a passman call is one small request
		// and answer, where HTTP/2's multiplexing buys nothing and its
		// costs show: every secret path is a new HPACK table entry that
		// evicts another, and frames go through extra goroutines. Reads
		// through it cost both ends ~15 % more CPU (docs/benchmarks.md).
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP1(true)
		// A Client shared by many goroutines holds a connection per
		// concurrent request; keep them rather than handshake again.
		t.MaxIdleConnsPerHost = maxIdleConns
		rt = t
	}
	c := &Client{
		base:    base,
		retries: opts.Retries,
		ua:      opts.UserAgent,
		sleep:   sleepCtx,
		now:     time.Now,
		cache:   newCache(opts),
	}
	c.cred.Store(&credential{token: opts.Token})
	if c.retries == 0 {
		c.retries = DefaultRetries
	}
	if c.retries < 0 {
		c.retries = 0
	}
	if c.ua == "" {
		c.ua = fmt.Sprintf("passman-client/%s (%s; %s/%s)", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c.hc = &http.Client{
		Transport: rt,
		Timeout:   timeout,
		// The server never redirects; following one could carry the
		// token somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func parseAddr(addr string) (*url.URL, error) {
	if addr == "" {
		return nil, fmt.Errorf("%w: no server address", secret.ErrInvalidArgument)
	}
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: server address must look like https://host:port", secret.ErrInvalidArgument)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%w: refusing plain http to %s: the token would cross the network in the clear; use https", secret.ErrInvalidArgument, u.Host)
		}
	default:
		return nil, fmt.Errorf("%w: server address must be https://", secret.ErrInvalidArgument)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error is an error answer from the server. It unwraps to the sentinel of
// its class, so errors.Is(err, secret.ErrNotFound) works.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Class is the error's class (secret.Class, or one of api's).
	Class string
	// Message is the server's explanation.
	Message string
	// RequestID names the request in the server's log.
	RequestID string
	sentinel  error
}

// Error returns the server's message, which starts with the class's
// sentinel text ("not found: ...") like a core error does.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the class's sentinel (nil for classes without one).
func (e *Error) Unwrap() error { return e.sentinel }

func newError(status int, body api.ErrorBody, reqID string) *Error {
	if body.Class == "" {
		body.Class = api.ClassForStatus(status)
	}
	if body.Message == "" {
		body.Message = fmt.Sprintf("server answered %d %s", status, http.StatusText(status))
	}
	return &Error{Status: status, Class: body.Class, Message: body.Message, RequestID: reqID, sentinel: secret.ClassError(body.Class)}
}

// request is one API call.
type request struct {
	route api.Route
	tail  string
	query url.Values
	in    any
	out   any
	// retry says the call may be repeated after it may have reached the
	// server (see the package doc).
	retry bool
	// sink, when set, receives a successful answer's body as it arrives,
	// unbounded (a backup), instead of out.
	sink io.Writer
}

// do performs r, retrying as the package doc says, and decodes the answer
// into r.out. Errors never include the token.
func (c *Client) do(ctx context.Context, r request) error {
	switch r.route.Tail {
	case api.TailPath:
		if err := secret.ValidatePath(r.tail); err != nil {
			return err
		}
	case api.TailPolicy:
		if err := secret.ValidatePolicyName(r.tail); err != nil {
			return err
		}
	}
	var body []byte
	if r.in != nil {
		var err error
		if body, err = encodeBody(r.in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		// The body may hold a value: wipe it once sent.
		defer clear(body)
	}
	u := *c.base
	u.Path += r.route.URL(r.tail)
	u.RawQuery = r.query.Encode()
	op := r.route.Name
	for attempt := 0; ; attempt++ {
		resp, err := c.attempt(ctx, r.route.Method, u.String(), body, r.sink)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", op, ctx.Err())
			}
			var se *sinkError
			if attempt < c.retries && (r.retry || notSent(err)) && !errors.As(err, &se) {
				if err := c.sleep(ctx, backoff(attempt, 0)); err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				continue
			}
			return fmt.Errorf("%s: %w", op, err)
		}
		if resp.status >= 200 && resp.status < 300 {
			defer clear(resp.body)
			if r.out == nil || resp.status == http.StatusNoContent {
				return nil
			}
			if err := json.Unmarshal(resp.body, r.out); err != nil {
				return fmt.Errorf("%s: decode response: %w", op, err)
			}
			return nil
		}
		apiErr := resp.err()
		retryable := resp.status == http.StatusTooManyRequests || resp.status >= 500 && r.retry
		if attempt < c.retries && retryable {
			if err := c.sleep(ctx, backoff(attempt, resp.retryAfter)); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			continue
		}
		if attempt > 0 && r.route.Name == api.RoutePut.Name && apiErr.Class == "conflict" {
			apiErr.Message += " (an earlier attempt whose answer was lost may have written it)"
		}
		return apiErr
	}
}

// encodeBody is json.Marshal without HTML escaping: json.Marshal writes
// "<", ">" and "&" as six-byte escapes, even inside a json.RawMessage, so
// a 4 MiB policy eval input full of them would grow to 24 MiB on the wire
// and be refused by the server's limit. Nothing reads these bodies as
// HTML.
func encodeBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// response is one attempt's answer.
type response struct {
	status     int
	body       []byte
	reqID      string
	retryAfter time.Duration
}

func (r response) err() *Error {
	var er api.ErrorResponse
	_ = json.Unmarshal(r.body, &er) // a proxy's page is no ErrorResponse: classify by status
	return newError(r.status, er.Error, r.reqID)
}

func (c *Client) attempt(ctx context.Context, method, u string, body []byte, sink io.Writer) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cred := c.cred.Load(); cred.token != "" {
		if !cred.expires.IsZero() && !c.now().Before(cred.expires) {
			// The server would refuse it; saying so here names the cause.
			return response{}, fmt.Errorf("%w: the passman token from the OIDC login expired at %s; log in again", secret.ErrUnauthenticated, cred.expires.Format(time.RFC3339))
		}
		req.Header.Set("Authorization", "Bearer "+cred.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, scrub(err)
	}
	defer resp.Body.Close()
	if sink != nil && resp.StatusCode == http.StatusOK {
		// Not retried once bytes went out: the sink cannot take them back.
		if _, err := io.Copy(sink, resp.Body); err != nil {
			return response{}, &sinkError{err}
		}
		return response{status: resp.StatusCode, reqID: resp.Header.Get("X-Request-Id")}, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return response{}, fmt.Errorf("read response: %w", err)
	}
	if len(b) > maxResponse {
		return response{}, fmt.Errorf("response exceeds %d bytes", maxResponse)
	}
	out := response{status: resp.StatusCode, body: b, reqID: resp.Header.Get("X-Request-Id")}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			out.retryAfter = min(time.Duration(n)*time.Second, maxRetryAfter)
		}
	}
	return out, nil
}

// sinkError is a failure while streaming an answer to request.sink.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return "read streamed response: " + e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// scrub keeps a transport error's cause but not its URL's query (which
// holds nothing secret today, but a URL is not the place to find out).
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}

func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}

// notSent reports whether err means the request never left: no
// connection could be made, so repeating it cannot do anything twice.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff is the wait before retry attempt+1: exponential from
// minBackoff, capped at maxBackoff, with full jitter over its upper half so
// clients that failed together do not retry together; a server's
// Retry-After wins when longer.
func backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := min(minBackoff<<attempt, maxBackoff)
	d = d/2 + rand.N(d/2+1)
	return max(d, retryAfter)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Put implements passman.Service.
func (c *Client) Put(ctx context.Context, path string, value secret.Value, opts secret.PutOptions) (secret.VersionInfo, error) {
	defer c.cache.invalidate(path)
	var out secret.VersionInfo
	in := api.PutRequest{Value: value.Reveal(), CAS: opts.CAS, Stage: opts.Stage, Metadata: opts.Metadata}
	err := c.do(ctx, request{route: api.RoutePut, tail: path, in: in, out: &out, retry: opts.CAS != nil})
	return out, err
}

// Get implements passman.Service. With a cache (Options.CacheTTL) it may
// answer from the cache; see WithCacheResult.
func (c *Client) Get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error) {
	if c.cache != nil {
		return c.cache.get(ctx, path, sel, c.get)
	}
	return c.get(ctx, path, sel)
}

// get is Get from the server.
func (c *Client) get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error) {
	var out api.GetResponse
	err := c.do(ctx, request{route: api.RouteGet, tail: path, query: api.EncodeSelector(sel), out: &out, retry: true})
	if err != nil {
		return secret.Versioned{Path: path}, err
	}
	return secret.Versioned{Path: out.Path, Info: out.Info, Value: secret.NewValue(out.Value)}, nil
}

// Describe implements passman.Service.
func (c *Client) Describe(ctx context.Context, path string) (secret.Secret, error) {
	var out secret.Secret
	err := c.do(ctx, request{route: api.RouteDescribe, tail: path, out: &out, retry: true})
	return out, err
}

// List implements passman.Service.
func (c *Client) List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error) {
	var out secret.ListPage
	err := c.do(ctx, request{route: api.RouteList, query: api.EncodeList(opts), out: &out, retry: true})
	return out, err
}

// Rollback implements passman.Service.
func (c *Client) Rollback(ctx context.Context, path string, version int) (secret.VersionInfo, error) {
	defer c.cache.invalidate(path)
	var out secret.VersionInfo
	err := c.do(ctx, request{route: api.RouteRollback, tail: path, in: api.RollbackRequest{Version: version}, out: &out})
	return out, err
}

// Delete implements passman.Service.
func (c *Client) Delete(ctx context.Context, path string, versions []int) error {
	defer c.cache.invalidate(path)
	return c.do(ctx, request{route: api.RouteDelete, tail: path, in: api.VersionsRequest{Versions: versions}, retry: true})
}

// Undelete implements passman.Service.
func (c *Client) Undelete(ctx context.Context, path string, versions []int) error {
	defer c.cache.invalidate(path)
	return c.do(ctx, request{route: api.RouteUndelete, tail: path, in: api.VersionsRequest{Versions: versions}, retry: true})
}

// Destroy implements passman.Service.
func (c *Client) Destroy(ctx context.Context, path string, versions []int) error {
	defer c.cache.invalidate(path)
	return c.do(ctx, request{route: api.RouteDestroy, tail: path, in: api.VersionsRequest{Versions: versions}, retry: true})
}

// Purge implements passman.Service.
func (c *Client) Purge(ctx context.Context, path string) error {
	defer c.cache.invalidate(path)
	return c.do(ctx, request{route: api.RoutePurge, tail: path, retry: true})
}

// UpdateMetadata implements passman.Service.
func (c *Client) UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error) {
	defer c.cache.invalidate(path)
	var out secret.Metadata
	err := c.do(ctx, request{route: api.RouteMetadata, tail: path, in: u, out: &out, retry: true})
	return out, err
}

// SetStage implements passman.Service.
func (c *Client) SetStage(ctx context.Context, path string, stage secret.Stage, version int) error {
	defer c.cache.invalidate(path)
	return c.do(ctx, request{route: api.RouteStage, tail: path, in: api.StageRequest{Stage: stage, Version: version}, retry: true})
}

// LookupFingerprint implements passman.Service.
func (c *Client) LookupFingerprint(ctx context.Context, fingerprint string) ([]secret.FingerprintMatch, error) {
	var out api.FingerprintResponse
	err := c.do(ctx, request{route: api.RouteFingerprint, tail: fingerprint, out: &out, retry: true})
	return out.Matches, err
}

// VerifyAudit implements passman.Service. A log that does not verify
// returns the report and an error wrapping secret.ErrTampered, as
// core.Local does.
func (c *Client) VerifyAudit(ctx context.Context) (audit.Report, error) {
	var out api.VerifyResponse
	if err := c.do(ctx, request{route: api.RouteAuditVerify, out: &out, retry: true}); err != nil {
		return audit.Report{}, err
	}
	if out.Error != nil {
		return out.Report, newError(http.StatusOK, *out.Error, "")
	}
	return out.Report, nil
}

// QueryAudit implements passman.Service.
func (c *Client) QueryAudit(ctx context.Context, f audit.Filter, limit int) ([]audit.Entry, error) {
	var out api.AuditEntriesResponse
	err := c.do(ctx, request{route: api.RouteAuditQuery, query: api.EncodeAuditQuery(f, limit), out: &out, retry: true})
	return out.Entries, err
}

// CreateToken asks the server for a new token (an admin action). The
// token is in the response and nowhere else: the server keeps its hash.
// It implements passman.Tokens.
func (c *Client) CreateToken(ctx context.Context, req secret.TokenRequest) (string, secret.TokenInfo, error) {
	var out api.TokenCreateResponse
	in := api.TokenCreateRequest{Identity: req.Identity, Claims: req.Claims, TTL: secret.Duration(req.TTL)}
	err := c.do(ctx, request{route: api.RouteTokenCreate, in: in, out: &out})
	return out.Token, out.Info, err
}

// RevokeToken revokes the token with accessor (an admin action).
func (c *Client) RevokeToken(ctx context.Context, accessor string) error {
	return c.do(ctx, request{route: api.RouteTokenRevoke, in: api.TokenRevokeRequest{Accessor: accessor}, retry: true})
}

// RevokeSelf revokes the client's own token (from New or a login): the
// server stops accepting it at once. The client is of no further use.
func (c *Client) RevokeSelf(ctx context.Context) error {
	return c.do(ctx, request{route: api.RouteTokenRevokeSelf, retry: true})
}

// BearerToken is the token the client sends: for a caller that must hand
// it to another process of its own (the GitHub Action gives it to its
// post step, which revokes it). Never log it.
func (c *Client) BearerToken() string {
	return c.cred.Load().token
}

// ListTokens describes every token (an admin action).
func (c *Client) ListTokens(ctx context.Context) ([]secret.TokenInfo, error) {
	var out api.TokenListResponse
	err := c.do(ctx, request{route: api.RouteTokenList, out: &out, retry: true})
	return out.Tokens, err
}

// LookupSelf describes the client's own token.
func (c *Client) LookupSelf(ctx context.Context) (secret.TokenInfo, error) {
	var out secret.TokenInfo
	err := c.do(ctx, request{route: api.RouteTokenLookupSelf, out: &out, retry: true})
	return out, err
}

// Health checks that the server answers (liveness).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, request{route: api.RouteHealth, retry: true})
}

// Ready checks that the server can serve: its store answers and its audit
// log accepts entries.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{route: api.RouteReady, retry: true})
}

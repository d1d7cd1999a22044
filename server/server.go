// Package server serves passman.Service over HTTPS (the routes of package
// api). It authenticates every request with a bearer token, acts as the
// token's identity (core.WithSubject) so the policy and the audit log see
// who asked, and leaves every decision to the Service: the server holds no
// authorization logic of its own.
//
// What it adds is what a network needs: request size and time limits, an
// error body that never quotes the request or the token, a denied read that
// is indistinguishable from a missing secret, structured request logs
// without values or tokens, and graceful shutdown.
package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// TokenAuthenticator turns a bearer token into the identity it was issued
// to; core.Local implements it. An unknown, expired or revoked token is an
// error wrapping secret.ErrUnauthenticated; any other error is the
// authenticator's own failure (answered 5xx, not 401).
type TokenAuthenticator interface {
	LookupToken(ctx context.Context, token string) (secret.TokenInfo, error)
}

// SelfRevoker ends a token at its holder's request; core.Local
// implements it.
type SelfRevoker interface {
	RevokeSelf(ctx context.Context, token string) error
}

// Backend is what the server serves: the Service, every capability a
// route uses, and token lookup to authenticate callers. core.Local
// implements it. New takes nothing less, so a capability missing is a
// compile error, not an answer at request time.
type Backend interface {
	passman.Service
	passman.Connections
	passman.Tokens
	passman.PolicyEvaluator
	passman.Rotator
	passman.LeakResponder
	passman.Readier
	passman.Fingerprints
	passman.ValueComparer
	passman.Policies
	passman.Scheduling
	passman.Backups
	TokenAuthenticator
	SelfRevoker
}

// DefaultMaxBodyBytes bounds a request body: a maximal value in base64,
// plus room for maximal metadata.
var DefaultMaxBodyBytes = int64(base64.StdEncoding.EncodedLen(secret.MaxValueSize) + 512<<10)

// Options configure the handler New returns.
type Options struct {
	// Logger receives one line per request; nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the API's outcomes (fetches, denials,
	// authentication and audit failures); nil records nothing.
	Metrics *metrics.Metrics
	// MaxBodyBytes bounds every request body (413 beyond); 0 means
	// DefaultMaxBodyBytes, or a route's own api.Route.MaxBody where it
	// has one (policy eval's input may be larger than a secret value).
	MaxBodyBytes int64
	// OIDC, when set, serves POST /v1/auth/oidc: GitHub Actions ID tokens
	// are exchanged for short-lived passman tokens (see NewOIDC).
	OIDC *OIDC
	// ClientCerts authenticates a request without an Authorization header
	// by its verified TLS client certificate (see clientCertInfo). The
	// TLS config must verify client certificates (Config.ClientCAFile).
	ClientCerts bool
	// Limiter, when set, limits each caller's request rate (see
	// RateLimiter); nil limits nothing.
	Limiter *RateLimiter
	// TrustedProxies are the proxies (load balancers) whose
	// X-Forwarded-For header names a request's client address; from any
	// other peer the header is ignored and the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// ConfirmLimiter limits fingerprint confirmations per identity; nil
	// means DefaultConfirmRPS and DefaultConfirmBurst.
	ConfirmLimiter *RateLimiter
	// Leadership, when set, names the scheduler's leader live in the
	// scheduler status (the election's answer, not the store's record).
	Leadership scheduler.Leadership
}

// New returns the API handler over b, which also authenticates callers.
// Every route except the health and readiness probes needs a valid token,
// so b is never called without a subject (core.Local would otherwise act
// as its own OS user).
func New(b Backend, opts Options) http.Handler {
	return newHandler(b, opts)
}

type handler struct {
	metrics *metrics.Metrics
	svc     Backend
	// admin is svc's token administration behind the reserved-claims
	// guard; svc itself issues the OIDC exchange's tokens, the one caller
	// allowed to set ClaimKind.
	admin       passman.Tokens
	oidc        *OIDC
	clientCerts bool
	log         *slog.Logger
	max         int64
	// maxSet: the operator chose max, which then caps every route.
	maxSet  bool
	limiter *RateLimiter
	trusted []netip.Prefix
	// confirm limits fingerprint confirmations per identity, whatever the
	// server-wide rate limit says.
	confirm *RateLimiter
	// draining is set when shutdown begins: readiness then fails, so a
	// load balancer stops sending new requests while in-flight ones end.
	draining atomic.Bool
	// leadership names the scheduler's leader live; nil: the record's.
	leadership scheduler.Leadership
}

func newHandler(svc Backend, opts Options) *handler {
	h := &handler{svc: svc, admin: reservedClaimsGuard{svc}, log: opts.Logger, max: opts.MaxBodyBytes, metrics: opts.Metrics}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.maxSet = h.max > 0
	if !h.maxSet {
		h.max = DefaultMaxBodyBytes
	}
	h.oidc, h.clientCerts = opts.OIDC, opts.ClientCerts
	h.limiter, h.trusted = opts.Limiter, opts.TrustedProxies
	h.confirm = opts.ConfirmLimiter
	h.leadership = opts.Leadership
	if h.confirm == nil {
		h.confirm = NewRateLimiter(DefaultConfirmRPS, DefaultConfirmBurst, 0)
	}
	return h
}

// call is one request as a route handler sees it.
type call struct {
	r     *http.Request
	route *api.Route
	// tail is the validated secret path or fingerprint.
	tail string
	// token is the caller's token info (never the token).
	token secret.TokenInfo
	// after runs once the response is written: wiping a value.
	after func()
}

// routeFunc serves one route: a nil result with a nil error is 204.
type routeFunc func(h *handler, ctx context.Context, c *call) (any, error)

// reqLog is what the request's log line says.
type reqLog struct {
	route, path, identity, accessor, class string
	readsSecret                            bool
	// mtls: the request carried no Authorization header but a client
	// certificate, so an authentication failure is mTLS's.
	mtls bool
	// err is logged for server errors only: a client error's message may
	// quote what the client sent.
	err error
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	reqID := audit.NewRequestID()
	hdr := w.Header()
	hdr.Set("X-Request-Id", reqID)
	// Responses carry secrets and tokens: no cache may keep one.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	var rl reqLog
	defer func() {
		if p := recover(); p != nil {
			rl.err = fmt.Errorf("panic: %v", p)
			rl.class = api.ClassInternal
			if sw.status == 0 {
				h.writeError(sw, reqID, nil, fmt.Errorf("handler panicked"))
			}
		}
		h.logRequest(r, sw.status, time.Since(start), reqID, rl)
		h.observe(rl)
	}()
	rl.err = h.serve(sw, r, reqID, &rl)
}

func (h *handler) serve(w *statusWriter, r *http.Request, reqID string, rl *reqLog) error {
	route, tail, allowed := api.Match(r.Method, r.URL.Path)
	if route == nil {
		if h.limited(w, rl, h.addrKey(r)) {
			return nil
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			rl.class = api.ClassMethodNotAllowed
			h.writeBody(w, http.StatusMethodNotAllowed, api.ErrorResponse{Error: api.ErrorBody{Class: api.ClassMethodNotAllowed, Message: "method not allowed; allowed: " + strings.Join(allowed, ", ")}})
			return nil
		}
		rl.class = "not_found"
		h.writeBody(w, http.StatusNotFound, api.ErrorResponse{Error: api.ErrorBody{Class: "not_found", Message: "no such API route"}})
		return nil
	}
	rl.route, rl.readsSecret = route.Name, route.ReadsSecret
	if err := checkBrowser(r); err != nil {
		if h.limited(w, rl, h.addrKey(r)) {
			return nil
		}
		rl.class = classOf(err)
		return h.writeError(w, reqID, route, err)
	}
	c := &call{r: r, route: route}
	// The request's audit entries carry the id its log line and answer do.
	ctx := audit.WithRequestID(r.Context(), reqID)
	switch {
	case !route.Public:
		info, ok, err := h.admit(w, r, reqID, route, rl)
		if !ok {
			return err
		}
		c.token = info
		ctx = core.WithSubject(ctx, subjectOf(info))
	case !probe(route):
		// A public route other than the probes exchanges a credential
		// (the OIDC login): the address pays, before any work.
		if h.limited(w, rl, h.addrKey(r)) {
			return nil
		}
	}
	var err error
	if c.tail, err = validateTail(route, tail); err != nil {
		rl.class = classOf(err)
		return h.writeError(w, reqID, route, err)
	}
	if route.Tail == api.TailPath {
		rl.path = c.tail
	}
	limit := h.bodyLimit(route)
	if r.ContentLength > limit {
		err := fmt.Errorf("%w: request body is %d bytes, at most %d allowed", secret.ErrTooLarge, r.ContentLength, limit)
		rl.class = classOf(err)
		return h.writeError(w, reqID, route, err)
	}
	// The underlying writer, so that an overlong body also closes the
	// connection rather than leaving the rest of it to be drained.
	r.Body = http.MaxBytesReader(w.ResponseWriter, r.Body, limit)

	res, err := routeFuncs[route.Name](h, ctx, c)
	if c.after != nil {
		defer c.after()
	}
	if err != nil {
		rl.class = classOf(err)
		return h.writeError(w, reqID, route, err)
	}
	if res == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if s, ok := res.(*stream); ok {
		writeStream(w, s)
		return nil
	}
	h.writeBody(w, http.StatusOK, res)
	return nil
}

// admit authenticates r and charges its caller's rate-limit bucket. When
// it has answered the request itself (401, 429, a 5xx) ok is false and
// err is the server error to log, if any.
func (h *handler) admit(w http.ResponseWriter, r *http.Request, reqID string, route *api.Route, rl *reqLog) (info secret.TokenInfo, ok bool, err error) {
	// An address whose failures emptied its bucket is refused before its
	// credential is even looked up: a valid guess must not get through
	// either.
	if h.exhausted(w, rl, h.addrKey(r)) {
		return info, false, nil
	}
	rl.mtls = r.Header.Get("Authorization") == "" && r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	info, err = h.authenticate(r.Context(), r)
	if err != nil {
		if h.limited(w, rl, h.addrKey(r)) {
			return info, false, nil
		}
		rl.class = classOf(err)
		if rl.class == "unauthenticated" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="passman"`)
		}
		return info, false, h.writeError(w, reqID, route, err)
	}
	rl.identity, rl.accessor = info.Identity, info.Accessor
	if h.limited(w, rl, identityKey(info)) {
		return info, false, nil
	}
	return info, true, nil
}

// bodyLimit bounds route's request body. A route's own MaxBody replaces
// the default, which is sized for a secret value (~1.9 MB): capping it
// by that default refused policy eval inputs over 1.9 MB that the API
// promises up to 4 MiB. An operator's MaxBodyBytes caps every route.
func (h *handler) bodyLimit(route *api.Route) int64 {
	switch {
	case route.MaxBody <= 0:
		return h.max
	case h.maxSet:
		return min(h.max, route.MaxBody)
	default:
		return route.MaxBody
	}
}

// observe records a request's outcome in the metrics, by the internal
// error class, never splitting what the answer hides: a denied read of a
// secret counts as not found, as it is answered.
func (h *handler) observe(rl reqLog) {
	m := h.metrics
	// A request refused for its rate was not served: it is counted by
	// its status code alone.
	if m == nil || rl.route == "" || rl.class == classRateLimited {
		return
	}
	if rl.readsSecret {
		m.ObserveSecretFetch(metrics.FetchOutcome(rl.class))
	}
	switch rl.class {
	case "permission_denied":
		// A denied read of a secret is answered as not found and counted
		// as one above: a denial counted here would tell a hidden secret
		// (whose metadata the policy refused) from a missing one.
		if !rl.readsSecret {
			m.ObserveAuthzDenial(rl.route)
		}
	case "unauthenticated":
		method := metrics.AuthnToken
		switch {
		case rl.route == "auth.oidc":
			method = metrics.AuthnOIDC
		case rl.mtls:
			method = metrics.AuthnMTLS
		}
		m.ObserveAuthnFailure(method, "rejected")
	case "audit":
		m.ObserveAuditWriteFailure()
	}
}

// authenticate checks the request's bearer token or, with none and client
// certificates enabled, its verified client certificate. A bearer token
// wins over a certificate: it is the more specific credential.
func (h *handler) authenticate(ctx context.Context, r *http.Request) (secret.TokenInfo, error) {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0 && h.clientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0:
		return clientCertInfo(r.TLS.VerifiedChains[0][0], time.Now())
	case len(vals) == 0:
		return secret.TokenInfo{}, fmt.Errorf("%w: missing bearer token (Authorization: Bearer <token>)", secret.ErrUnauthenticated)
	case len(vals) > 1:
		return secret.TokenInfo{}, fmt.Errorf("%w: more than one Authorization header", secret.ErrUnauthenticated)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return secret.TokenInfo{}, fmt.Errorf("%w: Authorization must be \"Bearer <token>\"", secret.ErrUnauthenticated)
	}
	info, err := h.svc.LookupToken(ctx, token)
	if err != nil {
		if errors.Is(err, secret.ErrUnauthenticated) {
			return secret.TokenInfo{}, err
		}
		return secret.TokenInfo{}, fmt.Errorf("authenticate: %w", err)
	}
	return info, nil
}

// subjectOf is the policy subject a token acts as.
func subjectOf(info secret.TokenInfo) policy.Subject {
	claims := make(map[string]any, len(info.Claims))
	for k, v := range info.Claims {
		claims[k] = v
	}
	delete(claims, ClaimKind)
	return policy.Subject{ID: info.Identity, Kind: subjectKind(info.Claims), Claims: claims}
}

// validateTail checks the part of the URL path after the route's fixed
// part. The server never cleans a path: a "..", "." or empty segment is
// refused, so no spelling of a URL reaches another secret.
func validateTail(route *api.Route, tail string) (string, error) {
	switch route.Tail {
	case api.TailPath:
		if err := secret.ValidatePath(tail); err != nil {
			return "", err
		}
	case api.TailFingerprint:
		if tail == "" || len(tail) > 128 || strings.Trim(tail, "0123456789abcdef") != "" {
			return "", fmt.Errorf("%w: a fingerprint is lowercase hex", secret.ErrInvalidArgument)
		}
	case api.TailName:
		if err := secret.ValidateConnectionName(tail); err != nil {
			return "", err
		}
	case api.TailPolicy:
		if err := secret.ValidatePolicyName(tail); err != nil {
			return "", err
		}
	}
	return tail, nil
}

// notFoundMessage answers every not-found or denied read of a secret, so
// the two cannot be told apart.
const notFoundMessage = "not found: no such secret or version, or no permission to read it"

// writeError answers with err's class and status. It returns err when
// the server failed (5xx), for the log.
func (h *handler) writeError(w http.ResponseWriter, reqID string, route *api.Route, err error) error {
	class := classOf(err)
	body := api.ErrorBody{Class: class, Message: err.Error()}
	if route != nil && route.ReadsSecret && (class == "not_found" || class == "permission_denied") {
		body = api.ErrorBody{Class: "not_found", Message: notFoundMessage}
	}
	status := api.Status(body.Class)
	var rl rateLimited
	switch {
	case errors.As(err, &rl):
		// As the server-wide limiter answers (RateLimiter.Middleware).
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(rl.wait)))
	case class == api.ClassUnavailable:
		body.Message = "service unavailable; try again later"
	case status >= 500:
		// The details (file names, a store's state) are for the operator,
		// who finds them in the log under the request id.
		body.Message = fmt.Sprintf("%s error; see the server log, request id %s", body.Class, reqID)
	}
	h.writeBody(w, status, api.ErrorResponse{Error: body})
	if status >= 500 {
		return err
	}
	return nil
}

func (h *handler) writeBody(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"class":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	clear(b) // it may hold a value
}

func (h *handler) logRequest(r *http.Request, status int, d time.Duration, reqID string, rl reqLog) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", rl.route),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.String("request_id", reqID),
		slog.String("remote", r.RemoteAddr),
	}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	// Only a validated path is logged: whatever else was typed there might
	// be a value pasted in the wrong place.
	add("path", rl.path)
	add("identity", rl.identity)
	add("token_accessor", rl.accessor)
	add("class", rl.class)
	if rl.err != nil {
		attrs = append(attrs, slog.String("error", rl.err.Error()))
	}
	h.log.LogAttrs(context.WithoutCancel(r.Context()), level, "request", attrs...)
}

// unavailable marks a failure that is the server's state, not the
// request's: 503, and worth retrying later.
type unavailable struct{ err error }

func (u unavailable) Error() string { return "unavailable: " + u.err.Error() }
func (u unavailable) Unwrap() error { return u.err }

// classOf is secret.Class, plus the server's own unavailable and
// unsupported media type classes.
func classOf(err error) string {
	var u unavailable
	var rl rateLimited
	if errors.As(err, &u) || errors.As(err, &rl) {
		return api.ClassUnavailable
	}
	if errors.As(err, new(mediaTypeError)) {
		return api.ClassUnsupportedMediaType
	}
	return secret.Class(err)
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader keeps the first final status (1xx informational headers
// are not one).
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush, deadlines and the
// connection through the wrapper.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

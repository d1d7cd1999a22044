package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// GitHub Actions OIDC defaults and limits.
const (
	// DefaultOIDCIssuer is GitHub Actions' token issuer.
	DefaultOIDCIssuer = "https://token.actions.githubusercontent.com"
	// DefaultOIDCTokenTTL is the life of a passman token issued for an ID
	// token: long enough for a deploy job, short enough that a leaked one
	// soon stops working.
	DefaultOIDCTokenTTL = 15 * time.Minute
	// MaxOIDCTokenTTL bounds the configurable TTL: these tokens are meant
	// to be short-lived; a job that runs longer asks again.
	MaxOIDCTokenTTL = time.Hour
	// oidcLeeway is the clock skew tolerated for nbf and iat. go-oidc
	// allows five minutes for nbf; we are stricter.
	oidcLeeway = time.Minute
	// maxOIDCBodyBytes bounds the exchange request: a GitHub ID token is
	// about 1-2 KiB; anything much larger is not one.
	maxOIDCBodyBytes = 16 << 10
	// oidcHTTPTimeout bounds discovery and JWKS fetches when no client is
	// configured, so a hung issuer cannot hold requests for ever.
	oidcHTTPTimeout = 10 * time.Second
)

// ClaimKind is the token claim that records the subject kind of a token
// the server issued for a federated identity ("github-oidc"), and that
// subjectOf turns back into policy.Subject.Kind. Passman tokens carry
// only string claims and no kind, so the kind travels as a claim. The
// token-create route refuses claims under "passman." so no admin can
// mint a token that poses as a GitHub identity through the API (the
// store's creator, who can do anything locally, still can).
const ClaimKind = "passman.kind"

// reservedClaimPrefix marks claims only the server itself may set.
const reservedClaimPrefix = "passman."

// GitHubClaims are the ID-token claims copied into the passman token's
// claims (and so into input.subject.claims); others are dropped to keep
// the token record small and the policy input predictable.
var GitHubClaims = []string{
	"repository", "repository_owner", "repository_id", "ref", "ref_type",
	"environment", "workflow_ref", "job_workflow_ref", "sha", "actor",
	"event_name", "run_id", "sub", "aud", "iss",
}

// OIDCConfig configures the GitHub Actions OIDC login
// (POST /v1/auth/oidc).
type OIDCConfig struct {
	// Issuer is the issuer URL; its discovery document names the JWKS.
	// "" means DefaultOIDCIssuer.
	Issuer string
	// Audience is required: the aud a token must carry (the workflow asks
	// for it with core.getIDToken(audience)). Without it, any token GitHub
	// minted for any other service would be accepted here.
	Audience string
	// TokenTTL is the passman token's life; 0 means DefaultOIDCTokenTTL.
	// It is not capped by the ID token's exp: the ID token proves the
	// job's identity once, and a running job can fetch a fresh one at any
	// time anyway, so capping would only force more exchanges.
	TokenTTL time.Duration
	// AllowedOwners, when set, restricts logins to repositories of these
	// owners (repository_owner, compared case-insensitively as GitHub
	// does). The policy still decides what each may do.
	AllowedOwners []string
	// HTTPClient fetches discovery and keys; nil means a client with a
	// 10s timeout. Tests pass one trusting their issuer's certificate.
	HTTPClient *http.Client
	// Now is the clock for token checks; nil means time.Now.
	Now func() time.Time
}

// OIDC verifies GitHub Actions ID tokens. The issuer's discovery document
// is fetched on first use (and again after a failure), so the server
// starts even when the issuer is unreachable; its keys are then cached and
// fetched again when no cached key verifies a token, at most once per
// JWKSMinRefetch (keySet), so forged tokens cannot make the server hammer
// the issuer.
type OIDC struct {
	cfg OIDCConfig

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// NewOIDC checks cfg. It does no network I/O.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultOIDCIssuer
	}
	if strings.TrimSpace(cfg.Audience) == "" {
		return nil, fmt.Errorf("%w: OIDC login needs an audience (oidc.audience): without one any GitHub token minted for another service would be accepted", secret.ErrInvalidArgument)
	}
	switch {
	case cfg.TokenTTL == 0:
		cfg.TokenTTL = DefaultOIDCTokenTTL
	case cfg.TokenTTL < 0 || cfg.TokenTTL > MaxOIDCTokenTTL:
		return nil, fmt.Errorf("%w: oidc.token_ttl must be between 0 and %s", secret.ErrInvalidArgument, MaxOIDCTokenTTL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: oidcHTTPTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.AllowedOwners = slices.Clone(cfg.AllowedOwners)
	return &OIDC{cfg: cfg}, nil
}

// errOIDCRejected is every verification failure as the caller sees it:
// which check failed is logged, not told, so a forger learns nothing.
var errOIDCRejected = fmt.Errorf("%w: OIDC token rejected", secret.ErrUnauthenticated)

// rejected wraps a verification failure: its message is the generic one,
// its reason (for the log) is kept.
type rejected struct{ reason error }

func (r rejected) Error() string { return errOIDCRejected.Error() }
func (r rejected) Unwrap() error { return errOIDCRejected }

func reject(format string, args ...any) error {
	return rejected{fmt.Errorf(format, args...)}
}

// getVerifier discovers the issuer once; a failure is retried on the
// next request rather than cached.
func (o *OIDC) getVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	// The client goes in the context: that is how go-oidc is configured.
	// The key set it builds keeps the client but not ctx's cancellation.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.cfg.HTTPClient), o.cfg.Issuer)
	if err != nil {
		return nil, unavailable{fmt.Errorf("OIDC discovery at %s: %w", o.cfg.Issuer, err)}
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil || doc.JWKSURI == "" {
		return nil, unavailable{fmt.Errorf("OIDC discovery at %s: no jwks_uri (%v)", o.cfg.Issuer, err)}
	}
	// NewProvider checked that the document's issuer is o.cfg.Issuer.
	keys := newKeySet(doc.JWKSURI, o.cfg.HTTPClient, o.cfg.Now)
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, keys, &oidc.Config{
		ClientID: o.cfg.Audience,
		// Explicit, so a discovery document cannot widen it: asymmetric
		// algorithms only, so neither "none" nor an HMAC keyed with the
		// public key (algorithm confusion) can pass.
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256},
		Now:                  o.cfg.Now,
	})
	return o.verifier, nil
}

// Verify checks raw and returns the identity (the sub claim) and the
// claims to put on the passman token. A bad token is an error wrapping
// secret.ErrUnauthenticated whose message is generic; errors.As with
// rejected (see RejectReason) gives the reason.
func (o *OIDC) Verify(ctx context.Context, raw string) (string, map[string]string, error) {
	v, err := o.getVerifier(ctx)
	if err != nil {
		return "", nil, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		return "", nil, reject("verify: %w", err)
	}
	var c map[string]any
	if err := tok.Claims(&c); err != nil {
		return "", nil, reject("decode claims: %w", err)
	}
	now := o.cfg.Now()
	// go-oidc checks exp, and nbf with five minutes' leeway; hold nbf and
	// iat to one minute, and require iat, which GitHub always sets.
	if nbf, ok := numericDate(c["nbf"]); ok && now.Add(oidcLeeway).Before(nbf) {
		return "", nil, reject("token not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	iat, ok := numericDate(c["iat"])
	if !ok {
		return "", nil, reject("token has no iat")
	}
	if now.Add(oidcLeeway).Before(iat) {
		return "", nil, reject("token issued in the future (%s)", iat.UTC().Format(time.RFC3339))
	}
	if tok.Subject == "" {
		return "", nil, reject("token has no sub")
	}
	claims := make(map[string]string, len(GitHubClaims)+1)
	for _, k := range GitHubClaims {
		if s, ok := claimString(c[k]); ok {
			claims[k] = s
		}
	}
	if len(o.cfg.AllowedOwners) > 0 && !slices.ContainsFunc(o.cfg.AllowedOwners, func(a string) bool {
		return claims["repository_owner"] != "" && strings.EqualFold(a, claims["repository_owner"])
	}) {
		return "", nil, reject("repository owner %q is not in oidc.allowed_owners", claims["repository_owner"])
	}
	claims[ClaimKind] = policy.KindGitHubOIDC
	return tok.Subject, claims, nil
}

// RejectReason is why a token was rejected, for the log; "" when err is
// not a rejection.
func RejectReason(err error) string {
	var r rejected
	if errors.As(err, &r) {
		return r.reason.Error()
	}
	return ""
}

// numericDate reads a JWT NumericDate (JSON number of seconds).
func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// claimString renders a claim as a token claim value: strings as they
// are, a list (aud may be one) comma-joined, numbers and booleans as JSON.
// Objects are dropped: GitHub sends none among GitHubClaims.
func claimString(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, v != ""
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), len(parts) > 0
	case float64, bool:
		b, err := json.Marshal(v)
		return string(b), err == nil
	}
	return "", false
}

// errNoOIDC answers the OIDC login of a server without OIDC configured.
var errNoOIDC = fmt.Errorf("%w: this server does not accept OIDC logins", secret.ErrPrecondition)

func init() {
	// Registered here rather than in routes.go to keep OIDC in one file.
	routeFuncs[api.RouteOIDCLogin.Name] = serveOIDCLogin
}

// serveOIDCLogin exchanges a GitHub Actions ID token for a passman token.
// The token is created as the server's own actor (the request has no
// subject: the route is public), like the dev server's root token: the
// ID token was the credential, and what the new token may do is the
// policy's decision on its claims. Creation is audited as usual.
func serveOIDCLogin(h *handler, ctx context.Context, c *call) (any, error) {
	if h.oidc == nil {
		return nil, errNoOIDC
	}
	if c.r.ContentLength > maxOIDCBodyBytes {
		return nil, fmt.Errorf("%w: request body is %d bytes, at most %d allowed", secret.ErrTooLarge, c.r.ContentLength, maxOIDCBodyBytes)
	}
	// No writer: only the limit matters here; the outer MaxBytesReader
	// already closes the connection on a huge body.
	c.r.Body = http.MaxBytesReader(nil, c.r.Body, maxOIDCBodyBytes)
	var req api.OIDCLoginRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	if req.Token == "" {
		return nil, fmt.Errorf("%w: token is required", secret.ErrInvalidArgument)
	}
	identity, claims, err := h.oidc.Verify(ctx, req.Token)
	if err != nil {
		if reason := RejectReason(err); reason != "" {
			h.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelWarn, "oidc login rejected",
				slog.String("reason", scrub(reason, req.Token)))
		}
		return nil, err
	}
	token, info, err := h.svc.CreateToken(ctx, secret.TokenRequest{Identity: identity, Claims: claims, TTL: h.oidc.cfg.TokenTTL})
	if err != nil {
		return nil, fmt.Errorf("issue token for OIDC identity: %w", err)
	}
	return api.TokenCreateResponse{Token: token, Info: info}, nil
}

// scrub removes the token, and any long piece of it, from a log message:
// a library's parse error might quote what it could not parse.
func scrub(msg, token string) string {
	msg = strings.ReplaceAll(msg, token, "[token]")
	for part := range strings.SplitSeq(token, ".") {
		if len(part) >= 8 {
			msg = strings.ReplaceAll(msg, part, "[token]")
		}
	}
	return msg
}

// reservedClaimsGuard is the token administration the token routes use: it
// refuses claims under "passman.", which only the server sets.
type reservedClaimsGuard struct{ passman.Tokens }

func (g reservedClaimsGuard) CreateToken(ctx context.Context, req secret.TokenRequest) (string, secret.TokenInfo, error) {
	for k := range req.Claims {
		if strings.HasPrefix(k, reservedClaimPrefix) {
			return "", secret.TokenInfo{}, fmt.Errorf("%w: claims starting with %q are reserved for the server", secret.ErrInvalidArgument, reservedClaimPrefix)
		}
	}
	// Unwrapped: the route's error messages stay what they were.
	return g.Tokens.CreateToken(ctx, req)
}

// subjectKind is the policy kind of a token: a token the server issued
// for a federated identity (or an mTLS caller) says so in ClaimKind.
func subjectKind(claims map[string]string) string {
	switch k := claims[ClaimKind]; k {
	case policy.KindGitHubOIDC, policy.KindMTLS:
		return k
	}
	return policy.KindToken
}

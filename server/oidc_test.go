package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/oidctest"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// authPolicy lets the main branch of acme/app, and the mTLS client
// spiffe://acme/ci, read prod/app/*; a role=root token does everything.
const authPolicy = `package passman.authz

allow if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "acme/app"
	input.subject.claims.ref == "refs/heads/main"
	input.action == "read"
	startswith(input.path, "prod/app/")
}

allow if {
	input.subject.kind == "mtls"
	input.subject.id == "uri:spiffe://acme/ci"
	input.action == "read"
	startswith(input.path, "prod/app/")
}

allow if {
	input.subject.kind == "token"
	input.subject.claims.role == "root"
}
`

const testAudience = "https://passman.test"

// authEnv is a server with OIDC login (and optionally client
// certificates) over a store with authPolicy.
type authEnv struct {
	url    string
	client *http.Client
	srv    *httptest.Server
	local  *core.Local
	store  core.Options
	log    *servertest.Buffer
	root   string // a role=root token
}

func newAuthEnv(t *testing.T, oidcCfg *server.OIDCConfig, tlsSetup func(*httptest.Server)) *authEnv {
	t.Helper()
	return newPolicyEnv(t, authPolicy, oidcCfg, tlsSetup)
}

// newPolicyEnv is newAuthEnv with another policy.
func newPolicyEnv(t *testing.T, policyText string, oidcCfg *server.OIDCConfig, tlsSetup func(*httptest.Server)) *authEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "test.rego"), []byte(policyText), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &authEnv{log: &servertest.Buffer{}}
	e.store = core.Options{Dir: filepath.Join(dir, "store"), Actor: "admin", AuditSync: audit.SyncWrite, PolicyDir: polDir}
	if _, err := core.Init(ctx, e.store); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.local, err = core.Open(ctx, e.store); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.local.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	for _, p := range []string{"prod/app/key", "prod/db/password"} {
		if _, err := e.local.Put(ctx, p, secret.NewValue([]byte("value-of-"+p)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if e.root, _, err = e.local.CreateToken(ctx, secret.TokenRequest{Identity: "root", Claims: map[string]string{"role": "root"}}); err != nil {
		t.Fatal(err)
	}
	opts := server.Options{Logger: slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if oidcCfg != nil {
		if opts.OIDC, err = server.NewOIDC(*oidcCfg); err != nil {
			t.Fatal(err)
		}
	}
	opts.ClientCerts = tlsSetup != nil
	e.srv = httptest.NewUnstartedServer(server.New(e.local, opts))
	// Refused handshakes are expected in the mTLS tests.
	e.srv.Config.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)
	if tlsSetup != nil {
		tlsSetup(e.srv)
	}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.url, e.client = e.srv.URL, e.srv.Client()
	return e
}

func (e *authEnv) do(t *testing.T, method, target, token, body string) result {
	t.Helper()
	res, err := e.try(e.client, method, target, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return res
}

func (e *authEnv) try(c *http.Client, method, target, token, body string) (result, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+target, rd)
	if err != nil {
		return result{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: b, header: resp.Header}, err
}

func loginBody(t *testing.T, jwt string) string {
	t.Helper()
	b, err := json.Marshal(api.OIDCLoginRequest{Token: jwt})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// login exchanges jwt; it returns the response.
func (e *authEnv) login(t *testing.T, jwt string) result {
	t.Helper()
	return e.do(t, http.MethodPost, api.RouteOIDCLogin.Path, "", loginBody(t, jwt))
}

func oidcConfig(iss *oidctest.Issuer) *server.OIDCConfig {
	return &server.OIDCConfig{Issuer: iss.URL, Audience: testAudience, HTTPClient: iss.Client(), AllowedOwners: []string{"ACME", "other-org"}}
}

func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	e := newAuthEnv(t, oidcConfig(iss), nil)
	now := time.Now()
	main := iss.GitHubClaims("acme/app", testAudience, now)
	var secrets []string // every JWT and passman token seen, for the log check
	for _, alg := range []oidctest.Alg{oidctest.RS256, oidctest.ES256} {
		jwt := iss.Sign(t, alg, main)
		res := e.login(t, jwt)
		if res.status != 200 {
			t.Fatalf("%s login: %d %s", alg, res.status, res.body)
		}
		var tr api.TokenCreateResponse
		if err := json.Unmarshal(res.body, &tr); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, jwt, tr.Token)
		if !strings.HasPrefix(tr.Token, core.TokenPrefix) {
			t.Errorf("token %q is not a passman token", tr.Token)
		}
		if tr.Info.Identity != main["sub"] {
			t.Errorf("identity %q, want the sub claim", tr.Info.Identity)
		}
		if ttl := tr.Info.ExpiresAt.Sub(tr.Info.CreatedAt); ttl != server.DefaultOIDCTokenTTL {
			t.Errorf("token TTL %s, want %s", ttl, server.DefaultOIDCTokenTTL)
		}
		for _, k := range []string{"repository", "repository_owner", "repository_id", "ref", "ref_type", "workflow_ref", "job_workflow_ref", "sha", "actor", "event_name", "run_id", "sub", "iss"} {
			if got, want := tr.Info.Claims[k], main[k]; got != want {
				t.Errorf("claim %s = %q, want %q", k, got, want)
			}
		}
		if tr.Info.Claims["aud"] != testAudience || tr.Info.Claims["runner_environment"] != "" {
			t.Errorf("claims %v: want aud, and no claim outside the list", tr.Info.Claims)
		}

		// The policy sees kind github-oidc and the claims.
		if r := e.do(t, "GET", "/v1/secrets/prod/app/key", tr.Token, ""); r.status != 200 {
			t.Errorf("%s: read prod/app/key: %d %s", alg, r.status, r.body)
		}
		if r := e.do(t, "GET", "/v1/secrets/prod/db/password", tr.Token, ""); r.status != 404 {
			t.Errorf("%s: read prod/db/password: %d %s, want 404", alg, r.status, r.body)
		}
		if r := e.do(t, "GET", "/v1/auth/tokens", tr.Token, ""); r.status != 403 {
			t.Errorf("%s: list tokens: %d, want 403", alg, r.status)
		}
	}

	// The same repository on another branch is denied: 404 for reads.
	feature := oidctest.With(main, "ref", "refs/heads/feature", "sub", "repo:acme/app:ref:refs/heads/feature")
	jwt := iss.Sign(t, oidctest.RS256, feature)
	res := e.login(t, jwt)
	if res.status != 200 {
		t.Fatalf("feature login: %d %s", res.status, res.body)
	}
	var tr api.TokenCreateResponse
	if err := json.Unmarshal(res.body, &tr); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, jwt, tr.Token)
	if r := e.do(t, "GET", "/v1/secrets/prod/app/key", tr.Token, ""); r.status != 404 {
		t.Errorf("feature branch read: %d %s, want 404", r.status, r.body)
	}

	// An aud list containing ours is fine; it is recorded comma-joined.
	jwt = iss.Sign(t, oidctest.RS256, oidctest.With(main, "aud", []string{"other", testAudience}))
	res = e.login(t, jwt)
	if res.status != 200 || !strings.Contains(string(res.body), `"aud":"other,`+testAudience+`"`) {
		t.Errorf("aud list: %d %s", res.status, res.body)
	}
	secrets = append(secrets, jwt)

	// Keys are cached: one discovery, one JWKS fetch for all the above.
	if n := iss.JWKSFetches(); n != 1 {
		t.Errorf("%d JWKS fetches, want 1 (cached)", n)
	}
	log := string(e.log.Bytes())
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("a token or JWT appears in the log")
		}
	}
	if !strings.Contains(log, `"route":"auth.oidc"`) {
		t.Errorf("no request log line for the login:\n%s", log)
	}
}

func TestOIDCLoginRejects(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	e := newAuthEnv(t, oidcConfig(iss), nil)
	now := time.Now()
	good := iss.GitHubClaims("acme/app", testAudience, now)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	cases := []struct {
		name, jwt string
		reason    string // in the log
	}{
		{"wrong audience", iss.Sign(t, oidctest.RS256, oidctest.With(good, "aud", "https://other.example")), "expected audience"},
		{"wrong issuer", iss.Sign(t, oidctest.RS256, oidctest.With(good, "iss", "https://token.actions.githubusercontent.com")), "different provider"},
		{"expired", iss.Sign(t, oidctest.RS256, oidctest.With(good, "iat", at(-10*time.Minute), "nbf", at(-10*time.Minute), "exp", at(-2*time.Minute))), "expired"},
		{"no exp", iss.Sign(t, oidctest.RS256, oidctest.With(good, "exp", nil)), "expired"},
		// Within go-oidc's five minutes of nbf leeway, beyond ours.
		{"not yet valid", iss.Sign(t, oidctest.RS256, oidctest.With(good, "nbf", at(3*time.Minute), "exp", at(10*time.Minute))), "not valid before"},
		{"issued in the future", iss.Sign(t, oidctest.RS256, oidctest.With(good, "iat", at(3*time.Minute), "exp", at(10*time.Minute))), "future"},
		{"no iat", iss.Sign(t, oidctest.RS256, oidctest.With(good, "iat", nil)), "no iat"},
		{"no sub", iss.Sign(t, oidctest.RS256, oidctest.With(good, "sub", nil)), "no sub"},
		{"owner not allowed", iss.Sign(t, oidctest.RS256, oidctest.With(good, "repository_owner", "evil", "repository", "evil/app")), "allowed_owners"},
		{"forged RSA signature", iss.SignWith(t, jose.RS256, otherRSA, oidctest.KidRSA, good), "signature"},
		{"forged EC signature", iss.SignWith(t, jose.ES256, otherEC, oidctest.KidEC, good), "signature"},
		{"unknown kid", iss.SignWith(t, jose.RS256, otherRSA, "kid-nobody-published", good), "signature"},
		{"alg none", iss.Sign(t, oidctest.None, good), "malformed jwt"},
		{"HMAC with the public key", iss.Sign(t, oidctest.HS256Confusion, good), "malformed jwt"},
		{"RS512 (not allowed)", iss.SignWith(t, jose.RS512, iss.RSAKey(), oidctest.KidRSA, good), "malformed jwt"},
		{"malformed", "not-a-jwt.at-all", "malformed jwt"},
		{"three garbage parts", "eyJhbGciOiJSUzI1NiJ9.!!!.???", "malformed jwt"},
	}
	for _, c := range cases {
		res := e.login(t, c.jwt)
		var er api.ErrorResponse
		_ = json.Unmarshal(res.body, &er)
		if res.status != 401 || er.Error.Class != "unauthenticated" || er.Error.Message != "unauthenticated: OIDC token rejected" {
			t.Errorf("%s: %d %s, want 401 with the generic message", c.name, res.status, res.body)
		}
		if strings.Contains(string(res.body), c.jwt) {
			t.Errorf("%s: the response quotes the token", c.name)
		}
	}
	log := string(e.log.Bytes())
	for _, c := range cases {
		if strings.Contains(log, c.jwt) {
			t.Errorf("%s: the log quotes the token", c.name)
		}
	}
	for _, c := range cases {
		if !strings.Contains(log, c.reason) {
			t.Errorf("%s: no log line says %q", c.name, c.reason)
		}
	}

	// Bad requests, before any token is looked at.
	for name, c := range map[string]struct {
		body   string
		status int
	}{
		"empty token":   {`{"token":""}`, 400},
		"not JSON":      {`{"token":`, 400},
		"unknown field": {`{"token":"x","jwt":"y"}`, 400},
		"oversized":     {`{"token":"` + strings.Repeat("a", 20<<10) + `"}`, 413},
	} {
		if res := e.do(t, "POST", api.RouteOIDCLogin.Path, "", c.body); res.status != c.status {
			t.Errorf("%s: %d %s, want %d", name, res.status, res.body, c.status)
		}
	}
	// No token was issued by any of this.
	toks, err := e.local.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 1 { // the root token
		t.Errorf("%d tokens exist, want only the root token", len(toks))
	}
}

// TestOIDCClaimKindReserved: an admin cannot mint, through the API, a
// token that poses as a GitHub identity.
func TestOIDCClaimKindReserved(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil, nil)
	body := `{"identity":"repo:acme/app:ref:refs/heads/main","claims":{"passman.kind":"github-oidc","repository":"acme/app","ref":"refs/heads/main"}}`
	if res := e.do(t, "POST", api.RouteTokenCreate.Path, e.root, body); res.status != 400 {
		t.Errorf("token create with a reserved claim: %d %s, want 400", res.status, res.body)
	}
	// Without OIDC configured the route says so.
	if res := e.login(t, "x.y.z"); res.status != 412 {
		t.Errorf("login without OIDC: %d %s, want 412", res.status, res.body)
	}
}

// TestOIDCDiscoveryFailure: an unreachable issuer is the server's
// problem (503), not the caller's, and is retried on the next request.
func TestOIDCDiscoveryFailure(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	cfg := oidcConfig(iss)
	cfg.HTTPClient = &http.Client{} // does not trust the issuer's certificate
	e := newAuthEnv(t, cfg, nil)
	jwt := iss.Sign(t, oidctest.RS256, iss.GitHubClaims("acme/app", testAudience, time.Now()))
	if res := e.login(t, jwt); res.status != 503 {
		t.Errorf("login with discovery failing: %d %s, want 503", res.status, res.body)
	}
	if strings.Contains(string(e.log.Bytes()), jwt) {
		t.Errorf("the log quotes the token")
	}
}

func TestNewOIDCConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]server.OIDCConfig{
		"no audience":  {},
		"blank":        {Audience: "  "},
		"negative TTL": {Audience: "a", TokenTTL: -time.Second},
		"TTL too long": {Audience: "a", TokenTTL: 2 * time.Hour},
	} {
		if _, err := server.NewOIDC(cfg); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := server.NewOIDC(server.OIDCConfig{Audience: "a", TokenTTL: 5 * time.Minute}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// TestRunRefusesOIDCWithoutAudience: the server does not start with OIDC
// half-configured.
func TestRunRefusesOIDCWithoutAudience(t *testing.T) {
	t.Parallel()
	err := server.Run(context.Background(), server.Config{Dev: true, Addr: "127.0.0.1:0", GitHubOIDC: &server.OIDCConfig{}, Out: &strings.Builder{}})
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "audience") {
		t.Errorf("Run: %v, want a missing-audience error", err)
	}
}

// TestOIDCJWKSRefetchBounded: forged tokens, however many and whatever
// kid they name, make the server fetch the issuer's keys at most once per
// server.JWKSMinRefetch; a key the issuer publishes later is still picked
// up; a broken or oversized key set is refused.
func TestOIDCJWKSRefetchBounded(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	clock := testclock.New(time.Now())
	cfg := oidcConfig(iss)
	cfg.Now = clock.Now
	e := newAuthEnv(t, cfg, nil)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := func() map[string]any { return iss.GitHubClaims("acme/app", testAudience, clock.Now()) }
	forged := func(i int) string {
		switch i % 3 {
		case 0:
			return iss.SignWith(t, jose.RS256, otherRSA, fmt.Sprintf("kid-%d", i), good())
		case 1:
			return iss.SignWith(t, jose.RS256, otherRSA, oidctest.KidRSA, good())
		}
		return iss.SignWith(t, jose.RS256, otherRSA, "", good())
	}
	burst := func(n int) {
		t.Helper()
		jwts := make([]string, n)
		for i := range jwts {
			jwts[i] = forged(i)
		}
		var wg sync.WaitGroup
		for _, jwt := range jwts {
			wg.Go(func() {
				res, err := e.try(e.client, "POST", api.RouteOIDCLogin.Path, "", loginBody(t, jwt))
				if err != nil || res.status != 401 {
					t.Errorf("forged token: %d %s, %v; want 401", res.status, res.body, err)
				}
			})
		}
		wg.Wait()
	}
	fetches := func(want int, when string) {
		t.Helper()
		if n := iss.JWKSFetches(); n != want {
			t.Fatalf("%s: %d JWKS fetches, want %d", when, n, want)
		}
	}

	if res := e.login(t, iss.Sign(t, oidctest.RS256, good())); res.status != 200 {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	fetches(1, "after the first login")
	burst(60)
	fetches(1, "after forged tokens right after a fetch")
	clock.Advance(server.JWKSMinRefetch + time.Second)
	burst(60)
	fetches(2, "after forged tokens once the bound has passed")
	burst(30)
	fetches(2, "after more forged tokens")
	if !strings.Contains(string(e.log.Bytes()), "fetched less than") {
		t.Error("no log line says a refetch was refused")
	}

	// Rotation: a key published since the last fetch is found once the
	// bound has passed (a token signed with it before then is refused).
	newKey := iss.Publish(t, "rsa-2")
	rotated := func() result {
		return e.login(t, iss.SignWith(t, jose.RS256, newKey, "rsa-2", good()))
	}
	if res := rotated(); res.status != 401 {
		t.Errorf("new key within the bound: %d, want 401", res.status)
	}
	clock.Advance(server.JWKSMinRefetch + time.Second)
	if res := rotated(); res.status != 200 {
		t.Fatalf("new key after the bound: %d %s", res.status, res.body)
	}
	fetches(3, "after the rotation")
	if res := rotated(); res.status != 200 {
		t.Fatalf("new key again: %d %s", res.status, res.body)
	}
	fetches(3, "after a second token with the new key (cached)")

	// A broken key set: refused, the keys already cached keep working.
	for name, body := range map[string][]byte{
		"not JSON":  []byte(`{"keys": [`),
		"no keys":   []byte(`{"keys": []}`),
		"junk keys": []byte(`{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}, {"kty": "oct", "k": "c2VjcmV0"}]}`),
		"oversized": []byte(`{"keys": [], "pad": "` + strings.Repeat("a", 2<<20) + `"}`),
	} {
		iss.ServeJWKS(body)
		clock.Advance(server.JWKSMinRefetch + time.Second)
		if res := e.login(t, forged(0)); res.status != 401 {
			t.Errorf("%s: forged token: %d", name, res.status)
		}
		if res := e.login(t, iss.Sign(t, oidctest.ES256, good())); res.status != 200 {
			t.Errorf("%s: a token with a cached key: %d %s", name, res.status, res.body)
		}
	}
	log := string(e.log.Bytes())
	for _, want := range []string{"decode key set", "no usable public key", "larger than"} {
		if !strings.Contains(log, want) {
			t.Errorf("no log line says %q", want)
		}
	}
}

// TestOIDCExamplePolicy: the example policy's GitHub rule works on the
// claims the server really passes: the production deploy job of acme/app
// reads prod/app/*, the same repository and branch under a risky event,
// or outside the environment, reads nothing.
func TestOIDCExamplePolicy(t *testing.T) {
	t.Parallel()
	pol, err := os.ReadFile(filepath.Join("..", "examples", "policies", "teams.rego"))
	if err != nil {
		t.Fatal(err)
	}
	iss := oidctest.New(t)
	e := newPolicyEnv(t, string(pol), oidcConfig(iss), nil)
	deploy := oidctest.With(iss.GitHubClaims("acme/app", testAudience, time.Now()),
		"environment", "production", "sub", "repo:acme/app:environment:production")
	read := func(claims map[string]any) int {
		t.Helper()
		res := e.login(t, iss.Sign(t, oidctest.RS256, claims))
		if res.status != 200 {
			t.Fatalf("login: %d %s", res.status, res.body)
		}
		var tr api.TokenCreateResponse
		if err := json.Unmarshal(res.body, &tr); err != nil {
			t.Fatal(err)
		}
		return e.do(t, "GET", "/v1/secrets/prod/app/key", tr.Token, "").status
	}
	for _, event := range []string{"push", "workflow_dispatch"} {
		if got := read(oidctest.With(deploy, "event_name", event)); got != 200 {
			t.Errorf("deploy job on %s: %d, want 200", event, got)
		}
	}
	for name, claims := range map[string]map[string]any{
		"pull_request_target": oidctest.With(deploy, "event_name", "pull_request_target"),
		"issue_comment":       oidctest.With(deploy, "event_name", "issue_comment"),
		"workflow_run":        oidctest.With(deploy, "event_name", "workflow_run"),
		"no environment":      oidctest.With(deploy, "environment", nil),
		"other workflow":      oidctest.With(deploy, "job_workflow_ref", "acme/app/.github/workflows/ci.yml@refs/heads/main"),
		"other repository id": oidctest.With(deploy, "repository_id", "7"),
	} {
		if got := read(claims); got != 404 {
			t.Errorf("%s: %d, want 404", name, got)
		}
	}
}

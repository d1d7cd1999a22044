package client

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/oidctest"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
)

const oidcAudience = "https://passman.example.com"

// ghActionsTokenService emulates GitHub Actions' ID token endpoint (the
// one at ACTIONS_ID_TOKEN_REQUEST_URL), which cannot run here: it checks
// the request token and mints an ID token for the asked audience with the
// test issuer, as GitHub signs with its own key.
type ghActionsTokenService struct {
	*httptest.Server
	mu       sync.Mutex
	issued   []string
	requests int
}

func newGHActionsTokenService(t *testing.T, iss *oidctest.Issuer, requestToken string) *ghActionsTokenService {
	g := &ghActionsTokenService{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.requests++
		if r.Header.Get("Authorization") != "Bearer "+requestToken {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		jwt := iss.Sign(t, oidctest.RS256, iss.GitHubClaims("acme/app", r.URL.Query().Get("audience"), time.Now()))
		g.issued = append(g.issued, jwt)
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(jwt), "value": jwt})
	}))
	t.Cleanup(g.Close)
	return g
}

// oidcServer is a passman server that accepts GitHub Actions OIDC logins
// from iss; acme/app's main branch may read prod/app/.
func oidcServer(t *testing.T, iss *oidctest.Issuer) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pol, 0o700); err != nil {
		t.Fatal(err)
	}
	policy := `package passman.authz

allow if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "acme/app"
	input.subject.claims.ref == "refs/heads/main"
	input.action == "read"
	startswith(input.path, "prod/app/")
}
`
	if err := os.WriteFile(filepath.Join(pol, "ci.rego"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := core.Options{Dir: filepath.Join(dir, "store"), Actor: "admin", AuditSync: audit.SyncWrite, PolicyDir: pol}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.Put(ctx, "prod/app/key", secret.NewValue([]byte("app key value")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	o, err := server.NewOIDC(server.OIDCConfig{Issuer: iss.URL, Audience: oidcAudience, HTTPClient: iss.Client(), AllowedOwners: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(server.New(l, server.Options{OIDC: o, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return srv
}

// TestLoginGitHubActions: from inside a job, the client gets the job's ID
// token, exchanges it at the server and reads with the passman token it
// got, until that token expires.
func TestLoginGitHubActions(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	srv := oidcServer(t, iss)
	gh := newGHActionsTokenService(t, iss, "request-token-canary-44")
	env := map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-canary-44"}
	c, err := New(Options{Addr: srv.URL, Transport: srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, "prod/app/key", secret.Selector{}); !errors.Is(err, secret.ErrUnauthenticated) {
		t.Fatalf("read before login: %v", err)
	}
	info, err := c.LoginGitHubActions(ctx, oidcAudience, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if info.Identity != "repo:acme/app:ref:refs/heads/main" || info.ExpiresAt.IsZero() {
		t.Fatalf("token info %+v", info)
	}
	v, err := c.Get(ctx, "prod/app/key", secret.Selector{})
	if err != nil || string(v.Value.Reveal()) != "app key value" {
		t.Fatalf("read after login: %v", err)
	}
	// The expiry is honoured: past it, the client does not send the token.
	c.now = func() time.Time { return info.ExpiresAt }
	if _, err := c.Get(ctx, "prod/app/key", secret.Selector{}); !errors.Is(err, secret.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("read after expiry: %v", err)
	}
}

// TestLoginGitHubActionsFailures: outside a job, with a wrong request
// token, or with a token the server refuses, login fails clearly, and no
// error holds a token.
func TestLoginGitHubActionsFailures(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	srv := oidcServer(t, iss)
	gh := newGHActionsTokenService(t, iss, "request-token-canary-44")
	c, err := New(Options{Addr: srv.URL, Transport: srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, tc := range map[string]struct {
		env      map[string]string
		audience string
		want     string
	}{
		"outside a job":    {map[string]string{}, oidcAudience, "id-token: write"},
		"no audience":      {map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-canary-44"}, "", "audience is required"},
		"wrong request":    {map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong-canary-45"}, oidcAudience, "Bad credentials"},
		"another audience": {map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-canary-44"}, "https://other.example", "OIDC login"},
	} {
		_, err := c.LoginGitHubActions(ctx, tc.audience, func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
			continue
		}
		gh.mu.Lock()
		for _, tok := range append([]string{"request-token-canary-44", "wrong-canary-45"}, gh.issued...) {
			if strings.Contains(err.Error(), tok) {
				t.Errorf("%s: error holds a token: %v", name, err)
			}
		}
		gh.mu.Unlock()
	}
}

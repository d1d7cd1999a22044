// Package servertest starts a real passman server for tests: a new store
// with a test policy, tokens of every kind, and the API handler behind
// TLS on loopback, with its request log captured.
package servertest

import (
	"bytes"
	"context"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
)

// Policy is the test policy: a root token may do everything, a reader may
// read and list under app/, nothing under locked/ is readable by any
// token, and every other token is denied by default.
const Policy = `package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.claims.role == "root"
}

allow if {
	input.subject.kind == "token"
	input.subject.claims.role == "reader"
	input.action in {"read", "list"}
	startswith(input.path, "app/")
}

deny contains "no token reads under locked/" if {
	input.subject.kind == "token"
	input.action == "read"
	startswith(input.path, "locked/")
}
`

// Token kinds in Env.Tokens.
const (
	Root    = "root"    // claim role=root: allowed everything
	Reader  = "reader"  // claim role=reader: read and list under app/
	Nobody  = "nobody"  // valid, allowed nothing
	Revoked = "revoked" // was root, revoked
	Expired = "expired" // was root, expired
)

// Env is a running test server.
type Env struct {
	// URL is the server's https URL; CAFile trusts its certificate.
	URL    string
	CAFile string
	// Tokens holds a token of each kind above.
	Tokens map[string]string
	// Accessors holds their accessors.
	Accessors map[string]string
	Local     *core.Local
	Store     core.Options
	Server    *httptest.Server
	// Log is the server's request log (JSON lines).
	Log   *Buffer
	Clock *testclock.Clock
}

// Options tune New.
type Options struct {
	// MaxBodyBytes is passed to server.Options.
	MaxBodyBytes int64
	// Metrics is passed to server.Options.
	Metrics *metrics.Metrics
	// Limiter is passed to server.Options.
	Limiter *server.RateLimiter
	// Policy replaces the test policy (Policy) when set.
	Policy string
	// ConfirmLimiter is passed to server.Options.
	ConfirmLimiter *server.RateLimiter
	// OIDC is passed to server.Options: the server then exchanges GitHub
	// Actions ID tokens (server.NewOIDC, e.g. for an oidctest issuer).
	OIDC *server.OIDC
}

// New starts a server; it stops when the test ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	e := &Env{
		Tokens:    map[string]string{},
		Accessors: map[string]string{},
		Log:       &Buffer{},
		Clock:     testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
	polDir := filepath.Join(dir, "policies")
	must(t, os.MkdirAll(polDir, 0o700))
	pol := Policy
	if o.Policy != "" {
		pol = o.Policy
	}
	must(t, os.WriteFile(filepath.Join(polDir, "test.rego"), []byte(pol), 0o600))
	e.Store = core.Options{Dir: filepath.Join(dir, "store"), Actor: "admin", AuditSync: audit.SyncWrite, PolicyDir: polDir, Now: e.Clock.Now, Metrics: o.Metrics}
	_, err := core.Init(ctx, e.Store)
	must(t, err)
	e.Local, err = core.Open(ctx, e.Store)
	must(t, err)

	// Tokens are created by the store's creator, whom the bundled policy
	// makes admin.
	for kind, req := range map[string]secret.TokenRequest{
		Root:    {Identity: "root-user", Claims: map[string]string{"role": "root"}},
		Reader:  {Identity: "reader-user", Claims: map[string]string{"role": "reader"}},
		Nobody:  {Identity: "nobody-user"},
		Revoked: {Identity: "revoked-user", Claims: map[string]string{"role": "root"}},
		Expired: {Identity: "expired-user", Claims: map[string]string{"role": "root"}, TTL: time.Minute},
	} {
		tok, info, err := e.Local.CreateToken(ctx, req)
		must(t, err)
		e.Tokens[kind], e.Accessors[kind] = tok, info.Accessor
	}
	must(t, e.Local.RevokeToken(ctx, e.Accessors[Revoked]))
	e.Clock.Advance(2 * time.Minute)

	logger := slog.New(slog.NewJSONHandler(e.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := server.New(e.Local, server.Options{Logger: logger, MaxBodyBytes: o.MaxBodyBytes, Metrics: o.Metrics, Limiter: o.Limiter, ConfirmLimiter: o.ConfirmLimiter, OIDC: o.OIDC})
	e.Server = httptest.NewUnstartedServer(h)
	e.Server.Config.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	e.Server.StartTLS()
	e.URL = e.Server.URL
	e.CAFile = filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(e.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.Server.Certificate().Raw}), 0o600))
	t.Cleanup(func() {
		e.Server.Close()
		if err := e.Local.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Buffer is a bytes.Buffer safe for concurrent writers and readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Bytes returns a copy of what was written.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

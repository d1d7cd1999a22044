package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/internal/oidctest"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// TestOIDCRenewal: with oidc, the provider logs in on first use, reuses
// the token while it is valid, and logs in again shortly before it
// expires, so a long apply never sends an expired token.
func TestOIDCRenewal(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	o, err := server.NewOIDC(server.OIDCConfig{Issuer: iss.URL, Audience: "https://passman.test", HTTPClient: iss.Client()})
	if err != nil {
		t.Fatal(err)
	}
	e := servertest.New(t, servertest.Options{OIDC: o, Policy: `package passman.authz

allow if {
	input.subject.kind == "github-oidc"
	input.action == "list"
}
`})
	e.Clock.Advance(time.Since(e.Clock.Now()))
	var logins atomic.Int32
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer request-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		logins.Add(1)
		jwt := iss.Sign(t, oidctest.RS256, iss.GitHubClaims("acme/infra", r.URL.Query().Get("audience"), time.Now()))
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(jwt), "value": jwt})
	}))
	t.Cleanup(gh.Close)
	c, err := client.New(client.Options{Addr: e.URL, CACertFile: e.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := &remote{c: c, audience: "https://passman.test", now: func() time.Time { return now },
		getenv: func(k string) string {
			return map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token"}[k]
		}}
	conn := &conn{remote: r}
	ctx := context.Background()
	list := func() error {
		return conn.use(ctx, func(b Backend) error {
			_, err := b.List(ctx, secret.ListOptions{})
			return err
		})
	}
	for i := range 3 {
		if err := list(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := logins.Load(); n != 1 {
		t.Fatalf("%d logins for three calls with a valid token, want 1", n)
	}
	if r.expires.IsZero() {
		t.Fatal("the token's expiry was not kept")
	}
	now = r.expires.Add(-oidcRenewBefore / 2)
	if err := list(); err != nil {
		t.Fatal(err)
	}
	if n := logins.Load(); n != 2 {
		t.Fatalf("%d logins after nearing the expiry, want 2", n)
	}
}

package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
)

// credential is the bearer token a client sends, and when it stops
// working (zero: unknown, or never).
type credential struct {
	token   string
	expires time.Time
}

// GitHubIDToken asks GitHub Actions for the running job's OIDC ID token,
// for audience (the passman server's configured audience): a GET of
// ACTIONS_ID_TOKEN_REQUEST_URL with ACTIONS_ID_TOKEN_REQUEST_TOKEN as
// bearer, both read with getenv, which a job has when it is granted
// "id-token: write". hc makes the request (nil: a client with the
// default timeout). This is the one place passman requests ID tokens.
func GitHubIDToken(ctx context.Context, audience string, getenv func(string) string, hc *http.Client) (string, error) {
	if audience == "" {
		return "", fmt.Errorf("%w: an OIDC audience is required (the server's oidc.audience)", secret.ErrInvalidArgument)
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	gh := githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithHTTPClient(hc))
	tok, err := gh.GetIDToken(ctx, audience)
	if err != nil {
		// The library's error may quote GitHub's answer, never our token.
		return "", fmt.Errorf("%w: request the job's OIDC ID token (does the job have permissions: id-token: write?): %v", secret.ErrUnauthenticated, err)
	}
	if tok == "" {
		return "", fmt.Errorf("%w: GitHub answered an empty OIDC ID token", secret.ErrUnauthenticated)
	}
	return tok, nil
}

// LoginOIDC exchanges an OIDC ID token (a GitHub Actions job's) for a
// short-lived passman token at the server (POST /v1/auth/oidc). From then
// on the client sends that token until it expires; a request after the
// expiry fails at once, saying so. It returns the token's description
// (identity, claims, expiry), never the token.
func (c *Client) LoginOIDC(ctx context.Context, idToken string) (secret.TokenInfo, error) {
	var out api.TokenCreateResponse
	// Not retried once it may have arrived: each login issues a token.
	if err := c.do(ctx, request{route: api.RouteOIDCLogin, in: api.OIDCLoginRequest{Token: idToken}, out: &out}); err != nil {
		return secret.TokenInfo{}, fmt.Errorf("OIDC login: %w", err)
	}
	c.cred.Store(&credential{token: out.Token, expires: out.Info.ExpiresAt})
	return out.Info, nil
}

// LoginGitHubActions logs in from inside a GitHub Actions job: the job's
// ID token for audience (GitHubIDToken, with getenv), exchanged at the
// server (LoginOIDC). Terraform in CI and the passman Action need no
// long-lived token this way.
func (c *Client) LoginGitHubActions(ctx context.Context, audience string, getenv func(string) string) (secret.TokenInfo, error) {
	idToken, err := GitHubIDToken(ctx, audience, getenv, nil)
	if err != nil {
		return secret.TokenInfo{}, err
	}
	return c.LoginOIDC(ctx, idToken)
}

package action

import (
	"context"
	"errors"
	"fmt"

	"github.com/passman-dev/passman/client"
)

// errNoIDToken: the job has no OIDC ID token to log in with.
var errNoIDToken = errors.New("no OIDC ID token")

// login connects to the passman server named by the inputs and logs in:
// with input token when given, else with the job's OIDC ID token for
// input audience (exchanged at the server's /v1/auth/oidc, where the
// job's claims reach data.passman.authz). The token in use is masked
// before anything can print it.
func (r *run) login(ev event) (*client.Client, error) {
	addr := r.input("server")
	if addr == "" {
		return nil, errors.New("input server is required: the passman server's URL")
	}
	token := r.input("token")
	if token != "" {
		r.gh.AddMask(token)
	}
	c, err := client.New(client.Options{Addr: addr, CACertFile: r.input("ca-cert"), Token: token})
	if err != nil {
		return nil, fmt.Errorf("passman server: %w", err)
	}
	if token != "" {
		return c, nil
	}
	if r.getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" || r.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN") == "" {
		why := "the job has no OIDC ID token: give it permissions: id-token: write"
		if ev.Fork {
			why = "this pull request comes from a fork, and GitHub gives a fork's workflow no OIDC ID token (nor secrets), so it cannot log in to passman; run secrets only on pushes and same-repository pull requests"
		}
		return nil, fmt.Errorf("%w: %s", errNoIDToken, why)
	}
	audience := r.input("audience")
	if audience == "" {
		audience = addr
	}
	if _, err := c.LoginGitHubActions(r.ctx, audience, r.getenv); err != nil {
		return nil, fmt.Errorf("passman OIDC login: %w", err)
	}
	r.gh.AddMask(c.BearerToken())
	return c, nil
}

// release revokes the token of c when the action obtained it (an OIDC
// login) and needs it no longer: scan and policy use it within their run
// step only, so it need not outlive the step (secrets leaves that to its
// post step). A failure only warns.
func (r *run) release(c interface{ RevokeSelf(context.Context) error }) {
	if r.input("token") != "" {
		return
	}
	if err := c.RevokeSelf(context.WithoutCancel(r.ctx)); err != nil {
		r.gh.Warningf("revoke the step's passman token: %s", oneLine(err))
	}
}

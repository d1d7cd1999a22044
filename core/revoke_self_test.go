package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// TestRevokeSelf: a token ends itself whatever the policy says, once; a
// token that is not one (or no longer one) ends nothing; the revocation
// is audited under the token's accessor, never the token.
func TestRevokeSelf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	token, info, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ci-job"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "other"})
	if err != nil {
		t.Fatal(err)
	}
	// As the token's own subject, whom no policy allows anything.
	as := core.WithSubject(ctx, policy.Subject{ID: "ci-job", Kind: "token"})
	for name, bad := range map[string]string{"empty": "", "not a token": "x", "unknown": core.TokenPrefix + strings.Repeat("A", 43)} {
		if err := l.RevokeSelf(as, bad); !errors.Is(err, secret.ErrUnauthenticated) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := l.RevokeSelf(as, token); err != nil {
		t.Fatal(err)
	}
	if _, err := l.LookupToken(ctx, token); !errors.Is(err, secret.ErrUnauthenticated) {
		t.Fatalf("lookup after revoke-self: %v", err)
	}
	if err := l.RevokeSelf(as, token); !errors.Is(err, secret.ErrUnauthenticated) {
		t.Fatalf("second revoke-self: %v", err)
	}
	if _, err := l.LookupToken(ctx, other); err != nil {
		t.Fatalf("another token was touched: %v", err)
	}
	entries, err := l.QueryAudit(ctx, audit.Filter{Action: core.ActionTokenRevokeSelf}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Details["accessor"] != info.Accessor || entries[0].Actor != "ci-job" {
		t.Fatalf("audit: %+v", entries)
	}
	for _, e := range entries {
		for _, v := range e.Details {
			if strings.Contains(v, token) {
				t.Fatalf("the token is in the audit log")
			}
		}
	}
}

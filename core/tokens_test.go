package core_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := initStore(t, audit.SyncWrite)
	opts.Now = clock.Now
	l := open(t, opts)

	token, info, err := l.CreateToken(ctx, core.TokenRequest{Identity: "ci", Claims: map[string]string{"role": "deploy"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, core.TokenPrefix) || len(token) != len(core.TokenPrefix)+43 {
		t.Fatalf("token %q does not look like pmt_ + 43 base64url characters", token)
	}
	if len(info.Accessor) != 16 || info.Identity != "ci" || info.Claims["role"] != "deploy" || info.CreatedBy != "alice" ||
		!info.ExpiresAt.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("info = %+v", info)
	}
	got, err := l.LookupToken(ctx, token)
	if err != nil || got.Accessor != info.Accessor || got.Identity != "ci" {
		t.Fatalf("lookup: %+v, %v", got, err)
	}

	// Tokens that are not the token: each is unauthenticated.
	last := token[len(token)-1]
	flipped := token[:len(token)-1] + string("AB"[boolInt(last == 'A')])
	for name, bad := range map[string]string{
		"empty":     "",
		"no prefix": strings.TrimPrefix(token, core.TokenPrefix),
		"short":     token[:len(token)-1],
		"flipped":   flipped,
		"other":     core.TokenPrefix + strings.Repeat("A", 43),
	} {
		if _, err := l.LookupToken(ctx, bad); !errors.Is(err, secret.ErrUnauthenticated) {
			t.Errorf("%s token: %v, want unauthenticated", name, err)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("%s token: the error quotes the token: %v", name, err)
		}
	}

	// A second token, then expiry of the first.
	token2, info2, err := l.CreateToken(ctx, core.TokenRequest{Identity: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := l.LookupToken(ctx, token); !errors.Is(err, secret.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := l.LookupToken(ctx, token2); err != nil {
		t.Fatalf("a token without TTL expired: %v", err)
	}

	// Revocation, idempotent; unknown and malformed accessors.
	for range 2 {
		if err := l.RevokeToken(ctx, info2.Accessor); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.LookupToken(ctx, token2); !errors.Is(err, secret.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	if err := l.RevokeToken(ctx, "0123456789abcdef"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("revoke unknown accessor: %v", err)
	}
	if err := l.RevokeToken(ctx, "../x"); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("revoke malformed accessor: %v", err)
	}

	list, err := l.ListTokens(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	for _, ti := range list {
		if ti.Accessor == info2.Accessor && (ti.RevokedAt.IsZero() || ti.RevokedBy != "alice") {
			t.Errorf("revoked token listed as %+v", ti)
		}
	}

	// Records survive a reopen: they are in the database.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(-time.Hour)
	l = open(t, opts)
	defer l.Close()
	if _, err := l.LookupToken(ctx, token); err != nil {
		t.Fatalf("lookup after reopen: %v", err)
	}

	// Neither the database nor the audit log holds a token; the log names
	// accessors.
	for _, f := range []string{core.DBFile, core.AuditFile} {
		b, err := os.ReadFile(filepath.Join(opts.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{token, token2} {
			if bytes.Contains(b, []byte(tok)) {
				t.Errorf("%s holds a token", f)
			}
		}
	}
	var creates, revokes int
	for _, e := range entries(t, opts) {
		switch e.Action {
		case core.ActionTokenCreate:
			creates++
			if e.Outcome != audit.OutcomeSuccess || len(e.Details["accessor"]) != 16 || e.Details["identity"] == "" || e.Decision == nil {
				t.Errorf("create entry: %+v", e)
			}
		case core.ActionTokenRevoke:
			revokes++
		}
	}
	if creates != 2 || revokes != 4 {
		t.Errorf("%d create and %d revoke entries, want 2 and 4", creates, revokes)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestTokenRequestValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := open(t, initStore(t, audit.SyncWrite))
	defer l.Close()
	many := map[string]string{}
	for i := range core.MaxTokenClaims + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	for name, req := range map[string]core.TokenRequest{
		"no identity":     {},
		"space":           {Identity: "a b"},
		"control":         {Identity: "a\nb"},
		"long identity":   {Identity: strings.Repeat("a", core.MaxTokenIdentityLen+1)},
		"negative TTL":    {Identity: "a", TTL: -time.Second},
		"too many claims": {Identity: "a", Claims: many},
		"empty claim":     {Identity: "a", Claims: map[string]string{"": "v"}},
		"control value":   {Identity: "a", Claims: map[string]string{"k": "\x00"}},
	} {
		if _, _, err := l.CreateToken(ctx, req); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTokenAdminIsAuthorized: creating, revoking and listing tokens are
// admin actions; a denied one is audited as denied and changes nothing.
func TestTokenAdminIsAuthorized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	admin := open(t, opts)
	_, info, err := admin.CreateToken(ctx, core.TokenRequest{Identity: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	// A token subject named like the creator is not the creator.
	as := core.WithSubject(ctx, policy.Subject{ID: "alice", Kind: policy.KindToken})
	if _, _, err := admin.CreateToken(as, core.TokenRequest{Identity: "x"}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("token subject creating a token: %v", err)
	}
	if err := admin.RevokeToken(as, info.Accessor); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("token subject revoking: %v", err)
	}
	if _, err := admin.ListTokens(as); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("token subject listing: %v", err)
	}
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}

	opts.Authorizer = denyAll{}
	l := open(t, opts)
	defer l.Close()
	if _, _, err := l.CreateToken(ctx, core.TokenRequest{Identity: "x"}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("create under deny-all: %v", err)
	}
	if err := l.RevokeToken(ctx, info.Accessor); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("revoke under deny-all: %v", err)
	}
	var denied int
	for _, e := range entries(t, opts) {
		if strings.HasPrefix(e.Action, "token.") && e.Outcome == audit.OutcomeDenied {
			denied++
		}
	}
	if denied != 5 {
		t.Errorf("%d denied token entries, want 5", denied)
	}
}

// TestTokenCreateFailsClosed: a token whose creation cannot be audited
// does not exist.
func TestTokenCreateFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := open(t, initStore(t, audit.SyncWrite))
	defer l.Close()
	restore := core.BreakAudit(l, errors.New("no space left on device"))
	token, _, err := l.CreateToken(ctx, core.TokenRequest{Identity: "ci"})
	restore()
	if !errors.Is(err, secret.ErrAudit) || token != "" {
		t.Fatalf("create with a broken audit log: %q, %v", token, err)
	}
	list, err := l.ListTokens(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("tokens after a failed create: %+v, %v", list, err)
	}
}

package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := initStore(t, audit.SyncWrite)
	opts.Now = clock.Now
	l := open(t, opts)

	token, info, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ci", Claims: map[string]string{"role": "deploy"}, TTL: time.Hour})
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
	token2, info2, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ops"})
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
	for name, req := range map[string]secret.TokenRequest{
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
	_, info, err := admin.CreateToken(ctx, secret.TokenRequest{Identity: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	// A token subject named like the creator is not the creator.
	as := core.WithSubject(ctx, policy.Subject{ID: "alice", Kind: policy.KindToken})
	if _, _, err := admin.CreateToken(as, secret.TokenRequest{Identity: "x"}); !errors.Is(err, secret.ErrPermissionDenied) {
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
	if _, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "x"}); !errors.Is(err, secret.ErrPermissionDenied) {
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
	token, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ci"})
	restore()
	if !errors.Is(err, secret.ErrAudit) || token != "" {
		t.Fatalf("create with a broken audit log: %q, %v", token, err)
	}
	list, err := l.ListTokens(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("tokens after a failed create: %+v, %v", list, err)
	}
}

// TestReapTokens: records of tokens expired or revoked longer ago than the
// retention are removed, in audited batches; live ones, and recently dead
// ones, stay.
func TestReapTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := initStore(t, audit.SyncWrite)
	opts.Now = clock.Now
	l := open(t, opts)
	defer l.Close()
	create := func(identity string, ttl time.Duration) (string, secret.TokenInfo) {
		t.Helper()
		tok, info, err := l.CreateToken(ctx, secret.TokenRequest{Identity: identity, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return tok, info
	}
	shortTok, short := create("short", time.Hour)
	_, forever := create("forever", 0)
	revokedTok, revoked := create("revoked", 0)
	_, long := create("long", 48*time.Hour)
	if err := l.RevokeToken(ctx, revoked.Accessor); err != nil {
		t.Fatal(err)
	}
	listed := func() []string {
		t.Helper()
		list, err := l.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ti := range list {
			ids = append(ids, ti.Identity)
		}
		return ids
	}
	reap := func(keep time.Duration, want int) {
		t.Helper()
		n, err := l.ReapTokens(ctx, keep)
		if err != nil || n != want {
			t.Fatalf("reap: %d, %v; want %d", n, err, want)
		}
	}

	// Expired and revoked, but within the retention: kept, and listed.
	clock.Advance(time.Hour + time.Minute)
	if _, err := l.LookupToken(ctx, shortTok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	reap(core.DefaultTokenRetention, 0)
	if got := listed(); len(got) != 4 {
		t.Fatalf("listed %v, want all four", got)
	}

	// A day later both are past the retention; the 48h token is not.
	clock.Advance(core.DefaultTokenRetention)
	reap(core.DefaultTokenRetention, 2)
	got := listed()
	if len(got) != 2 || !slices.Contains(got, "forever") || !slices.Contains(got, "long") {
		t.Fatalf("listed %v after reaping, want forever and long", got)
	}
	// The reaped token is unknown now, not "expired": its cached record
	// went with it.
	for _, tok := range []string{shortTok, revokedTok} {
		if _, err := l.LookupToken(ctx, tok); !errors.Is(err, secret.ErrUnauthenticated) || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("reaped token: %v, want unknown", err)
		}
	}
	reap(core.DefaultTokenRetention, 0) // nothing left to do, and no entry for it

	clock.Advance(48 * time.Hour)
	reap(0, 1)
	if got := listed(); len(got) != 1 || got[0] != "forever" {
		t.Fatalf("listed %v, want forever", got)
	}
	if _, err := l.ReapTokens(ctx, -time.Second); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("negative retention: %v", err)
	}

	var reaps []audit.Entry
	for _, e := range entries(t, opts) {
		if e.Action == core.ActionTokenReap && e.Outcome == audit.OutcomeSuccess {
			reaps = append(reaps, e)
		}
	}
	if len(reaps) != 2 {
		t.Fatalf("%d successful reap entries, want 2 (runs that removed nothing write none): %+v", len(reaps), reaps)
	}
	if d := reaps[0].Details; d["count"] != "2" || !strings.Contains(d["accessors"], short.Accessor) || !strings.Contains(d["accessors"], revoked.Accessor) ||
		strings.Contains(d["accessors"], forever.Accessor) || d["retention"] != "24h0m0s" || reaps[0].Decision == nil {
		t.Errorf("first reap entry: %+v", reaps[0])
	}
	if d := reaps[1].Details; d["count"] != "1" || d["accessors"] != long.Accessor {
		t.Errorf("second reap entry: %+v", reaps[1])
	}
}

// TestReapTokensIsAuthorized: only an admin reaps; a refused caller
// removes nothing.
func TestReapTokensIsAuthorized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := initStore(t, audit.SyncWrite)
	opts.Now = clock.Now
	l := open(t, opts)
	defer l.Close()
	if _, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ci", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	as := core.WithSubject(ctx, policy.Subject{ID: "alice", Kind: policy.KindToken})
	if n, err := l.ReapTokens(as, 0); !errors.Is(err, secret.ErrPermissionDenied) || n != 0 {
		t.Errorf("token subject reaping: %d, %v", n, err)
	}
	if list, err := l.ListTokens(ctx); err != nil || len(list) != 1 {
		t.Fatalf("tokens after a refused reap: %+v, %v", list, err)
	}
}

// TestTokenIndexMigration: a store from before token listings scanned the
// records (it kept a JSON index of every accessor) opens, lists the same
// tokens, and loses the index. A damaged index does not stop it opening.
func TestTokenIndexMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, index := range map[string]func(accs []string) []byte{
		"index": func(accs []string) []byte {
			b, _ := json.Marshal(accs)
			return b
		},
		"damaged index": func([]string) []byte { return []byte(`["0123`) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := initStore(t, audit.SyncWrite)
			l := open(t, opts)
			var toks []string
			for _, id := range []string{"a", "b", "c"} {
				tok, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: id, Claims: map[string]string{"role": id}, TTL: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok)
			}
			before, err := l.ListTokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.RevokeToken(ctx, before[1].Accessor); err != nil {
				t.Fatal(err)
			}
			if before, err = l.ListTokens(ctx); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			var accs []string
			for _, ti := range before {
				accs = append(accs, ti.Accessor)
			}
			if !slices.IsSorted(accs) {
				t.Errorf("listing not sorted by accessor: %v", accs)
			}
			// Write the index as older passman did, beside the records.
			dbPath := filepath.Join(opts.Dir, core.DBFile)
			db, err := boltdb.Open(ctx, dbPath, boltdb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(ctx, func(tx store.Tx) error { return store.PutMeta(tx, "token-index", index(accs)) }); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			l = open(t, opts)
			after, err := l.ListTokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("listing changed by the migration (-before +after):\n%s", diff)
			}
			live := 0
			for _, tok := range toks {
				if _, err := l.LookupToken(ctx, tok); err == nil {
					live++
				}
			}
			if live != 2 {
				t.Errorf("%d tokens authenticate after migration, want 2 (one is revoked)", live)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			db, err = boltdb.Open(ctx, dbPath, boltdb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if b, err := store.ReadMeta(ctx, db, "token-index"); err != nil || b != nil {
				t.Errorf("token index after migration: %q, %v; want it gone", b, err)
			}
		})
	}
}

package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/internal/githubfake"
	"github.com/passman-dev/passman/secret"
)

// connTestResolver resolves references from a map (for the github,
// webhook and exec tests).
type connTestResolver struct {
	mu   sync.Mutex
	refs map[string]string
}

func (r *connTestResolver) Resolve(_ context.Context, ref string) (secret.Value, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.refs[ref]
	if !ok {
		return secret.Value{}, fmt.Errorf("%w: reference %s", secret.ErrNotFound, ref)
	}
	return secret.NewValue([]byte(v)), nil
}

func (r *connTestResolver) set(ref, v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs[ref] = v
}

const githubTestToken = "ghp_TOKEN_canary_5d1f0c2a"

func githubTestSetup(t *testing.T) (*githubfake.Server, *connTestResolver) {
	t.Helper()
	fake := githubfake.New(githubTestToken)
	t.Cleanup(fake.Close)
	fake.AddRepo("acme", "app")
	fake.AddEnvironment("acme", "app", "prod eu")
	fake.AddOrg("acme-org")
	return fake, &connTestResolver{refs: map[string]string{"env:GH_TOKEN": githubTestToken}}
}

func githubTestConnector(t *testing.T, fake *githubfake.Server, r Resolver, cfg map[string]string) Connector {
	t.Helper()
	full := map[string]string{"name": "DB_PASSWORD", "token": "env:GH_TOKEN", "api_url": fake.URL}
	for k, v := range cfg {
		full[k] = v
	}
	c, err := GitHub(full, r)
	if err != nil {
		t.Fatalf("GitHub(%v): %v", full, err)
	}
	return c
}

func TestGitHubScopesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    map[string]string
		stored func(*githubfake.Server) (githubfake.Secret, error)
	}{
		{"repo", map[string]string{"owner": "acme", "repo": "app"}, func(f *githubfake.Server) (githubfake.Secret, error) {
			return f.RepoSecret("acme", "app", "DB_PASSWORD")
		}},
		{"environment", map[string]string{"owner": "acme", "repo": "app", "environment": "prod eu"}, func(f *githubfake.Server) (githubfake.Secret, error) {
			return f.EnvSecret("acme", "app", "prod eu", "DB_PASSWORD")
		}},
		{"org", map[string]string{"org": "acme-org"}, func(f *githubfake.Server) (githubfake.Secret, error) {
			return f.OrgSecret("acme-org", "DB_PASSWORD")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			fake, r := githubTestSetup(t)
			c := githubTestConnector(t, fake, r, tc.cfg)
			for v, value := range []string{"first-value-8c1e", "second-value-77a0"} {
				target := Target{Path: "app/db", Version: v + 1, Value: secret.NewValue([]byte(value))}
				if err := c.Set(ctx, target); err != nil {
					t.Fatalf("set v%d: %v", v+1, err)
				}
				st, err := tc.stored(fake)
				if err != nil {
					t.Fatal(err)
				}
				if string(st.Value) != value {
					t.Fatalf("v%d: GitHub holds %q, want %q", v+1, st.Value, value)
				}
				if err := c.Test(ctx, target); err != nil {
					t.Fatalf("test v%d: %v", v+1, err)
				}
				// Set is idempotent: the engine repeats it after a crash.
				if err := c.Set(ctx, target); err != nil {
					t.Fatalf("set v%d again: %v", v+1, err)
				}
			}
			if err := c.Revoke(ctx, Target{Path: "app/db", Version: 1, Value: secret.NewValue([]byte("first-value-8c1e"))}); err != nil {
				t.Fatalf("revoke: %v", err)
			}
		})
	}
}

func TestGitHubOrgVisibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, r := githubTestSetup(t)
	target := Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("v"))}

	// A new secret without configured visibility is private.
	if err := githubTestConnector(t, fake, r, map[string]string{"org": "acme-org", "name": "A"}).Set(ctx, target); err != nil {
		t.Fatal(err)
	}
	if st, _ := fake.OrgSecret("acme-org", "A"); st.Visibility != "private" {
		t.Errorf("new secret: visibility %q, want private", st.Visibility)
	}
	// Configured visibility is applied.
	if err := githubTestConnector(t, fake, r, map[string]string{"org": "acme-org", "name": "A", "visibility": "all"}).Set(ctx, target); err != nil {
		t.Fatal(err)
	}
	if st, _ := fake.OrgSecret("acme-org", "A"); st.Visibility != "all" {
		t.Errorf("configured: visibility %q, want all", st.Visibility)
	}
	// Unconfigured, a rotation keeps what the secret has.
	if err := githubTestConnector(t, fake, r, map[string]string{"org": "acme-org", "name": "A"}).Set(ctx, target); err != nil {
		t.Fatal(err)
	}
	if st, _ := fake.OrgSecret("acme-org", "A"); st.Visibility != "all" {
		t.Errorf("rotation changed visibility to %q", st.Visibility)
	}
}

func TestGitHubWrongToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, r := githubTestSetup(t)
	r.set("env:GH_TOKEN", "ghp_WRONG_canary_91b3")
	c := githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app"})
	target := Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("value-canary-3e9a"))}
	err := c.Set(ctx, target)
	if !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("set with a wrong token: %v, want permission denied", err)
	}
	if strings.Contains(err.Error(), "ghp_WRONG_canary_91b3") || strings.Contains(err.Error(), "value-canary-3e9a") {
		t.Fatalf("error leaks the token or value: %v", err)
	}
	// The token is resolved at each step: fixing it needs no new connector.
	r.set("env:GH_TOKEN", githubTestToken)
	if err := c.Set(ctx, target); err != nil {
		t.Fatalf("set after fixing the token: %v", err)
	}
}

func TestGitHubKeyRotationRefetchesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, r := githubTestSetup(t)
	c := githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app"})
	count := func(prefix string) int {
		n := 0
		for _, req := range fake.Requests() {
			if strings.HasPrefix(req, prefix) {
				n++
			}
		}
		return n
	}

	fake.RotateKeyAfterFetches(1)
	if err := c.Set(ctx, Target{Path: "p", Version: 1, Value: secret.NewValue([]byte("after-rotation"))}); err != nil {
		t.Fatalf("set across a key rotation: %v", err)
	}
	if st, _ := fake.RepoSecret("acme", "app", "DB_PASSWORD"); string(st.Value) != "after-rotation" {
		t.Fatalf("stored %q", st.Value)
	}
	if k, p := count("GET /repos/acme/app/actions/secrets/public-key"), count("PUT "); k != 2 || p != 2 {
		t.Fatalf("%d key fetches and %d puts, want 2 and 2: %q", k, p, fake.Requests())
	}

	// A key that keeps rotating fails after one re-fetch instead of looping.
	fake.RotateKeyAfterFetches(10)
	err := c.Set(ctx, Target{Path: "p", Version: 2, Value: secret.NewValue([]byte("never-stored"))})
	if err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("set with a key rotating every fetch: %v", err)
	}
	if k := count("GET /repos/acme/app/actions/secrets/public-key"); k != 4 {
		t.Fatalf("%d key fetches in all, want 4", k)
	}
}

func TestGitHubTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, r := githubTestSetup(t)
	cfg := map[string]string{"owner": "acme", "repo": "app"}
	target := Target{Path: "p", Version: 3, Value: secret.NewValue([]byte("v"))}

	// Nothing stored: the test fails as not found.
	if err := githubTestConnector(t, fake, r, cfg).Test(ctx, target); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("test of a missing secret: %v", err)
	}

	// GitHub stamps the update an hour before the Set began: lost.
	fake.SetNow(func() time.Time { return time.Now().Add(-time.Hour) })
	c := githubTestConnector(t, fake, r, cfg)
	if err := c.Set(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := c.Test(ctx, target); !errors.Is(err, secret.ErrPrecondition) {
		t.Fatalf("test of a stale secret: %v", err)
	}
	// A connector that did not run the Set (a resumed rotation) can only
	// check that the secret exists.
	if err := githubTestConnector(t, fake, r, cfg).Test(ctx, target); err != nil {
		t.Fatalf("test without a Set: %v", err)
	}
}

func TestGitHubConfig(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"name": "DB_PASSWORD", "token": "env:GH_TOKEN", "owner": "acme", "repo": "app"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		key  string // the key the error must name; "" means valid
	}{
		{"repo", ok, ""},
		{"environment", with("environment", "prod eu"), ""},
		{"org", with("owner", "", "repo", "", "org", "acme", "visibility", "selected"), ""},
		{"org with matching owner", with("repo", "", "org", "ACME"), ""},
		{"secret ref token", with("token", "secret:ci/github-token"), ""},
		{"enterprise", with("api_url", "https://github.example.com/api/v3/"), ""},
		{"loopback http", with("api_url", "http://127.0.0.1:8080"), ""},
		{"no name", with("name", ""), "name"},
		{"lower-case name", with("name", "db_password"), "name"},
		{"GITHUB_ name", with("name", "GITHUB_TOKEN"), "name"},
		{"digit name", with("name", "1PASSWORD"), "name"},
		{"dash name", with("name", "DB-PASSWORD"), "name"},
		{"no token", with("token", ""), "token"},
		{"literal token", with("token", "ghp_abcdef"), "token"},
		{"bad env ref", with("token", "env:1X"), "token"},
		{"bad secret ref", with("token", "secret:../x"), "token"},
		{"unknown key", with("colour", "blue"), "colour"},
		{"no scope", with("repo", ""), "repo"},
		{"environment without repo", with("repo", "", "environment", "prod"), "environment"},
		{"repo without owner", with("owner", ""), "owner"},
		{"repo and org", with("org", "acme"), "org"},
		{"owner with slash", with("owner", "acme/evil"), "owner"},
		{"repo with slash", with("repo", "app/../x"), "repo"},
		{"repo dot dot", with("repo", ".."), "repo"},
		{"environment control char", with("environment", "a\nb"), "environment"},
		{"visibility on repo", with("visibility", "all"), "visibility"},
		{"bad visibility", with("owner", "", "repo", "", "org", "acme", "visibility", "public"), "visibility"},
		{"owner differs from org", with("repo", "", "org", "other"), "owner"},
		{"plain http", with("api_url", "http://github.example.com"), "api_url"},
		{"api_url credentials", with("api_url", "https://u:p@github.example.com"), "api_url"},
		{"api_url scheme", with("api_url", "ftp://github.example.com"), "api_url"},
		{"api_url relative", with("api_url", "/api/v3"), "api_url"},
	} {
		_, err := GitHub(tc.cfg, &connTestResolver{})
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.key != "" && (!errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), `"`+tc.key+`"`)):
			t.Errorf("%s: error %v, want invalid argument naming %q", tc.name, err, tc.key)
		}
	}
	if _, err := GitHub(ok, nil); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("nil resolver: %v", err)
	}
}

// TestGitHubErrorsCarryNoSecrets collects the connector's failures and
// checks none holds the value or the token.
func TestGitHubErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake, r := githubTestSetup(t)
	const value = "VALUE_canary_a41c9e"
	target := Target{Path: "p", Version: 1, Value: secret.NewValue([]byte(value)), Current: secret.NewValue([]byte("CURRENT_canary_0b2d"))}
	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Errorf("expected an error (case %d)", len(errs))
		}
		errs = append(errs, err)
	}

	collect(githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "missing"}).Set(ctx, target))
	collect(githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app", "environment": "missing"}).Set(ctx, target))
	collect(githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app"}).Test(ctx, target))
	fake.RotateKeyAfterFetches(2)
	collect(githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app"}).Set(ctx, target))
	collect(githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app"}).Set(ctx, Target{Path: "p", Version: 1, Value: secret.NewValue([]byte(strings.Repeat(value, 5000)))}))
	collect(githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app", "token": "env:UNSET"}).Set(ctx, target))
	r.set("env:GH_TOKEN", "ghp_bad token with spaces")
	collect(githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app"}).Set(ctx, target))
	r.set("env:GH_TOKEN", "ghp_REVOKED_canary_77f1")
	collect(githubTestConnector(t, fake, r, map[string]string{"org": "acme-org"}).Set(ctx, target))

	// Closed server: a transport error.
	c := githubTestConnector(t, fake, r, map[string]string{"owner": "acme", "repo": "app"})
	fake.Close()
	collect(c.Set(ctx, target))

	for i, err := range errs {
		if err == nil {
			continue
		}
		msg := err.Error()
		t.Logf("case %d: %s", i, msg)
		for _, canary := range []string{value, "CURRENT_canary", githubTestToken, "ghp_REVOKED_canary_77f1", "bad token with spaces"} {
			if strings.Contains(msg, canary) {
				t.Errorf("case %d leaks %q: %s", i, canary, msg)
			}
		}
	}
	if !errors.Is(errs[4], secret.ErrTooLarge) {
		t.Errorf("oversized value: %v", errs[4])
	}
}

func TestRedactError(t *testing.T) {
	t.Parallel()
	base := fmt.Errorf("%w: server said hunter2hunter2 and hunter2", secret.ErrNotFound)
	err := redactError(base, []byte("hunter2"), []byte("hunter2hunter2"))
	if got := err.Error(); got != "not found: server said [redacted] and [redacted]" {
		t.Errorf("redacted: %q", got)
	}
	if !errors.Is(err, secret.ErrNotFound) {
		t.Error("redaction lost the sentinel")
	}
	if errors.Unwrap(err) != nil {
		t.Error("a redacted error must not unwrap to the original text")
	}
	if redactError(base, []byte("absent")) != base {
		t.Error("an error without secrets must be returned as is")
	}
}

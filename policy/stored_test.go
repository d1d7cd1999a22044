package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

func storedEngine(t *testing.T) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// prepareAndTest compiles and tests mods on e as a store change would.
func prepareAndTest(t *testing.T, e *policy.Engine, gen uint64, mods ...secret.PolicyModule) (*policy.Candidate, error) {
	t.Helper()
	c, err := e.Prepare(context.Background(), gen, mods)
	if err != nil {
		return nil, err
	}
	return c, c.Test(context.Background())
}

func mod(name, src string) secret.PolicyModule { return secret.PolicyModule{Name: name, Source: src} }

const tokenReadRule = `package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.claims.role == "reader"
	input.action == "read"
}
`

func authzIn(kind, id, action string) policy.AuthzInput {
	return policy.AuthzInput{
		Subject: policy.Subject{ID: id, Kind: kind, Claims: map[string]any{"role": "reader"}},
		Action:  action, Path: "app/x",
		Store: policy.StoreInfo{CreatedBy: "alice"},
		Time:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// TestStoredModules: a stored module adds rules to the bundled package and
// decides once installed; its test runs with the bundled ones; the
// revision changes with it; an older generation does not replace a newer
// one.
func TestStoredModules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := storedEngine(t)
	base := e.Revision()
	if d, _ := e.Authorize(ctx, authzIn("token", "ci", "read")); d.Allow {
		t.Fatal("the bundled base allows a token")
	}
	test := mod("reader_test", `package passman.reader_test

import data.passman.authz

test_reader_reads if {
	authz.allow with input as {"subject": {"id": "ci", "kind": "token", "claims": {"role": "reader"}}, "action": "read", "path": "app/x", "store": {"created_by": "alice"}, "time": "2026-01-02T03:04:05Z"}
}
`)
	c, err := prepareAndTest(t, e, 3, mod("reader", tokenReadRule), test)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Install(c) || e.Generation() != 3 {
		t.Fatalf("install: generation %d", e.Generation())
	}
	if d, err := e.Authorize(ctx, authzIn("token", "ci", "read")); err != nil || !d.Allow {
		t.Errorf("stored rule: %+v %v", d, err)
	}
	if d, _ := e.Authorize(ctx, authzIn("user", "alice", "admin")); !d.Allow {
		t.Error("the bundled creator rule is gone")
	}
	if e.Revision() == base {
		t.Error("the revision does not name the stored modules")
	}
	old, err := e.Prepare(ctx, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Install(old) || e.Generation() != 3 {
		t.Error("an older generation replaced a newer one")
	}
	// The test module is tested, never evaluated: without the rule it
	// tests, it fails, naming itself.
	_, err = prepareAndTest(t, e, 4, test)
	if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "store:reader_test.rego:5: data.passman.reader_test.test_reader_reads: failed") {
		t.Errorf("failing stored test: %v", err)
	}
}

// TestStoredModulesRefused: what a store change must not let in.
func TestStoredModulesRefused(t *testing.T) {
	t.Parallel()
	e := storedEngine(t)
	for _, c := range []struct {
		name string
		mods []secret.PolicyModule
		want string
	}{
		{"parse error", []secret.PolicyModule{mod("bad", "package passman.authz\n\nallow if {\n")}, "store:bad.rego:4:0: rego_parse_error"},
		{"v0 syntax", []secret.PolicyModule{mod("old", "package passman.authz\n\nallow { true }\n")}, "store:old.rego:3:"},
		{"strict: unused variable", []secret.PolicyModule{mod("unused", "package passman.authz\n\nallow if {\n\tx := 1\n\tinput.action == \"read\"\n}\n")}, "store:unused.rego:4:"},
		{"second default", []secret.PolicyModule{mod("dflt", "package passman.authz\n\ndefault allow := true\n")}, "multiple default rules data.passman.authz.allow found at bundled/authz.rego:8, store:dflt.rego:3"},
		{"network built-in", []secret.PolicyModule{mod("net", "package passman.authz\n\nallow if http.send({\"method\": \"get\", \"url\": \"https://x\"}).status_code == 200\n")}, "network or runtime"},
		{"allow everything", []secret.PolicyModule{mod("open", "package passman.authz\n\nallow := true\n")}, "bundled/authz_test.rego:20: data.passman.authz_test.test_other_user_denied: failed"},
		{"breaks a bundled test", []secret.PolicyModule{mod("all", "package passman.authz\n\nallow if input.action != \"\"\n")}, "bundled/authz_test.rego"},
		{"failing stored test", []secret.PolicyModule{mod("x_test", "package x_test\n\ntest_no if false\n")}, "store:x_test.rego:3: data.x_test.test_no: failed"},
		{"test module not strict", []secret.PolicyModule{mod("y_test", "package y_test\n\nimport data.passman.authz\n\ntest_y if true\n")}, "store:y_test.rego:3:"},
	} {
		_, err := prepareAndTest(t, e, 1, c.mods...)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
	if e.Generation() != 0 {
		t.Error("a refused set was installed")
	}
}

// TestInstallBroken: a store whose modules do not compile leaves the
// bundled base deciding, creator only, saying why.
func TestInstallBroken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := storedEngine(t)
	if err := e.InstallBroken(ctx, 7, errors.New("store:x.rego:1:1: bad")); err != nil {
		t.Fatal(err)
	}
	d, _ := e.Authorize(ctx, authzIn("token", "ci", "read"))
	if d.Allow || !strings.Contains(strings.Join(d.Reasons, ";"), "store:x.rego:1:1") {
		t.Errorf("broken set: %+v", d)
	}
	if d, _ := e.Authorize(ctx, authzIn("user", "alice", "admin")); !d.Allow {
		t.Error("the creator is locked out of a broken set")
	}
	if e.Broken() == "" || e.Generation() != 7 {
		t.Error("Broken/Generation")
	}
	c, err := prepareAndTest(t, e, 8, mod("reader", tokenReadRule))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Install(c) || e.Broken() != "" {
		t.Error("a fixed set did not replace the broken one")
	}
}

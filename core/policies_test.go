package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// bobReads lets OS user bob read under team/: a stored module's rule.
const bobReads = `package passman.authz

# CANARY-policy-source-3b7d
allow if {
	input.subject.kind == "user"
	input.subject.id == "bob"
	input.action == "read"
	startswith(input.path, "team/")
}
`

const bobReadsTest = `package passman.bob_test

import data.passman.authz

test_bob_reads_team if {
	authz.allow with input as {"subject": {"id": "bob", "kind": "user"}, "action": "read", "path": "team/x", "store": {"created_by": "alice"}, "time": "2026-01-02T03:04:05Z"}
}
`

func bobCtx() context.Context {
	return core.WithSubject(context.Background(), policy.Subject{ID: "bob", Kind: policy.KindUser})
}

// TestStoredPolicies: an administrator's module decides once put, survives
// reopening, and stops when deleted; get, list and the audit log say what
// changed (name, version, SHA-256), never the source.
func TestStoredPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	if _, err := l.Put(ctx, "team/x", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("bob before the module: %v", err)
	}
	m, err := l.PutPolicy(ctx, "bob", bobReads)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "bob" || m.Version != 1 || len(m.SHA256) != 64 || m.Source != bobReads || m.CreatedBy != "alice" || m.UpdatedAt.IsZero() {
		t.Errorf("put: %+v", m)
	}
	if _, err := l.PutPolicy(ctx, "bob_test", bobReadsTest); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); err != nil {
		t.Fatalf("bob with the module: %v", err)
	}
	// The same source again is no new version.
	if m2, err := l.PutPolicy(ctx, "bob", bobReads); err != nil || m2.Version != 1 {
		t.Errorf("put unchanged: %+v %v", m2, err)
	}
	m3, err := l.PutPolicy(ctx, "bob", bobReads+"\n# v2\n")
	if err != nil || m3.Version != 2 || m3.SHA256 == m.SHA256 || !m3.CreatedAt.Equal(m.CreatedAt) {
		t.Errorf("put v2: %+v %v", m3, err)
	}
	list, err := l.ListPolicies(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "bob" || list[1].Name != "bob_test" || list[0].Source != "" || list[0].Version != 2 {
		t.Errorf("list: %+v %v", list, err)
	}
	if g, err := l.GetPolicy(ctx, "bob"); err != nil || g.Source != bobReads+"\n# v2\n" {
		t.Errorf("get: %+v %v", g, err)
	}
	if _, err := l.GetPolicy(ctx, "nobody"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = open(t, opts)
	defer l.Close()
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); err != nil {
		t.Fatalf("bob after reopening: %v", err)
	}
	// The rule's test relies on it: the rule cannot go first.
	if err := l.DeletePolicy(ctx, "bob"); !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), "store:bob_test.rego:5: data.passman.bob_test.test_bob_reads_team: failed") {
		t.Errorf("delete a tested rule: %v", err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); err != nil {
		t.Fatalf("bob after a refused delete: %v", err)
	}
	for _, n := range []string{"bob_test", "bob"} {
		if err := l.DeletePolicy(ctx, n); err != nil {
			t.Fatalf("delete %s: %v", n, err)
		}
	}
	if err := l.DeletePolicy(ctx, "bob"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("delete again: %v", err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("bob after the delete: %v", err)
	}

	var got []string
	for _, e := range entries(t, opts) {
		if strings.HasPrefix(e.Action, "policy.") {
			got = append(got, fmt.Sprintf("%s %s %s v%s %s sha=%v", e.Action, e.Outcome, e.Details["policy"], e.Details["version"], e.Details["unchanged"], len(e.Details["sha256"]) == 64))
		}
	}
	want := []string{
		"policy.put success bob v1  sha=true",
		"policy.put success bob_test v1  sha=true",
		"policy.put success bob v1 true sha=true",
		"policy.put success bob v2  sha=true",
		"policy.list success  v  sha=false",
		"policy.get success bob v  sha=false",
		"policy.get failure nobody v  sha=false",
		"policy.delete failure bob v2  sha=true",
		"policy.delete success bob_test v1  sha=true",
		"policy.delete success bob v2  sha=true",
		"policy.delete failure bob v  sha=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	raw, err := os.ReadFile(filepath.Join(opts.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("CANARY-policy-source")) {
		t.Error("the audit log holds a policy's source")
	}
}

// TestStoredPoliciesHostile: a non-administrator is refused before
// anything is read or compiled; bad names and sizes are refused; a module
// that does not compile or breaks a test is refused with where and why,
// and the set in force stays.
func TestStoredPoliciesHostile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	defer l.Close()
	if _, err := l.PutPolicy(ctx, "bob", bobReads); err != nil {
		t.Fatal(err)
	}
	gen := func() uint64 {
		g, err := core.PolicyGeneration(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	before := gen()

	// bob may not grant himself more, not even with a source the size
	// check would refuse: authorization comes first.
	open := "package passman.authz\n\nallow if input.subject.id == \"bob\"\n"
	seen := len(entries(t, opts))
	for name, call := range map[string]func() error{
		"put": func() error { _, err := l.PutPolicy(bobCtx(), "mine", open); return err },
		"put huge": func() error {
			_, err := l.PutPolicy(bobCtx(), "mine", strings.Repeat("#", secret.MaxPolicySource+1))
			return err
		},
		"replace":   func() error { _, err := l.PutPolicy(bobCtx(), "bob", open); return err },
		"delete":    func() error { return l.DeletePolicy(bobCtx(), "bob") },
		"get":       func() error { _, err := l.GetPolicy(bobCtx(), "bob"); return err },
		"list":      func() error { _, err := l.ListPolicies(bobCtx()); return err },
		"get other": func() error { _, err := l.GetPolicy(bobCtx(), "nothing"); return err },
	} {
		if err := call(); !errors.Is(err, secret.ErrPermissionDenied) {
			t.Errorf("bob %s: %v", name, err)
		}
	}
	for _, e := range entries(t, opts)[seen:] {
		if e.Outcome != audit.OutcomeDenied {
			t.Errorf("bob's %s: outcome %s", e.Action, e.Outcome)
		}
	}

	for _, name := range []string{"", "../x", "a/b", "x.rego", "store:x", "Bob", "1x", "_x", "x y", strings.Repeat("a", 65), "a\x00"} {
		if _, err := l.PutPolicy(ctx, name, open); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("put %q: %v", name, err)
		}
		if err := l.DeletePolicy(ctx, name); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("delete %q: %v", name, err)
		}
	}
	if _, err := l.PutPolicy(ctx, strings.Repeat("a", 64), "package passman.authz\n"); err != nil {
		t.Errorf("a 64-character name: %v", err)
	}
	if _, err := l.PutPolicy(ctx, "huge", strings.Repeat("#", secret.MaxPolicySource+1)); !errors.Is(err, secret.ErrTooLarge) {
		t.Errorf("oversized source: %v", err)
	}
	for _, c := range []struct{ name, src, want string }{
		{"syntax", "package passman.authz\n\nallow if {\n\tinput.action ==\n}\n", "store:syntax.rego:5:"},
		{"strict", "package passman.authz\n\nimport data.passman.lint\n\nallow if input.action == \"read\"\n", "store:strict.rego:3:"},
		{"conflict", "package passman.authz\n\ndefault allow := true\n", "store:conflict.rego:3"},
		{"everyone", "package passman.authz\n\nallow if input.subject.id != \"\"\n", "bundled/authz_test.rego:20: data.passman.authz_test.test_other_user_denied: failed"},
		{"replace bob", "package passman.authz\n\nallow if { some x; x == 1 }\n", "store:replace bob.rego"},
	} {
		name := c.name
		if name == "replace bob" {
			name, c.want = "bob", "store:bob.rego:3:"
		}
		_, err := l.PutPolicy(ctx, name, c.src)
		if !errors.Is(err, policy.ErrInvalidPolicy) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
	if g := gen(); g != before+1 { // the 64-character name only
		t.Errorf("generation %d, want %d", g, before+1)
	}
	if _, err := l.Put(ctx, "team/x", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); err != nil {
		t.Errorf("the set in force changed: %v", err)
	}
	if _, err := l.Get(bobCtx(), "other/x", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("bob outside team/: %v", err)
	}
}

// TestStoredPoliciesConcurrent: concurrent puts, of different modules and
// of one, all land, each version once.
func TestStoredPoliciesConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	defer l.Close()
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	versions := make(chan int, n)
	for i := range n {
		wg.Go(func() {
			_, err := l.PutPolicy(ctx, fmt.Sprintf("m%d", i), fmt.Sprintf("package passman.authz\n\nreasons contains \"m%d\" if input.action == \"nothing-%d\"\n", i, i))
			errs <- err
		})
		wg.Go(func() {
			m, err := l.PutPolicy(ctx, "shared", fmt.Sprintf("package passman.authz\n\n# writer %d\n", i))
			errs <- err
			versions <- m.Version
		})
	}
	wg.Wait()
	close(errs)
	close(versions)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	seen := map[int]bool{}
	for v := range versions {
		seen[v] = true
	}
	if len(seen) != n {
		t.Errorf("shared module versions %v, want 1..%d once each", seen, n)
	}
	list, err := l.ListPolicies(ctx)
	if err != nil || len(list) != n+1 {
		t.Errorf("list: %d modules, %v", len(list), err)
	}
	if g, _ := core.PolicyGeneration(ctx, l); g != 2*n {
		t.Errorf("generation %d, want %d", g, 2*n)
	}
}

// TestStoredPoliciesReloadThroughStore: a change another process made to
// the store (another server sharing it) reaches this one's decisions at
// its next check of the generation; a set that does not compile here
// leaves the set in force, and a store opened with one decides with the
// bundled base alone, creator only.
func TestStoredPoliciesReloadThroughStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.PolicyCheckInterval = -1
	l := open(t, opts)
	if _, err := l.Put(ctx, "team/x", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := core.WriteStoredPolicy(ctx, l, secret.PolicyModule{Name: "bob", Source: bobReads, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); err != nil {
		t.Fatalf("bob after another process's put: %v", err)
	}
	if err := core.WriteStoredPolicy(ctx, l, secret.PolicyModule{Name: "broken", Source: "package passman.authz\n\nallow if {\n", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); err != nil {
		t.Fatalf("bob after a set that does not compile here: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, opts)
	defer l.Close()
	_, err := l.Get(bobCtx(), "team/x", secret.Selector{})
	if !errors.Is(err, secret.ErrPermissionDenied) || !strings.Contains(err.Error(), "store:broken.rego:4:") {
		t.Errorf("bob with a broken stored set: %v", err)
	}
	// The creator repairs it.
	if err := l.DeletePolicy(ctx, "broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(bobCtx(), "team/x", secret.Selector{}); err != nil {
		t.Errorf("bob after the repair: %v", err)
	}
}

package core_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// TestCompareValue: equal and unequal values (same length, prefix, longer),
// a denied caller and a missing path answered alike, the current version
// deleted comparing false (a current version cannot be destroyed), bad values refused before the
// policy is asked, and the audit log holding the outcome, never the value.
func TestCompareValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	opts.PolicyDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(opts.PolicyDir, "team.rego"), []byte(teamPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	l := open(t, opts)
	defer l.Close()
	const canary = "CANARY-compare-7f3e9a1c"
	for _, p := range []string{"prod/app/token", "prod/db/password", "prod/app/gone"} {
		if _, err := l.Put(ctx, p, secret.NewValue([]byte(canary)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Delete(ctx, "prod/app/gone", nil); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, path, value string
		want              bool
	}{
		{"equal", "prod/app/token", canary, true},
		{"same length", "prod/app/token", strings.Replace(canary, "7", "8", 1), false},
		{"prefix", "prod/app/token", canary[:len(canary)-1], false},
		{"longer", "prod/app/token", canary + "x", false},
		{"deleted current", "prod/app/gone", canary, false},
	} {
		got, err := l.CompareValue(ctx, c.path, []byte(c.value))
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}

	bob := core.WithSubject(ctx, policy.Subject{ID: "bob", Kind: policy.KindUser})
	if ok, err := l.CompareValue(bob, "prod/app/token", []byte(canary)); err != nil || !ok {
		t.Errorf("bob, who may read prod/app/token: %v, %v", ok, err)
	}
	_, denied := l.CompareValue(bob, "prod/db/password", []byte(canary))
	_, missing := l.CompareValue(bob, "prod/db/nothing", []byte(canary))
	_, missingAdmin := l.CompareValue(ctx, "prod/db/nothing", []byte(canary))
	for name, err := range map[string]error{"denied": denied, "missing": missing, "missing (admin)": missingAdmin} {
		if !errors.Is(err, secret.ErrNotFound) || errors.Is(err, secret.ErrPermissionDenied) || err.Error() != denied.Error() {
			t.Errorf("%s: %v; want the one not-found answer", name, err)
		}
	}

	for _, c := range []struct {
		name, path string
		value      []byte
		class      string
	}{
		{"empty", "prod/app/token", nil, "invalid_argument"},
		{"oversized", "prod/app/token", bytes.Repeat([]byte("x"), secret.MaxValueSize+1), "too_large"},
		{"bad path", "prod/../db", []byte(canary), "invalid_path"},
	} {
		// bob is refused prod/db/*: a bad request is answered before the
		// policy, for bob as for anyone.
		if _, err := l.CompareValue(bob, c.path, c.value); secret.Class(err) != c.class {
			t.Errorf("%s: %v, want class %s", c.name, err, c.class)
		}
	}

	var compares, outcomes []string
	for _, e := range entries(t, opts) {
		if e.Action != core.ActionCompare {
			continue
		}
		compares = append(compares, e.Path+" "+e.Details["equal"])
		outcomes = append(outcomes, string(e.Outcome))
	}
	wantCompares := []string{
		"prod/app/token true", "prod/app/token false", "prod/app/token false", "prod/app/token false",
		"prod/app/gone false",
		"prod/app/token true", "prod/db/password ", "prod/db/nothing ", "prod/db/nothing ",
		"prod/app/token ", "prod/app/token ", " ",
	}
	wantOutcomes := []string{"success", "success", "success", "success", "success", "success", "denied", "denied", "failure", "failure", "failure", "failure"}
	if strings.Join(compares, "|") != strings.Join(wantCompares, "|") || strings.Join(outcomes, "|") != strings.Join(wantOutcomes, "|") {
		t.Errorf("audit entries:\n%q\n%q\nwant\n%q\n%q", compares, outcomes, wantCompares, wantOutcomes)
	}
	raw, err := os.ReadFile(filepath.Join(opts.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("CANARY")) || bytes.Contains(raw, []byte("compare-7f3e")) {
		t.Error("the audit log holds a compared value")
	}
}

// TestCompareValueFailsClosed: a compare whose audit entry cannot be
// written answers nothing.
func TestCompareValueFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	defer l.Close()
	if _, err := l.Put(ctx, "app/x", secret.NewValue([]byte("value-1")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	restore := core.BreakAudit(l, errors.New("disk full"))
	defer restore()
	if ok, err := l.CompareValue(ctx, "app/x", []byte("value-1")); ok || !errors.Is(err, secret.ErrAudit) {
		t.Fatalf("compare with a broken audit log: %v, %v", ok, err)
	}
}

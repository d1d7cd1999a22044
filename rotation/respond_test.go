package rotation_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// managedFinding is a finding of version v of path at file:line.
func managedFinding(path string, v int, file string, line int, commit string) scanner.Finding {
	return scanner.Finding{RuleID: scanner.ManagedRuleID, File: file, StartLine: line, Commit: commit, Author: "dev",
		Date: "2026-01-02T03:04:05Z", Secret: "REDACTED", Managed: &secret.FingerprintMatch{Path: path, Version: v}}
}

// TestLeakFindings: one leak per leaked version, located at its first
// finding, in order; findings of other rules are no leaks.
func TestLeakFindings(t *testing.T) {
	findings := []scanner.Finding{
		{RuleID: "generic-api-key", File: "a.go", StartLine: 1},
		managedFinding("app/db", 1, "app.env", 3, "0123456789abcdef0123"),
		managedFinding("app/api", 2, "x.env", 1, ""),
		managedFinding("app/db", 1, "other.env", 9, "fedcba"),
		managedFinding("app/db", 2, "new.env", 4, ""),
	}
	got := rotation.LeakFindings(findings)
	want := []rotation.LeakFinding{
		{Path: "app/db", Version: 1, Rule: scanner.ManagedRuleID, File: "app.env", Line: 3, Commit: "0123456789abcdef0123", Author: "dev", Date: "2026-01-02T03:04:05Z"},
		{Path: "app/api", Version: 2, Rule: scanner.ManagedRuleID, File: "x.env", Line: 1, Author: "dev", Date: "2026-01-02T03:04:05Z"},
		{Path: "app/db", Version: 2, Rule: scanner.ManagedRuleID, File: "new.env", Line: 4, Author: "dev", Date: "2026-01-02T03:04:05Z"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LeakFindings (-want +got):\n%s", diff)
	}
	if got := rotation.LeakFindings(findings[:1]); got != nil {
		t.Errorf("no managed findings: %+v", got)
	}
	for _, l := range got {
		if err := l.Validate(); err != nil {
			t.Errorf("a scanner's leak does not validate: %v", err)
		}
	}
}

// TestAnnotateFindings: every managed finding gets the result of its
// version, whichever finding located the leak; others are left alone.
func TestAnnotateFindings(t *testing.T) {
	findings := []scanner.Finding{
		managedFinding("app/db", 1, "app.env", 3, ""),
		{RuleID: "generic-api-key", File: "a.go", StartLine: 1},
		managedFinding("app/db", 2, "b.env", 1, ""),
		managedFinding("app/db", 1, "c.env", 7, ""),
		managedFinding("app/other", 1, "d.env", 2, ""),
	}
	rotation.AnnotateFindings(findings, []rotation.LeakResult{
		{Path: "app/db", Version: 1, Done: []string{"rotated to v3", "revoked v1"}},
		{Path: "app/db", Version: 2, Done: []string{"notify: v2 leaked"}},
		{Path: "app/gone", Version: 1, Done: []string{"unrelated"}},
	})
	want := [][]string{{"rotated to v3", "revoked v1"}, nil, {"notify: v2 leaked"}, {"rotated to v3", "revoked v1"}, nil}
	for i, f := range findings {
		if !slices.Equal(f.Response, want[i]) {
			t.Errorf("finding %d (%s:%d): Response %q, want %q", i, f.File, f.StartLine, f.Response, want[i])
		}
	}
}

// TestRespondToLeaks: each version is responded to once, failures do not
// stop the others, each result says what was done or why not, and the
// first error is returned; the policy sees the leak's location.
func TestRespondToLeaks(t *testing.T) {
	l := openStore(t, nil)
	tgt := &target{accepts: "leaked-value-1"}
	e := engine(l, tgt, nil)
	seed(t, l, "app/db", "leaked-value-1", "fake", time.Hour)
	pe, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var asked []map[string]any
	decide := func(ctx context.Context, in policy.RespondInput) (policy.Response, error) {
		asked = append(asked, in.Finding)
		return pe.Respond(ctx, in)
	}
	leaks := []rotation.LeakFinding{
		{Path: "app/db", Version: 1, Rule: scanner.ManagedRuleID, File: "app.env", Line: 3, Commit: "0123456789abcdef0123"},
		{Path: "app/missing", Version: 1, Rule: scanner.ManagedRuleID, File: "x.env", Line: 1},
		{Path: "app/db", Version: 1, Rule: scanner.ManagedRuleID, File: "again.env", Line: 5},
		{Path: "app/db", Version: 0, File: "bad.env"},
	}
	results, err := e.RespondToLeaks(context.Background(), leaks, decide)
	if !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("first error: %v, want not found", err)
	}
	if len(results) != len(leaks) {
		t.Fatalf("%d results for %d leaks", len(results), len(leaks))
	}
	if r := results[0]; r.Rotation == nil || r.Rotation.To != 2 || !r.Revoked || r.Error != "" || r.Path != "app/db" || r.Version != 1 {
		t.Errorf("result 0: %+v", r)
	}
	if r := results[1]; r.Path != "app/missing" || !strings.Contains(r.Error, "not found") || r.Done != nil {
		t.Errorf("result 1: %+v", r)
	}
	// A version listed again is not responded to again: same result.
	if diff := cmp.Diff(results[0], results[2]); diff != "" {
		t.Errorf("result 2 differs from result 0:\n%s", diff)
	}
	if r := results[3]; !strings.Contains(r.Error, "version must be 1 or more") {
		t.Errorf("result 3: %+v", r)
	}
	if len(tgt.revoked) != 1 {
		t.Errorf("%d revocations, want 1", len(tgt.revoked))
	}
	if len(asked) != 1 || asked[0]["file"] != "app.env" || asked[0]["line"] != 3 || asked[0]["commit"] != "0123456789abcdef0123" || asked[0]["rule"] != scanner.ManagedRuleID {
		t.Errorf("the policy was asked %+v", asked)
	}
	s, err := l.Describe(context.Background(), "app/db")
	if err != nil || s.Metadata.RotationStatus == nil || !strings.HasPrefix(s.Metadata.RotationStatus.Trigger, "leak: app.env:3 in commit 0123456789ab; policy: ") {
		t.Errorf("rotation status: %+v, %v", s.Metadata.RotationStatus, err)
	}
}

// TestLeakFindingValidate: a leak's path, version and metadata are checked
// without quoting them.
func TestLeakFindingValidate(t *testing.T) {
	ok := rotation.LeakFinding{Path: "app/db", Version: 1, Rule: "passman-managed", File: "dir/app.env", Line: 2,
		Commit: strings.Repeat("ab", 32), Author: "Dev Eloper", Date: "2026-01-02T03:04:05Z"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid leak: %v", err)
	}
	const canary = "canary-77aa"
	for name, mod := range map[string]func(*rotation.LeakFinding){
		"traversing path": func(l *rotation.LeakFinding) { l.Path = "app/../" + canary },
		"empty path":      func(l *rotation.LeakFinding) { l.Path = "" },
		"version 0":       func(l *rotation.LeakFinding) { l.Version = 0 },
		"negative line":   func(l *rotation.LeakFinding) { l.Line = -1 },
		"long rule":       func(l *rotation.LeakFinding) { l.Rule = strings.Repeat("r", 257) + canary },
		"long file":       func(l *rotation.LeakFinding) { l.File = strings.Repeat("f", 4097) + canary },
		"newline in file": func(l *rotation.LeakFinding) { l.File = "a\n" + canary },
		"bad utf-8":       func(l *rotation.LeakFinding) { l.Author = "\xff" + canary },
		"long author":     func(l *rotation.LeakFinding) { l.Author = strings.Repeat("a", 257) + canary },
		"commit not hex":  func(l *rotation.LeakFinding) { l.Commit = canary },
		"long commit":     func(l *rotation.LeakFinding) { l.Commit = strings.Repeat("a", 65) },
		"upper commit":    func(l *rotation.LeakFinding) { l.Commit = "ABCDEF" },
		"bad date":        func(l *rotation.LeakFinding) { l.Date = canary },
	} {
		l := ok
		mod(&l)
		err := l.Validate()
		if secret.Class(err) != "invalid_argument" && secret.Class(err) != "invalid_path" {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: the error quotes the field: %v", name, err)
		}
	}
}

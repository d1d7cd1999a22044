package regal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/policy/regotool"
	"github.com/passman-dev/passman/secret"
)

// finding is what the Lint tests compare: a violation without its message.
type finding struct {
	Source, Rule, Severity, File string
	Line, Column                 int
}

func findings(rep regotool.SourceReport) []finding {
	var out []finding
	for _, v := range rep.Violations {
		out = append(out, finding{v.Source, v.Rule, v.Severity, filepath.Base(v.File), v.Line, v.Column})
	}
	return out
}

// TestLintChecks lints a fixture with one problem of each kind per file. Its
// .regal/config.yaml lowers prefer-snake-case to a warning, so the warning
// also shows that the directory's Regal configuration is honoured.
func TestLintChecks(t *testing.T) {
	t.Parallel()
	rep, err := Lint(context.Background(), filepath.Join("..", "testdata", "lint", "checks"))
	if err != nil {
		t.Fatal(err)
	}
	want := []finding{
		// Aggregate rule: no file in the directory declares an entrypoint.
		{"regal", "no-defined-entrypoint", "error", "checks", 0, 0},
		{"regal", "directory-package-mismatch", "error", "mismatch.rego", 1, 9},
		{"format", "opa-fmt", "error", "style.rego", 3, 1},
		{"regal", "prefer-snake-case", "warning", "style.rego", 3, 1},
		{"regal", "use-assignment-operator", "error", "style.rego", 3, 10},
		{"format", "opa-fmt", "error", "unformatted.rego", 4, 1},
		{"compile", "rego_unsafe_var_error", "error", "unsafe.rego", 4, 2},
		{"compile", "rego_compile_error", "error", "unused.rego", 3, 1}, // unused import
		{"regal", "unresolved-import", "error", "unused.rego", 3, 1},
		{"compile", "rego_compile_error", "error", "unused.rego", 6, 2}, // unused declared var
	}
	if diff := cmp.Diff(want, findings(rep)); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
	if rep.Files != 5 || rep.Errors() != 9 || rep.Warnings() != 1 {
		t.Errorf("files, errors, warnings = %d, %d, %d; want 5, 9, 1", rep.Files, rep.Errors(), rep.Warnings())
	}
	messages := map[string]string{
		"unsafe.rego:4:rego_unsafe_var_error": "var name is unsafe",
		"unused.rego:3:rego_compile_error":    "import data.other unused",
		"unused.rego:6:rego_compile_error":    "declared var item unused",
		"style.rego:3:prefer-snake-case":      "Prefer snake_case for names",
	}
	for _, v := range rep.Violations {
		key := fmt.Sprintf("%s:%d:%s", filepath.Base(v.File), v.Line, v.Rule)
		if want, ok := messages[key]; ok && v.Message != want {
			t.Errorf("%s message = %q, want %q", key, v.Message, want)
		}
		if v.Source == regotool.SourceRegal && !strings.HasPrefix(v.Docs, "https://") {
			t.Errorf("%s has no documentation URL: %q", key, v.Docs)
		}
	}
}

func TestLintSyntaxError(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "testdata", "lint", "syntax")
	rep, err := Lint(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []regotool.Violation{{
		Source: "compile", Rule: "rego_parse_error", Category: "compile", Severity: "error",
		File: filepath.Join(dir, "broken.rego"), Line: 5, Column: 1, Message: "unexpected } token",
	}}
	if diff := cmp.Diff(want, rep.Violations); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
}

func TestLintOversizedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := make([]byte, regotool.MaxFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	if err := os.WriteFile(filepath.Join(dir, "big.rego"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Lint(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []finding{{"compile", regotool.RuleFileTooLarge, "error", "big.rego", 0, 0}}
	if diff := cmp.Diff(want, findings(rep)); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
}

func TestLintErrors(t *testing.T) {
	t.Parallel()
	withConfig := func(cfg string) string {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, ".regal"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".regal", "config.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package p\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := map[string]struct {
		dir      string
		sentinel error
		contains string
	}{
		"missing directory": {"../testdata/lint/nope", secret.ErrNotFound, "does not exist"},
		"no rego files":     {t.TempDir(), secret.ErrNotFound, "no .rego files"},
		"not a directory":   {"../testdata/lint/syntax/broken.rego", secret.ErrInvalidArgument, "not a directory"},
		"config fetching capabilities": {
			withConfig("capabilities:\n  from:\n    url: http://127.0.0.1:1/caps.json\n"),
			secret.ErrInvalidArgument, "capabilities from a URL",
		},
		"config not yaml": {withConfig("rules: [\n"), secret.ErrInvalidArgument, "not valid YAML"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Lint(context.Background(), tc.dir)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want one wrapping %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %q, want it to contain %q", err, tc.contains)
			}
		})
	}
}

// TestLintSkipsDotDirectories checks that .regal/rules or a .git directory
// under the linted directory is not linted as policy.
func TestLintSkipsDotDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".hidden"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".hidden", "broken.rego"), []byte("package {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Lint(context.Background(), dir); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound (the only .rego file is in a dot directory)", err)
	}
}

func TestLintCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lint(ctx, filepath.Join("..", "testdata", "lint", "checks")); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestLintRefusesEngineForbiddenBuiltins holds lint to the engine's
// built-ins: a policy that calls the network passes OPA but not passman.
func TestLintRefusesEngineForbiddenBuiltins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := "package passman.authz\n\nallow if {\n\thttp.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "net.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Lint(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range rep.Violations {
		if v.Source == regotool.SourceCompile && strings.Contains(v.Message, "http.send") {
			found = true
		}
	}
	if !found {
		t.Fatalf("lint accepted http.send: %+v", rep.Violations)
	}
}

// TestLintChecksGolden writes a real lint's report in every format and
// compares it with regotool's golden files (regotool tests the writers on
// hand-made reports).
func TestLintChecksGolden(t *testing.T) {
	t.Parallel()
	rep, err := Lint(context.Background(), filepath.Join("..", "testdata", "lint", "checks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range regotool.LintFormats {
		var buf bytes.Buffer
		if err := regotool.WriteLint(&buf, format, rep); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "lint_checks."+format))
		if err != nil {
			t.Fatal(err)
		}
		// The golden files were written from regotool's directory.
		got := strings.ReplaceAll(buf.String(), "../testdata/", "testdata/")
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s differs from golden (-want +got):\n%s", format, diff)
		}
	}
}

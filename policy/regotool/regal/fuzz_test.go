package regal

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/passman-dev/passman/policy/regotool"
)

// FuzzLintSource lints arbitrary bytes as the one .rego file of a directory:
// Lint must not panic or fail, and every violation must name a file.
func FuzzLintSource(f *testing.F) {
	for _, dir := range []string{"../testdata/lint/checks", "../testdata/lint/syntax", "../testdata/test/mixed", "../testdata/format/mixed"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && !e.IsDir() {
				f.Add(b)
			}
		}
	}
	f.Add([]byte{})
	f.Add([]byte("package p\n\n# METADATA\n# title: [\nallow := true\n"))
	f.Add([]byte("package p\x00\xff\n\x1b[31mallow if {"))
	f.Add([]byte("package p\n\nimport rego.v1\nimport future.keywords\n\nf(x) := y if y := x[_]\n"))

	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		name := filepath.Join(dir, "fuzz.rego")
		if err := os.WriteFile(name, src, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Lint(context.Background(), dir)
		if err != nil {
			t.Fatalf("Lint: %v", err)
		}
		if rep.Files != 1 {
			t.Errorf("Files = %d, want 1", rep.Files)
		}
		for _, v := range rep.Violations {
			if v.File == "" {
				t.Errorf("violation without a file: %+v", v)
			}
			if v.File != name && v.File != dir {
				t.Errorf("violation on %q, want %q or %q: %+v", v.File, name, dir, v)
			}
			if v.Severity != regotool.SeverityError && v.Severity != regotool.SeverityWarning {
				t.Errorf("severity %q: %+v", v.Severity, v)
			}
		}
	})
}

package policy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestBundledRegoUnitTests runs policy/bundled/*_test.rego with OPA's tester
// against BundledModules (the embedded modules and the default config as
// package passman.config), as `passman policy test` would.
func TestBundledRegoUnitTests(t *testing.T) {
	t.Parallel()
	sources := BundledModules()
	err := fs.WalkDir(Bundled(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !isTest(p) {
			return err
		}
		b, err := fs.ReadFile(Bundled(), p)
		sources[bundledPrefix+p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for name, text := range sources {
		m, err := ast.ParseModuleWithOpts(name, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		modules[name] = m
	}
	ctx := context.Background()
	ch, err := tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithStrict(true).WithDefaultRegoVersion(ast.RegoV1)).
		SetDefaultRegoVersion(ast.RegoV1).
		SetModules(modules).
		RunTests(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ran int
	for r := range ch {
		ran++
		switch {
		case r.Error != nil:
			t.Errorf("%s: %s: error: %v", r.Location, r.Name, r.Error)
		case r.Fail:
			t.Errorf("%s: %s: FAIL", r.Location, r.Name)
		case r.Skip:
			t.Errorf("%s: %s: skipped", r.Location, r.Name)
		}
	}
	if ran < 15 {
		t.Errorf("ran %d Rego tests, want every bundled test (at least 15)", ran)
	}
}

// TestRegoFormatted keeps every Rego file in this package as `opa fmt`
// (OPA's format package, Rego v1) writes it.
func TestRegoFormatted(t *testing.T) {
	t.Parallel()
	var files []string
	for _, root := range []string{"bundled", "testdata"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".rego") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 10 {
		t.Fatalf("found %d Rego files, want the bundled and testdata ones", len(files))
	}
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := format.SourceWithOpts(p, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Errorf("format %s: %v", p, err)
			continue
		}
		if diff := cmp.Diff(string(src), string(got)); diff != "" {
			t.Errorf("%s is not formatted (-have +want):\n%s", p, diff)
		}
	}
}

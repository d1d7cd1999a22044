package manifest_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// canary prefixes every value: field in testdata; it must never show up in
// an error, a plan or a lint document.
const canary = "CANARY-"

// parseCase is one manifest under testdata/parse. Its archive comment
// holds "error: file:line:col: message" lines (none: the manifest is
// good) and "schema: accept|reject|skip", what the JSON Schema makes of it
// (skip: not convertible to JSON, e.g. a YAML syntax error).
type parseCase struct {
	name   string
	data   []byte
	errors []string
	schema string
}

func loadCases(t testing.TB) []parseCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "parse", "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no parse cases: %v", err)
	}
	var out []parseCase
	for _, f := range files {
		a, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Files) != 1 || a.Files[0].Name != "passman.yaml" {
			t.Fatalf("%s: want exactly one file, passman.yaml", f)
		}
		c := parseCase{name: strings.TrimSuffix(filepath.Base(f), ".txtar"), data: a.Files[0].Data, schema: "accept"}
		for _, l := range strings.Split(string(a.Comment), "\n") {
			switch {
			case strings.HasPrefix(l, "error: "):
				c.errors = append(c.errors, strings.TrimPrefix(l, "error: "))
			case strings.HasPrefix(l, "schema: "):
				c.schema = strings.TrimPrefix(l, "schema: ")
			}
		}
		if strings.HasPrefix(c.name, "good_") != (len(c.errors) == 0) {
			t.Fatalf("%s: good_ cases have no error lines, bad_ cases at least one", f)
		}
		out = append(out, c)
	}
	return out
}

// newStore creates a real store in a temporary directory.
func newStore(t testing.TB) *core.Local {
	t.Helper()
	ctx := context.Background()
	opts := core.Options{Dir: filepath.Join(t.TempDir(), "store"), Actor: "test", AuditSync: audit.SyncWrite, NoSync: true}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// golden compares got with testdata/golden/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

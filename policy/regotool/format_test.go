package regotool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

const formattedLevels = `package fmtcheck

levels := {"low": 1, "high": 2}
high if input.level == levels.high
`

func TestFormat(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "format", "mixed")
	got, err := Format(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{filepath.Join(dir, "unformatted.rego"): []byte(formattedLevels)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Format (-want +got):\n%s", diff)
	}
}

func TestFormatFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", "format", "mixed"), dir)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(sub, "nested.rego")
	writeFile(t, nested, "package sub\nx:=1\n", 0o640)
	formatted, err := os.ReadFile(filepath.Join(dir, "formatted.rego"))
	if err != nil {
		t.Fatal(err)
	}

	changed, err := FormatFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{nested, filepath.Join(dir, "unformatted.rego")}, changed); diff != "" {
		t.Errorf("changed files (-want +got):\n%s", diff)
	}
	checkFile(t, filepath.Join(dir, "unformatted.rego"), formattedLevels, 0o644)
	checkFile(t, nested, "package sub\n\nx := 1\n", 0o640)
	checkFile(t, filepath.Join(dir, "formatted.rego"), string(formatted), 0o644)

	again, err := FormatFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second FormatFiles changed %v, want nothing", again)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestFormatFilesFollowsSymlink(t *testing.T) {
	t.Parallel()
	target := filepath.Join(t.TempDir(), "real.rego")
	if err := os.WriteFile(target, []byte("package s\nx:=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "link.rego")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	if _, err := FormatFiles(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced: %v, %v", fi, err)
	}
	checkFile(t, target, "package s\n\nx := 1\n", 0o600)
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	broken := t.TempDir()
	src := []byte("package b\n\nx := 1 +\n")
	if err := os.WriteFile(filepath.Join(broken, "b.rego"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := FormatFiles(broken)
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "b.rego:4") {
		t.Errorf("err = %v, want ErrInvalidArgument naming b.rego:4", err)
	}
	if got, _ := os.ReadFile(filepath.Join(broken, "b.rego")); string(got) != string(src) {
		t.Errorf("unparsable file rewritten to %q", got)
	}
	if _, err := Format(filepath.Join("testdata", "format", "nope")); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("missing dir: err = %v, want ErrNotFound", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, e.Name()), string(b), 0o644)
	}
}

func checkFile(t *testing.T, path, want string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s mode = %v, want %v", path, fi.Mode().Perm(), mode)
	}
}

// writeFile writes a file with exactly mode, whatever the umask.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

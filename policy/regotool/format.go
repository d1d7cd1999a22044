package regotool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"

	"github.com/passman-dev/passman/secret"
)

// Format returns the formatted source of each .rego file under dir that is not
// formatted, keyed by file name; formatted files are left out, so `fmt
// --check` is len(result) > 0. A file that does not parse, or is larger than
// MaxFileSize, fails the call with an error wrapping
// secret.ErrInvalidArgument or secret.ErrTooLarge.
func Format(dir string) (map[string][]byte, error) {
	files, err := findRegoFiles(dir)
	if err != nil {
		return nil, err
	}
	if err := checkReadable(files); err != nil {
		return nil, err
	}
	changed := make(map[string][]byte)
	for _, f := range files {
		out, err := formatSource(f.name, f.src)
		if err != nil {
			return nil, newError(secret.ErrInvalidArgument, err, "format policies: %s", describeFormatError(f.name, err))
		}
		if !bytes.Equal(out, f.src) {
			changed[f.name] = out
		}
	}
	return changed, nil
}

// FormatFiles formats every .rego file under dir in place and returns the
// names of the files it changed, sorted. Each file is replaced atomically (a
// temporary file in the same directory, renamed over it) and keeps its mode; a
// symlink's target is rewritten, not the link. Nothing is written when any file
// fails to parse.
func FormatFiles(dir string) ([]string, error) {
	changed, err := Format(dir)
	if err != nil {
		return nil, err
	}
	names := sortedKeys(changed)
	for _, name := range names {
		if err := writeAtomic(name, changed[name]); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// formatSource formats one file as Rego v1, turning a formatter panic into an
// error.
func formatSource(name string, src []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("internal error in the Rego formatter: %v", p)
		}
	}()
	return format.SourceWithOpts(name, src, format.Opts{
		RegoVersion:   ast.RegoV1,
		ParserOptions: &ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true},
	})
}

// describeFormatError returns the parse errors' text, which carries the line.
func describeFormatError(name string, err error) string {
	return describeASTErrors(asASTErrors(name, err))
}

// writeAtomic replaces path's content with data, keeping its mode.
func writeAtomic(path string, data []byte) (err error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	info, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Chmod(info.Mode().Perm()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

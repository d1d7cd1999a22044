// Package regotool holds the Rego development tools behind `passman policy
// test|lint|fmt`: running Rego unit tests with coverage (OPA's tester), linting
// (strict compilation and formatting drift; Regal's rules are package
// regotool/regal's) and formatting (OPA's format package), plus the report
// writers the CLI prints with.
//
// Every function takes a directory and works on the .rego files under it. File
// names in results are that directory joined with the file's path below it, as
// `opa` reports them, so a relative directory yields paths relative to the
// working directory (what GitHub annotations and SARIF consumers expect).
// Directories whose name starts with a dot (.git, .regal) are skipped.
//
// All Rego is parsed and compiled as Rego v1.
package regotool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// MaxFileSize is the largest .rego file the tools read. Lint reports a larger
// file as a violation; Test and Format refuse to run. Policies are small, and
// the bound keeps a hostile file from costing the parser unbounded memory.
const MaxFileSize = 1 << 20

// regoFile is one .rego file found under a directory.
type regoFile struct {
	name    string // dir joined with the path below it: the name used everywhere
	src     []byte // nil when the file is too large or unreadable
	tooBig  bool
	readErr error
}

// toolError is an error a caller branches on with errors.Is (through kind)
// whose message stays readable: the sentinel is not appended to the text.
type toolError struct {
	msg   string
	kind  error
	cause error
}

func (e *toolError) Error() string { return e.msg }

func (e *toolError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// newError returns an error with message msg that wraps the sentinel kind and,
// if non-nil, cause.
func newError(kind, cause error, format string, args ...any) error {
	return &toolError{msg: fmt.Sprintf(format, args...), kind: kind, cause: cause}
}

// findRegoFiles walks dir and reads every .rego file below it, in name order.
// It fails with secret.ErrNotFound when dir does not exist or holds no .rego
// file, and with secret.ErrInvalidArgument when dir is not a directory.
func findRegoFiles(dir string) ([]regoFile, error) {
	dir = filepath.Clean(dir)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, newError(secret.ErrNotFound, err, "policy directory %s does not exist", dir)
	case err != nil:
		return nil, fmt.Errorf("policy directory %s: %w", dir, err)
	case !info.IsDir():
		return nil, newError(secret.ErrInvalidArgument, nil, "%s is not a directory; pass the directory that holds the .rego files", dir)
	}
	var files []regoFile
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".rego") {
			return nil
		}
		// Stat follows a symlink: a link to a regular file is read, a link
		// to anything else (a directory, a device) is not.
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() {
			return nil // a dangling link or a link to a directory is not a policy file
		}
		files = append(files, readRegoFile(path, fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk policy directory %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, newError(secret.ErrNotFound, nil, "no .rego files under %s", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// readRegoFile reads one file, at most MaxFileSize bytes of it: the size
// from Stat can be stale by the time the file is read.
func readRegoFile(path string, fi fs.FileInfo) regoFile {
	f := regoFile{name: path}
	if fi.Size() > MaxFileSize {
		f.tooBig = true
		return f
	}
	fh, err := os.Open(path)
	if err != nil {
		f.readErr = err
		return f
	}
	defer fh.Close()
	src, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	switch {
	case err != nil:
		f.readErr = err
	case len(src) > MaxFileSize:
		f.tooBig = true
	default:
		f.src = src
	}
	return f
}

// checkReadable returns an error for the first file that is too large or could
// not be read, for the tools that cannot work around such a file.
func checkReadable(files []regoFile) error {
	for _, f := range files {
		if f.tooBig {
			return newError(secret.ErrTooLarge, nil, "%s is larger than %d bytes; split the policy", f.name, MaxFileSize)
		}
		if f.readErr != nil {
			return fmt.Errorf("read %s: %w", f.name, f.readErr)
		}
	}
	return nil
}

// isTestFile reports whether name is a test module by OPA's convention.
func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.rego")
}

// Package report holds what the report writers of the policy tools and the
// scanner share: an error-keeping writer and SARIF artifact URIs.
package report

import (
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
)

// ErrWriter is an io.Writer that keeps the first write error, for writing a
// report line by line (and for writers, such as go-githubactions, that do
// not return theirs); check Err once at the end.
type ErrWriter struct {
	W   io.Writer
	Err error
}

// Write writes p unless an earlier write failed.
func (e *ErrWriter) Write(p []byte) (int, error) {
	if e.Err != nil {
		return 0, e.Err
	}
	var n int
	n, e.Err = e.W.Write(p)
	return n, e.Err
}

// Printf formats to the writer unless an earlier write failed.
func (e *ErrWriter) Printf(format string, args ...any) {
	if e.Err == nil {
		_, e.Err = fmt.Fprintf(e.W, format, args...)
	}
}

// SARIFURI returns the artifact URI for a file name and its base id. Each
// path segment is percent-encoded, ':' too, so that a relative name such as
// "a:b.rego" cannot read as a URI with scheme "a". A relative name is
// relative to %SRCROOT%, which code-scanning uploads resolve against the
// repository root; an absolute one becomes a file:// URI with no base.
func SARIFURI(file string) (uri, base string) {
	segs := strings.Split(filepath.ToSlash(file), "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
	}
	slash := strings.Join(segs, "/")
	if filepath.IsAbs(file) {
		if !strings.HasPrefix(slash, "/") {
			slash = "/" + slash // a Windows drive path
		}
		return "file://" + slash, ""
	}
	return strings.TrimPrefix(slash, "./"), "%SRCROOT%"
}

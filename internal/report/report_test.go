package report

import (
	"bytes"
	"errors"
	"testing"
)

func TestSARIFURI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"dir/a,b:c.go":  {"dir/a%2Cb%3Ac.go", "%SRCROOT%"},
		"./x/y.rego":    {"x/y.rego", "%SRCROOT%"},
		"a b/100%.rego": {"a%20b/100%25.rego", "%SRCROOT%"},
		"/abs/p.rego":   {"file:///abs/p.rego", ""},
	} {
		if uri, base := SARIFURI(in); uri != want[0] || base != want[1] {
			t.Errorf("SARIFURI(%q) = %q, %q; want %q, %q", in, uri, base, want[0], want[1])
		}
	}
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestErrWriterKeepsFirstError(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	ok := &ErrWriter{W: &buf}
	ok.Printf("a%d", 1)
	_, _ = ok.Write([]byte("b"))
	if ok.Err != nil || buf.String() != "a1b" {
		t.Fatalf("good writer: %q, %v", buf.String(), ok.Err)
	}
	bad := &ErrWriter{W: failing{}}
	bad.Printf("x")
	if _, err := bad.Write([]byte("y")); err == nil || bad.Err == nil || bad.Err.Error() != "disk full" {
		t.Fatalf("failing writer: %v", bad.Err)
	}
}

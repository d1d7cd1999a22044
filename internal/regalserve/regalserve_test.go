package regalserve

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/passman-dev/passman/internal/regalexec"
	"github.com/passman-dev/passman/secret"
)

func TestLint(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{nil, {"lint"}, {"lint", "dir"}, {"fmt", "--", "dir"}, {"lint", "--", "a", "b"}} {
		var out, errOut bytes.Buffer
		if code := Main(ctx, args, &out, &errOut); code != 2 || out.Len() != 0 {
			t.Errorf("Main(%q) = %d, stdout %q", args, code, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := Main(ctx, []string{"lint", "--", "../../policy/regotool/testdata/lint/syntax"}, &out, &errOut); code != 0 {
		t.Fatalf("lint exited %d: %s", code, errOut.String())
	}
	rep, err := regalexec.Decode(out.Bytes())
	if err != nil || rep.Files != 1 || rep.Errors() != 1 {
		t.Errorf("report %+v, %v", rep, err)
	}
	out.Reset()
	if code := Main(ctx, []string{"lint", "--", "no/such/dir"}, &out, &errOut); code != 0 {
		t.Fatalf("a failed lint exited %d", code)
	}
	if _, err := regalexec.Decode(out.Bytes()); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("missing directory: %v", err)
	}
}

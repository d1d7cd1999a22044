package regalexec

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/passman-dev/passman/policy/regotool"
	"github.com/passman-dev/passman/secret"
)

func TestRoundTrip(t *testing.T) {
	rep := regotool.SourceReport{Files: 2, Violations: []regotool.Violation{{Source: "regal", Rule: "r", Severity: "error", File: "a.rego", Line: 3, Column: 1, Message: "m"}}}
	b, err := Encode(rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || got.Files != 2 || len(got.Violations) != 1 || got.Violations[0] != rep.Violations[0] {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
	for _, kind := range []error{secret.ErrNotFound, secret.ErrInvalidArgument, secret.ErrTooLarge, context.Canceled} {
		b, err := Encode(regotool.SourceReport{}, errors.Join(errors.New("dir x"), kind))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(b); !errors.Is(err, kind) || !strings.Contains(err.Error(), "dir x") {
			t.Errorf("Decode of a %v failure = %v", kind, err)
		}
	}
}

func TestDecodeHostile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"not json":      "regal: boom",
		"old protocol":  `{"version":0,"report":{"Files":1}}`,
		"no report":     `{"version":1}`,
		"wrong type":    `{"version":1,"report":[]}`,
		"trailing junk": `{"version":1,"report":{}} x`,
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: Decode accepted %q", name, in)
		}
	}
}

func TestLintProgramFailures(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	write := func(name, script string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := Lint(context.Background(), write("fails", "#!/bin/sh\necho oops >&2\nexit 3\n"), "."); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a failing program: err = %v, want its stderr quoted", err)
	}
	// A program that floods stdout is cut at maxResponse, not buffered whole.
	if _, err := Lint(context.Background(), write("floods", "#!/bin/sh\nhead -c 70000000 /dev/zero\n"), "."); err == nil {
		t.Error("a flood was decoded as a report")
	}
	if _, err := Lint(context.Background(), dir+"/missing", "."); err == nil {
		t.Error("a missing program ran")
	}
}

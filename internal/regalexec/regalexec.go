// Package regalexec runs `passman policy lint` in the passman-regal
// program and reads its report. Linking Regal costs a program ~50 ms of
// start-up (its rule bundle is parsed in a package variable), which every
// passman command would pay; in a program of its own only a lint pays it.
package regalexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/passman-dev/passman/policy/regotool"
	"github.com/passman-dev/passman/secret"
)

// Program is the lint program's name, installed beside passman.
const Program = "passman-regal"

// ProtocolVersion changes with Response's meaning: a passman and a
// passman-regal of different builds must not misread each other.
const ProtocolVersion = 1

// maxResponse bounds what is read from the program: a report of every
// .rego file's violations is far smaller.
const maxResponse = 64 << 20

// Response is what passman-regal writes to standard output: a report, or
// the error that stopped the lint.
type Response struct {
	Version int                    `json:"version"`
	Report  *regotool.SourceReport `json:"report,omitempty"`
	Error   *Error                 `json:"error,omitempty"`
}

// Error is a lint's failure: its secret.Class (so the caller's exit code
// is the one an in-process lint gave) and its message.
type Error struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Find returns the lint program: the one beside the running executable
// (what `make build` and a release install), else the one on PATH.
func Find() (string, error) {
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		p := filepath.Join(filepath.Dir(exe), Program)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath(Program)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not installed beside passman or on PATH (make build builds it; go install github.com/passman-dev/passman/cmd/%s)", secret.ErrPrecondition, Program, Program)
	}
	return p, nil
}

// Lint runs program on dir and returns its report. The program gets no
// more of passman's environment than it needs to run: PATH, HOME and
// TMPDIR (PASSMAN_MASTER_KEY and PASSMAN_TOKEN are not its business).
func Lint(ctx context.Context, program, dir string) (regotool.SourceReport, error) {
	cmd := exec.CommandContext(ctx, program, "lint", "--", dir)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "HOME" || k == "TMPDIR" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{&stdout, maxResponse}, &limited{&stderr, 4096}
	err := cmd.Run()
	if ctx.Err() != nil {
		return regotool.SourceReport{}, ctx.Err()
	}
	if err != nil {
		return regotool.SourceReport{}, fmt.Errorf("%s: %w: %s", Program, err, strings.TrimSpace(stderr.String()))
	}
	return Decode(stdout.Bytes())
}

// Decode reads a Response, returning its report or its error (wrapping the
// secret sentinel of its class).
func Decode(b []byte) (regotool.SourceReport, error) {
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		return regotool.SourceReport{}, fmt.Errorf("%s: unreadable report: %w", Program, err)
	}
	switch {
	case r.Version != ProtocolVersion:
		return regotool.SourceReport{}, fmt.Errorf("%s speaks protocol %d, passman %d: install both from the same build", Program, r.Version, ProtocolVersion)
	case r.Error != nil:
		return regotool.SourceReport{}, &lintError{msg: r.Error.Message, kind: classes[r.Error.Class]}
	case r.Report == nil:
		return regotool.SourceReport{}, fmt.Errorf("%s: empty report", Program)
	}
	return *r.Report, nil
}

// Encode is Decode's inverse, for passman-regal.
func Encode(rep regotool.SourceReport, err error) ([]byte, error) {
	r := Response{Version: ProtocolVersion}
	if err != nil {
		class := secret.Class(err)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			class = "canceled"
		}
		r.Error = &Error{Class: class, Message: err.Error()}
	} else {
		r.Report = &rep
	}
	return json.Marshal(r)
}

// classes are the failures of a lint a caller tells apart.
var classes = map[string]error{
	"not_found":        secret.ErrNotFound,
	"invalid_argument": secret.ErrInvalidArgument,
	"too_large":        secret.ErrTooLarge,
	"canceled":         context.Canceled,
}

type lintError struct {
	msg  string
	kind error // nil for a class the caller does not branch on
}

func (e *lintError) Error() string { return e.msg }
func (e *lintError) Unwrap() error { return e.kind }

// limited keeps the first n bytes written to it and drops the rest, so a
// misbehaving program cannot exhaust memory.
type limited struct {
	b *bytes.Buffer
	n int
}

func (w *limited) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

package clibase

import (
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// Env is the process environment a command runs in. Tests build their own;
// OSEnv returns the real one.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable; nil reads none.
	Getenv func(string) string
	// StdinIsTerminal reports whether Stdin is an interactive terminal, in
	// which case secret put refuses to wait for a value; nil means never.
	StdinIsTerminal func() bool
	// StderrIsTerminal reports whether Stderr is a terminal, where long
	// scans draw progress; nil means never.
	StderrIsTerminal func() bool
	// Now is the clock for relative times such as --since 1h; nil means
	// time.Now.
	Now func() time.Time
}

// OSEnv returns the environment of the running process.
func OSEnv() Env {
	return Env{
		Stdin:            os.Stdin,
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		StdinIsTerminal:  func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
		StderrIsTerminal: func() bool { return term.IsTerminal(int(os.Stderr.Fd())) },
	}
}

// Var reads the environment variable name through Getenv ("" without one).
func (e Env) Var(name string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(name)
}

// Clock is the time now by Now, else time.Now.
func (e Env) Clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

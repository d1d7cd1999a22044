package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/internal/clibase"
)

// runMain runs Main in-process with no store (so reaching the store
// would exit 3, not 2) and returns the exit code and stderr.
func runMain(t *testing.T, env Env, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env.Stdout, env.Stderr = &out, &errb
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	store := filepath.Join(t.TempDir(), "nostore")
	env.Getenv = func(k string) string {
		if k == envStore {
			return store
		}
		return ""
	}
	return Main(context.Background(), args, env), out.String(), errb.String()
}

// failingReader fails the test if anything reads it.
type failingReader struct{ t *testing.T }

func (r failingReader) Read([]byte) (int, error) {
	r.t.Error("stdin was read")
	return 0, io.EOF
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args    []string
		env     Env
		wantErr string
	}{
		"version and stage":  {args: []string{"secret", "get", "a/b", "--version", "2", "--stage", "current"}, wantErr: "--version and --stage are mutually exclusive"},
		"version zero":       {args: []string{"secret", "get", "a/b", "--version", "0"}, wantErr: "--version must be 1 or more, got 0"},
		"version negative":   {args: []string{"secret", "get", "a/b", "--version", "-3"}, wantErr: "--version must be 1 or more, got -3"},
		"version not number": {args: []string{"secret", "get", "a/b", "--version", "x"}, wantErr: `invalid argument "x" for "--version"`},
		"bad stage":          {args: []string{"secret", "get", "a/b", "--stage", "old"}, wantErr: `unknown stage "old"`},
		"unknown format":     {args: []string{"version", "-o", "xml"}, wantErr: `unknown output format "xml" (want one of: text, json)`},
		"value flag":         {args: []string{"secret", "put", "a/b", "--value", "v"}, wantErr: "values are never taken from arguments"},
		"value as argument":  {args: []string{"secret", "put", "a/b", "v"}, wantErr: "want 1 argument(s) (PATH), got 2"},
		"file and generate":  {args: []string{"secret", "put", "a/b", "--file", "f", "--generate"}, wantErr: "--file and --generate are mutually exclusive"},
		"length alone":       {args: []string{"secret", "put", "a/b", "--length", "9"}, wantErr: "need --generate"},
		"terminal stdin": {
			args:    []string{"secret", "put", "a/b"},
			env:     Env{Stdin: failingReader{t}, StdinIsTerminal: func() bool { return true }},
			wantErr: "standard input is a terminal",
		},
		"unknown subcommand":  {args: []string{"keys", "shred"}, wantErr: `unknown command "shred" for "passman keys"`},
		"unknown top command": {args: []string{"shred"}, wantErr: `unknown command "shred" for "passman"`},
		"stray argument":      {args: []string{"keys", "list", "extra"}, wantErr: "takes no arguments, got 1"},
		"destroy neither":     {args: []string{"secret", "destroy", "a/b"}, wantErr: "--versions, or use --all"},
		"destroy both":        {args: []string{"secret", "destroy", "a/b", "--all", "--versions", "1"}, wantErr: "--versions, or use --all"},
		"undelete no list":    {args: []string{"secret", "undelete", "a/b"}, wantErr: "name the versions to restore"},
		"versions zero":       {args: []string{"secret", "delete", "a/b", "--versions", "1,0"}, wantErr: "version numbers start at 1, got 0"},
		"tail zero":           {args: []string{"audit", "tail", "-n", "0"}, wantErr: "-n must be 1 or more"},
		"bad outcome":         {args: []string{"audit", "show", "--outcome", "ok"}, wantErr: `unknown outcome "ok"`},
		"bad since":           {args: []string{"audit", "show", "--since", "last week"}, wantErr: `--since: "last week" is neither`},
		"bad list limit":      {args: []string{"secret", "list", "--limit", "-1"}, wantErr: "--limit must be 1 to 1000"},
		"rollback version":    {args: []string{"secret", "rollback", "a/b", "v1"}, wantErr: `VERSION must be a version number (1 or more), got "v1"`},
		"stage version":       {args: []string{"secret", "stage", "a/b", "pending", "last"}, wantErr: "VERSION must be a version number"},
		"tag without value":   {args: []string{"secret", "meta", "a/b", "--tag", "k"}, wantErr: `--tag wants key=value, got "k"`},
		"rotation period":     {args: []string{"secret", "meta", "a/b", "--rotation-period", "-1h"}, wantErr: "negative"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runMain(t, tt.env, tt.args...)
			if code != clibase.ExitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, clibase.ExitUsage, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "passman: ") || !strings.HasPrefix(lines[1], "run 'passman") {
				t.Errorf("stderr is not an error line and a --help hint:\n%s", stderr)
			}
			if !strings.Contains(lines[0], tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", lines[0], tt.wantErr)
			}
			if stdout != "" {
				t.Errorf("stdout: %q, want nothing", stdout)
			}
		})
	}
}

// TestOutputFormats checks that every registered format is accepted.
func TestOutputFormats(t *testing.T) {
	t.Parallel()
	for _, f := range clibase.OutputFormats() {
		if code, _, stderr := runMain(t, Env{}, "version", "-o", string(f)); code != clibase.ExitOK {
			t.Errorf("-o %s: exit %d: %s", f, code, stderr)
		}
	}
	_, _, stderr := runMain(t, Env{}, "version", "-o", "yaml")
	if !strings.Contains(stderr, clibase.FormatNames()) {
		t.Errorf("unknown-format error %q does not list %s", stderr, clibase.FormatNames())
	}
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		"empty":    {in: "", want: time.Time{}},
		"rfc3339":  {in: "2025-01-31T08:30:00Z", want: time.Date(2025, 1, 31, 8, 30, 0, 0, time.UTC)},
		"offset":   {in: "2025-01-31T08:30:00+02:00", want: time.Date(2025, 1, 31, 6, 30, 0, 0, time.UTC)},
		"hours":    {in: "1h", want: now.Add(-time.Hour)},
		"minutes":  {in: "90m", want: now.Add(-90 * time.Minute)},
		"days":     {in: "7d", want: now.AddDate(0, 0, -7)},
		"words":    {in: "yesterday", wantErr: true},
		"date":     {in: "2025-01-31", wantErr: true},
		"negative": {in: "-1h", wantErr: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := parseWhen("since", tt.in, now)
			if tt.wantErr {
				var ue *clibase.UsageError
				if !errors.As(err, &ue) {
					t.Fatalf("parseWhen(%q) error = %v, want a usage error", tt.in, err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("parseWhen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLabelUpdate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		sets, unsets []string
		want         map[string]string
		wantErr      string
	}{
		"none":          {want: nil},
		"set":           {sets: []string{"a=1", "b=x=y"}, want: map[string]string{"a": "1", "b": "x=y"}},
		"unset":         {unsets: []string{"a"}, want: map[string]string{"a": ""}},
		"both":          {sets: []string{"a=1"}, unsets: []string{"b"}, want: map[string]string{"a": "1", "b": ""}},
		"last set wins": {sets: []string{"a=1", "a=2"}, want: map[string]string{"a": "2"}},
		"no equals":     {sets: []string{"a"}, wantErr: "wants key=value"},
		"empty key":     {sets: []string{"=1"}, wantErr: "wants key=value"},
		"empty value":   {sets: []string{"a="}, wantErr: "use --untag a"},
		"set and unset": {sets: []string{"a=1"}, unsets: []string{"a"}, wantErr: "both set"},
		"empty unset":   {unsets: []string{""}, wantErr: "wants a key"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := labelUpdate("tag", tt.sets, "untag", tt.unsets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("labelUpdate (-want +got):\n%s", diff)
			}
		})
	}
}

// TestScanProgress: a long scan draws progress on a terminal's stderr, and
// nothing when stderr is not a terminal (CI logs).
func TestScanProgress(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	for _, tty := range []bool{true, false} {
		var out, errb bytes.Buffer
		env := Env{Stdout: &out, Stderr: &errb, StderrIsTerminal: func() bool { return tty }}
		if code := Main(context.Background(), []string{"scan", "git", "--no-cache", repo}, env); code != clibase.ExitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if got := strings.Contains(errb.String(), "] 1/1 commits"); got != tty {
			t.Errorf("terminal %v: progress drawn %v: %q", tty, got, errb.String())
		}
	}
}

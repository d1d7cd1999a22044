package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/keyring"
)

// invocation is one in-process run of Main and what it printed.
type invocation struct {
	args           []string
	stdout, stderr string
	code           int
}

// runner runs Main in-process against one test store.
type runner struct {
	t   *testing.T
	env map[string]string
	log []invocation
}

func newRunner(t *testing.T) *runner {
	dir := t.TempDir()
	return &runner{t: t, env: map[string]string{
		envStore:     filepath.Join(dir, "store"),
		envAuditSync: "write",
		"HOME":       dir,
	}}
}

// run executes passman with args and stdin, with extra environment
// variables on top of the runner's, and records the result.
func (r *runner) run(stdin string, extraEnv map[string]string, args ...string) invocation {
	r.t.Helper()
	var out, errb bytes.Buffer
	env := Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string {
			if v, ok := extraEnv[k]; ok {
				return v
			}
			return r.env[k]
		},
	}
	code := Main(context.Background(), args, env)
	inv := invocation{args: args, stdout: out.String(), stderr: errb.String(), code: code}
	r.log = append(r.log, inv)
	return inv
}

// must runs a command that has to exit with want.
func (r *runner) must(want int, stdin string, args ...string) invocation {
	r.t.Helper()
	inv := r.run(stdin, nil, args...)
	if inv.code != want {
		r.t.Fatalf("passman %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), inv.code, want, inv.stdout, inv.stderr)
	}
	return inv
}

// TestCanary writes a unique value and runs every command, successful or
// not, checking that the value is printed by explicit secret get calls and
// nowhere else: not in any other output, not on stderr, not in the audit
// log or key file, and not in plaintext in the database.
//
// It is deliberately not parallel. The audit log's flock belongs to the open
// file, and while TestScripts forks passman processes from this same test
// binary, a child briefly holds a copy of every open descriptor until it
// execs; an in-process command that reopens the log in that window finds it
// "locked". Sequential tests finish before parallel ones start.
func TestCanary(t *testing.T) {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	canary := "CANARY-" + hex.EncodeToString(rnd[:])
	r := newRunner(t)
	valueFile := filepath.Join(t.TempDir(), "value.txt")
	if err := os.WriteFile(valueFile, []byte(canary), 0o600); err != nil {
		t.Fatal(err)
	}

	r.must(ExitOK, "", "init")
	r.must(ExitOK, canary, "secret", "put", "app/canary", "--owner", "team", "--tag", "k=v")
	r.must(ExitOK, "", "secret", "put", "app/canary", "--file", valueFile, "-o", "json")
	r.must(ExitOK, "other value", "secret", "put", "app/canary")
	r.must(ExitOK, canary, "secret", "put", "app/pending", "--pending")
	r.must(ExitOK, canary, "secret", "put", "app/canary2", "-o", "json")

	// The only commands allowed to print the value.
	reveals := []invocation{
		r.must(ExitOK, "", "secret", "get", "app/canary", "--version", "1"),
		r.must(ExitOK, "", "secret", "get", "app/canary", "--stage", "previous", "-o", "json"),
		r.must(ExitOK, "", "secret", "get", "app/pending", "--stage", "pending"),
		r.must(ExitOK, "", "secret", "get", "app/canary2", "-o", "json"),
	}
	if got := reveals[0].stdout; got != canary {
		t.Fatalf("secret get printed %q, want the value exactly", got)
	}
	for _, inv := range reveals {
		if !strings.Contains(inv.stdout, canary) {
			t.Fatalf("passman %s did not print the value: %q", strings.Join(inv.args, " "), inv.stdout)
		}
	}

	for _, format := range []string{"text", "json"} {
		r.must(ExitOK, "", "secret", "list", "-o", format)
		r.must(ExitOK, "", "secret", "list", "app/", "--all", "--limit", "1", "-o", format)
		r.must(ExitOK, "", "secret", "history", "app/canary", "-o", format)
		r.must(ExitOK, "", "secret", "meta", "app/canary", "-o", format)
		r.must(ExitOK, "", "keys", "list", "-o", format)
		r.must(ExitOK, "", "audit", "tail", "-n", "50", "-o", format)
		r.must(ExitOK, "", "audit", "show", "--path-prefix", "app/", "-o", format)
		r.must(ExitOK, "", "audit", "verify", "-o", format)
		r.must(ExitOK, "", "version", "-o", format)
	}
	r.must(ExitOK, "", "secret", "meta", "app/canary", "--description", "a canary", "--custom", "c=d", "--untag", "k")
	r.must(ExitOK, "", "secret", "rollback", "app/canary", "1")
	r.must(ExitOK, "", "secret", "delete", "app/canary", "--versions", "1")
	r.must(ExitOK, "", "secret", "undelete", "app/canary", "--versions", "1")
	r.must(ExitOK, "", "secret", "stage", "app/canary", "pending", "2")
	r.must(ExitOK, "", "secret", "stage", "app/canary", "pending", "0")
	r.must(ExitOK, "", "secret", "destroy", "app/canary", "--versions", "3")
	r.must(ExitOK, "", "keys", "rotate")
	r.must(ExitOK, "", "keys", "rotate", "-o", "json")
	r.must(ExitOK, "", "secret", "destroy", "app/canary2", "--all")
	r.must(ExitOK, "", "keys", "rewrap")
	r.must(ExitOK, "", "store", "compact")
	r.must(ExitOK, "", "fingerprints", "export", "--file", filepath.Join(t.TempDir(), "fp.json"))
	r.must(ExitOK, "", "fingerprints", "export", "--file", "-")
	// The scanner finds the planted value (app/pending holds it) and
	// reports where, never what.
	leakDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(leakDir, ".env"), []byte("TOKEN="+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		r.must(ExitFailure, "", "scan", "dir", leakDir, "--managed", "-o", format)
		r.must(ExitFailure, "", "scan", "file", filepath.Join(leakDir, ".env"), "--managed", "-o", format)
		r.must(ExitFailure, "", "scan", "dir", leakDir, "--managed", "--respond", "-o", format)
	}

	// Rotation: the canary is a rotated secret's first value; rotating,
	// listing status and rotating what is due print neither value.
	r.must(ExitOK, canary, "secret", "put", "app/rot", "--rotation-connection", "generated", "--rotation-period", "1d", "--rotation-grace", "1h")
	for _, format := range []string{"text", "json"} {
		r.must(ExitOK, "", "rotate", "app/rot", "-o", format)
		r.must(ExitOK, "", "status", "-o", format)
		r.must(ExitOK, "", "rotate", "--due", "-o", format)
	}

	// Secrets as code: a manifest that carries the value in plaintext is
	// refused everywhere without repeating it; a clean one applies.
	dir := t.TempDir()
	leaky := filepath.Join(dir, "leaky.yaml")
	clean := filepath.Join(dir, "clean.yaml")
	if err := os.WriteFile(leaky, []byte("secrets:\n  - path: app/leaky\n    owner: team\n    value: "+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(clean, []byte("secrets:\n  - path: app/gen\n    owner: team\n    description: generated\n    generate: {length: 24}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		r.must(ExitFailure, "", "lint", "-f", leaky, "-o", format)
		r.must(ExitFailure, "", "plan", "-f", leaky, "-o", format)
		r.must(ExitFailure, "", "apply", "-f", leaky, "-o", format)
		r.must(ExitOK, "", "lint", "-f", clean, "-o", format)
		r.must(ExitFailure, "", "lint", "-f", clean, "--from-store", "-o", format) // app/pending has no owner
	}
	r.must(ExitOK, "", "apply", "-f", clean)
	r.must(ExitOK, "", "plan", "-f", clean)

	// Failures, several of them handed the value where it does not belong.
	r.must(ExitFailure, canary, "secret", "put", "app/canary", "--cas", "1")
	r.must(ExitUsage, canary, "secret", "put", "app/../canary")
	r.must(ExitUsage, canary+strings.Repeat("x", 1<<20), "secret", "put", "app/big")
	r.must(ExitUsage, "", "secret", "put", "app/canary", canary)
	r.must(ExitUsage, "", "secret", "put", "app/canary", "--value", canary)
	r.must(ExitUsage, "", "secret", "put", "app/canary", "--value="+canary)
	r.must(ExitUsage, "", "secret", "get", "app/canary", "--version", "1", "--stage", "current")
	r.must(ExitNotFound, "", "secret", "get", "app/canary", "--version", "99")
	r.must(ExitFailure, "", "secret", "get", "app/canary", "--version", "3")
	r.must(ExitUsage, "", "-o", "yaml", "secret", "get", "app/canary")
	wrongKey := map[string]string{keyring.EnvVar: "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}
	for _, args := range [][]string{{"secret", "get", "app/canary"}, {"secret", "put", "app/canary"}, {"keys", "list"}} {
		if inv := r.run(canary, wrongKey, args...); inv.code != ExitUsage {
			t.Fatalf("passman %s with a wrong key: exit %d, want %d", strings.Join(args, " "), inv.code, ExitUsage)
		}
	}
	for _, path := range commandPaths(newRootCmd(&app{})) {
		r.must(ExitOK, "", append(path, "--help")...)
	}

	// The value must show up only in the reveals.
	revealed := map[*invocation]bool{}
	for i := range r.log {
		for _, rv := range reveals {
			if strings.Join(r.log[i].args, "\x00") == strings.Join(rv.args, "\x00") {
				revealed[&r.log[i]] = true
			}
		}
	}
	for i := range r.log {
		inv := &r.log[i]
		cmdline := "passman " + strings.Join(inv.args, " ")
		if strings.Contains(inv.stderr, canary) {
			t.Errorf("%s: value on stderr: %q", cmdline, inv.stderr)
		}
		if !revealed[inv] && strings.Contains(inv.stdout, canary) {
			t.Errorf("%s: value on stdout: %q", cmdline, inv.stdout)
		}
	}
	storeDir := r.env[envStore]
	for _, name := range []string{core.AuditFile, core.KeyFile, core.DBFile} {
		b, err := os.ReadFile(filepath.Join(storeDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the value in plaintext", name)
		}
	}
	if len(r.log) < 60 {
		t.Errorf("only %d invocations ran; the command list shrank?", len(r.log))
	}
}

// commandPaths lists the path (without "passman") of every command in the
// tree, so each one's --help is covered without keeping a list by hand.
func commandPaths(root *cobra.Command) [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(root, nil)
	return out
}

package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
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
// not (the server too, in-process, driven by remote commands), checking
// that the value is printed by explicit secret get calls and nowhere else:
// not in any other output, not on stderr, not in the server's output or
// log, not in the audit log or key file, and not in plaintext in the
// database. It looks for the value itself and its base64 and hex
// encodings, as the server's canary test does.
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

	r.must(clibase.ExitOK, "", "init")
	r.must(clibase.ExitOK, canary, "secret", "put", "app/canary", "--owner", "team", "--tag", "k=v")
	r.must(clibase.ExitOK, "", "secret", "put", "app/canary", "--file", valueFile, "-o", "json")
	r.must(clibase.ExitOK, "other value", "secret", "put", "app/canary")
	r.must(clibase.ExitOK, canary, "secret", "put", "app/pending", "--pending")
	r.must(clibase.ExitOK, canary, "secret", "put", "app/canary2", "-o", "json")

	// The only commands allowed to print the value.
	reveals := []invocation{
		r.must(clibase.ExitOK, "", "secret", "get", "app/canary", "--version", "1"),
		r.must(clibase.ExitOK, "", "secret", "get", "app/canary", "--stage", "previous", "-o", "json"),
		r.must(clibase.ExitOK, "", "secret", "get", "app/pending", "--stage", "pending"),
		r.must(clibase.ExitOK, "", "secret", "get", "app/canary2", "-o", "json"),
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
		r.must(clibase.ExitOK, "", "secret", "list", "-o", format)
		r.must(clibase.ExitOK, "", "secret", "list", "app/", "--all", "--limit", "1", "-o", format)
		r.must(clibase.ExitOK, "", "secret", "history", "app/canary", "-o", format)
		r.must(clibase.ExitOK, "", "secret", "meta", "app/canary", "-o", format)
		r.must(clibase.ExitOK, "", "keys", "list", "-o", format)
		r.must(clibase.ExitOK, "", "audit", "tail", "-n", "50", "-o", format)
		r.must(clibase.ExitOK, "", "audit", "show", "--path-prefix", "app/", "-o", format)
		r.must(clibase.ExitOK, "", "audit", "verify", "-o", format)
		r.must(clibase.ExitOK, "", "version", "-o", format)
	}
	r.must(clibase.ExitOK, "", "secret", "meta", "app/canary", "--description", "a canary", "--custom", "c=d", "--untag", "k")
	r.must(clibase.ExitOK, "", "secret", "rollback", "app/canary", "1")
	r.must(clibase.ExitOK, "", "secret", "delete", "app/canary", "--versions", "1")
	r.must(clibase.ExitOK, "", "secret", "undelete", "app/canary", "--versions", "1")
	r.must(clibase.ExitOK, "", "secret", "stage", "app/canary", "pending", "2")
	r.must(clibase.ExitOK, "", "secret", "stage", "app/canary", "pending", "0")
	r.must(clibase.ExitOK, "", "secret", "destroy", "app/canary", "--versions", "3")
	r.must(clibase.ExitOK, "", "keys", "rotate")
	r.must(clibase.ExitOK, "", "keys", "rotate", "-o", "json")
	r.must(clibase.ExitOK, "", "secret", "destroy", "app/canary2", "--all")
	r.must(clibase.ExitOK, "", "keys", "rewrap")
	r.must(clibase.ExitOK, "", "store", "compact")
	r.must(clibase.ExitOK, "", "fingerprints", "export", "--file", filepath.Join(t.TempDir(), "fp.json"))
	r.must(clibase.ExitOK, "", "fingerprints", "export", "--file", "-")
	// The scanner finds the planted value (app/pending holds it) and
	// reports where, never what.
	leakDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(leakDir, ".env"), []byte("TOKEN="+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		r.must(clibase.ExitFailure, "", "scan", "dir", leakDir, "--managed", "-o", format)
		r.must(clibase.ExitFailure, "", "scan", "file", filepath.Join(leakDir, ".env"), "--managed", "-o", format)
		r.must(clibase.ExitFailure, "", "scan", "dir", leakDir, "--managed", "--respond", "-o", format)
	}

	// Rotation: the canary is a rotated secret's first value; rotating,
	// listing status and rotating what is due print neither value.
	r.must(clibase.ExitOK, canary, "secret", "put", "app/rot", "--rotation-connection", "generated", "--rotation-period", "1d", "--rotation-grace", "1h")
	for _, format := range []string{"text", "json"} {
		r.must(clibase.ExitOK, "", "rotate", "app/rot", "-o", format)
		r.must(clibase.ExitOK, "", "status", "-o", format)
		r.must(clibase.ExitOK, "", "rotate", "--due", "-o", format)
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
		r.must(clibase.ExitFailure, "", "lint", "-f", leaky, "-o", format)
		r.must(clibase.ExitFailure, "", "plan", "-f", leaky, "-o", format)
		r.must(clibase.ExitFailure, "", "apply", "-f", leaky, "-o", format)
		r.must(clibase.ExitOK, "", "lint", "-f", clean, "-o", format)
		r.must(clibase.ExitFailure, "", "lint", "-f", clean, "--from-store", "-o", format) // app/pending has no owner
	}
	r.must(clibase.ExitOK, "", "apply", "-f", clean)
	r.must(clibase.ExitOK, "", "plan", "-f", clean)

	// Scanning history and the index: the value committed in one repository
	// and staged in another is found and never printed.
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "config.env"), []byte("TOKEN="+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "init", "-q")
	git(t, repo, "add", "config.env")
	git(t, repo, "commit", "-q", "-m", "config")
	if err := os.WriteFile(filepath.Join(repo, "staged.env"), []byte("OTHER="+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", "staged.env")
	for _, format := range []string{"text", "json"} {
		r.must(clibase.ExitFailure, "", "scan", "git", repo, "--managed", "-o", format)
		r.must(clibase.ExitFailure, "", "scan", "staged", repo, "--managed", "-o", format)
	}

	// Policies: the tools on a policy directory, evaluation on an input
	// and on standard input that is the value instead of JSON.
	policyDir := t.TempDir()
	for _, name := range []string{"teams.rego", "teams_test.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "policies", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(policyDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	input := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(input, []byte(`{"subject": {"id": "bob", "kind": "user"}, "action": "read", "path": "app/canary", "store": {"created_by": "alice"}, "time": "2026-11-26T00:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		r.must(clibase.ExitOK, "", "policy", "test", policyDir, "-o", format)
		r.must(clibase.ExitFailure, "", "policy", "lint", policyDir, "-o", format) // Regal's layout rules
		r.must(clibase.ExitOK, "", "policy", "fmt", policyDir, "-o", format)
		r.must(clibase.ExitOK, "", "policy", "eval", "--decision", "authz", "--input", input, "-o", format)
		r.must(clibase.ExitOK, "", "policy", "eval", "--decision", "authz", "--input", input, "--explain", "-o", format)
	}
	r.must(clibase.ExitUsage, canary, "policy", "eval", "--decision", "authz", "--input", "-")

	// Tokens on the local store; the value handed as a token or an
	// accessor is not repeated.
	for _, format := range []string{"text", "json"} {
		tok := strings.TrimSpace(r.must(clibase.ExitOK, "", "token", "create", "--identity", "ops", "--claim", "role=reader", "--ttl", "1h").stdout)
		if inv := r.run("", map[string]string{envToken: tok}, "token", "lookup", "-o", format); inv.code != clibase.ExitOK {
			t.Fatalf("token lookup: %+v", inv)
		}
		r.must(clibase.ExitOK, "", "token", "list", "-o", format)
	}
	r.must(clibase.ExitUsage, "", "token", "revoke", canary)
	if inv := r.run("", map[string]string{envToken: canary}, "token", "lookup"); inv.code == clibase.ExitOK {
		t.Fatalf("token lookup with the value as token: %+v", inv)
	}

	// Connections: an administrator's rotation targets.
	for _, format := range []string{"text", "json"} {
		r.must(clibase.ExitOK, "", "connection", "put", "hook", "--connector", "webhook", "--config", "url=https://hooks.example/a", "--config", "signing_key=env:HOOK_KEY", "--allow-path", "app/*", "-o", format)
		r.must(clibase.ExitOK, "", "connection", "get", "hook", "-o", format)
		r.must(clibase.ExitOK, "", "connection", "list", "-o", format)
		r.must(clibase.ExitOK, "", "connection", "migrate", "-o", format)
		r.must(clibase.ExitOK, "", "connection", "delete", "hook", "-o", format)
	}
	r.must(clibase.ExitUsage, "", "connection", "put", "bad", "--connector", "webhook", "--config", "url=https://hooks.example/b", "--config", "signing_key="+canary, "--allow-path", "a/*")

	// Failures, several of them handed the value where it does not belong.
	r.must(clibase.ExitFailure, canary, "secret", "put", "app/canary", "--cas", "1")
	r.must(clibase.ExitUsage, canary, "secret", "put", "app/../canary")
	r.must(clibase.ExitUsage, canary+strings.Repeat("x", 1<<20), "secret", "put", "app/big")
	r.must(clibase.ExitUsage, "", "secret", "put", "app/canary", canary)
	r.must(clibase.ExitUsage, "", "secret", "put", "app/canary", "--value", canary)
	r.must(clibase.ExitUsage, "", "secret", "put", "app/canary", "--value="+canary)
	r.must(clibase.ExitUsage, "", "secret", "get", "app/canary", "--version", "1", "--stage", "current")
	r.must(clibase.ExitNotFound, "", "secret", "get", "app/canary", "--version", "99")
	r.must(clibase.ExitFailure, "", "secret", "get", "app/canary", "--version", "3")
	r.must(clibase.ExitUsage, "", "-o", "yaml", "secret", "get", "app/canary")
	wrongKey := map[string]string{keyring.EnvVar: "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}
	for _, args := range [][]string{{"secret", "get", "app/canary"}, {"secret", "put", "app/canary"}, {"keys", "list"}} {
		if inv := r.run(canary, wrongKey, args...); inv.code != clibase.ExitUsage {
			t.Fatalf("passman %s with a wrong key: exit %d, want %d", strings.Join(args, " "), inv.code, clibase.ExitUsage)
		}
	}
	for _, path := range commandPaths(newRootCmd(&app{State: &clibase.State{}})) {
		r.must(clibase.ExitOK, "", append(path, "--help")...)
	}

	// The server: a dev server started in-process serves the value to the
	// remote commands; its log and output must not hold it either.
	serverOut, serverLog, remoteReveals := runDevServer(t, r, canary)
	reveals = append(reveals, remoteReveals...)

	// The value must show up only in the reveals.
	revealed := map[*invocation]bool{}
	for i := range r.log {
		for _, rv := range reveals {
			if strings.Join(r.log[i].args, "\x00") == strings.Join(rv.args, "\x00") {
				revealed[&r.log[i]] = true
			}
		}
	}
	forms := leakForms(canary)
	for i := range r.log {
		inv := &r.log[i]
		cmdline := "passman " + strings.Join(inv.args, " ")
		if f := findLeak(inv.stderr, forms); f != "" {
			t.Errorf("%s: value on stderr (%s): %q", cmdline, f, inv.stderr)
		}
		if f := findLeak(inv.stdout, forms); !revealed[inv] && f != "" {
			t.Errorf("%s: value on stdout (%s): %q", cmdline, f, inv.stdout)
		}
	}
	for name, out := range map[string]string{"server output": serverOut, "server log": serverLog} {
		if f := findLeak(out, forms); f != "" {
			t.Errorf("%s holds the value (%s):\n%s", name, f, out)
		}
	}
	storeDir := r.env[envStore]
	for _, name := range []string{core.AuditFile, core.KeyFile, core.DBFile} {
		b, err := os.ReadFile(filepath.Join(storeDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if f := findLeak(string(b), forms); f != "" {
			t.Errorf("%s holds the value in plaintext (%s)", name, f)
		}
	}
	if len(r.log) < 120 {
		t.Errorf("only %d invocations ran; the command list shrank?", len(r.log))
	}
}

// leakForms are the encodings of a value a leak may take: the value
// itself, base64 (padded or not, standard or URL alphabet) and hex.
func leakForms(v string) map[string]string {
	return map[string]string{
		"literal":   v,
		"base64":    strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(v)), "="),
		"base64url": strings.TrimRight(base64.URLEncoding.EncodeToString([]byte(v)), "="),
		"hex":       hex.EncodeToString([]byte(v)),
		"upper hex": strings.ToUpper(hex.EncodeToString([]byte(v))),
	}
}

// findLeak names the form of the value s holds, "" if none.
func findLeak(s string, forms map[string]string) string {
	for name, f := range forms {
		if strings.Contains(s, f) {
			return name
		}
	}
	return ""
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// runDevServer runs 'passman server --dev' in-process, drives it with
// remote commands (recorded in r's log) that put the value, reveal it and
// hand it where it does not belong, stops it as Ctrl-C would, and returns
// what the server printed and logged and the remote reveals.
func runDevServer(t *testing.T, r *runner, canary string) (stdout, stderr string, reveals []invocation) {
	t.Helper()
	home := t.TempDir()
	d := startDevServer(t, home, "--log-level", "debug")
	// The remote commands share r's log, so the checks cover them.
	saved := r.env
	r.env = map[string]string{"HOME": home}
	for k, v := range d.exports {
		r.env[k] = v
	}
	defer func() { r.env = saved }()

	r.must(clibase.ExitOK, canary, "secret", "put", "app/canary", "--owner", "team")
	r.must(clibase.ExitOK, canary, "secret", "put", "app/canary", "-o", "json")
	reveals = append(reveals,
		r.must(clibase.ExitOK, "", "secret", "get", "app/canary", "--version", "1"),
		r.must(clibase.ExitOK, "", "secret", "get", "app/canary", "--version", "2", "-o", "json"))
	for _, format := range []string{"text", "json"} {
		r.must(clibase.ExitOK, "", "secret", "list", "-o", format)
		r.must(clibase.ExitOK, "", "secret", "history", "app/canary", "-o", format)
		r.must(clibase.ExitOK, "", "secret", "meta", "app/canary", "-o", format)
		r.must(clibase.ExitOK, "", "audit", "tail", "-n", "50", "-o", format)
		r.must(clibase.ExitOK, "", "audit", "verify", "-o", format)
		r.must(clibase.ExitOK, "", "token", "list", "-o", format)
		r.must(clibase.ExitOK, "", "status", "-o", format)
	}
	tok := strings.TrimSpace(r.must(clibase.ExitOK, "", "token", "create", "--identity", "ci", "--claim", "role=reader", "--ttl", "1h").stdout)
	if inv := r.run("", map[string]string{envToken: tok}, "token", "lookup"); inv.code != clibase.ExitOK {
		t.Fatalf("remote token lookup: %+v", inv)
	}
	r.must(clibase.ExitOK, "", "fingerprints", "export", "--file", "-")
	r.must(clibase.ExitOK, "", "secret", "destroy", "app/canary", "--versions", "1")
	// Failures with the value where it does not belong.
	r.must(clibase.ExitFailure, canary, "secret", "put", "app/canary", "--cas", "1")
	r.must(clibase.ExitUsage, canary, "secret", "put", "app/../canary")
	r.must(clibase.ExitUsage, "", "secret", "put", "app/canary", "--value", canary)
	r.must(clibase.ExitUsage, "", "token", "revoke", canary)
	for _, args := range [][]string{{"secret", "get", "app/canary"}, {"secret", "list"}, {"token", "lookup"}} {
		if inv := r.run("", map[string]string{envToken: canary}, args...); inv.code == clibase.ExitOK {
			t.Fatalf("passman %s with the value as token: %+v", strings.Join(args, " "), inv)
		}
	}

	d.stop(t)
	if !strings.Contains(d.errb.String(), `"route":"secret.put"`) {
		t.Fatalf("the server logged no request:\n%s", d.errb.String())
	}
	return d.out.String(), d.errb.String(), reveals
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

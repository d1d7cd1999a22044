package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildBoth builds the front and the full program into one directory, as
// make build and a release install them.
func buildBoth(t *testing.T) (front, fullProg string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not installed")
	}
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), ".", "../passman-full").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ext := ""
	if runtime.GOOS == "windows" {
		ext = ".exe"
	}
	return filepath.Join(dir, "passman"+ext), filepath.Join(dir, full+ext)
}

type result struct {
	stdout, stderr string
	code           int
}

func runProg(t *testing.T, prog, dir string, env []string, stdin string, args []string) result {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %q: %v", prog, args, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

func git(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %q: %v\n%s", args, err, out)
	}
}

// A GitHub token gitleaks' rules find; made up.
const leak = "token = \"ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A\"\n"

// TestFrontAnswersAsTheFullProgram runs each invocation through the front
// and directly through the full program: what the front serves itself and
// what it hands over must both be byte for byte what the full program
// answers, exit code included.
func TestFrontAnswersAsTheFullProgram(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	front, fullProg := buildBoth(t)
	tmp := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + tmp,
		"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache"),
		"XDG_DATA_HOME=" + filepath.Join(tmp, "data"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
	}
	if runtime.GOOS == "windows" {
		env = append(env, "SystemRoot="+os.Getenv("SystemRoot"), "USERPROFILE="+tmp, "LOCALAPPDATA="+filepath.Join(tmp, "cache"))
	}

	clean := filepath.Join(tmp, "clean")
	leaky := filepath.Join(tmp, "leaky")
	repo := filepath.Join(tmp, "repo")
	for _, d := range []string{clean, leaky, repo} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(clean, "a.txt"), "nothing here\n")
	write(filepath.Join(leaky, "a.txt"), "nothing here\n")
	write(filepath.Join(leaky, "config.py"), leak)
	git(t, repo, env, "init", "-q", "-b", "main")
	write(filepath.Join(repo, "README"), "hello\n")
	git(t, repo, env, "add", ".")
	git(t, repo, env, "commit", "-qm", "one")
	write(filepath.Join(repo, "config.py"), leak)
	git(t, repo, env, "add", ".")
	git(t, repo, env, "commit", "-qm", "two")
	write(filepath.Join(repo, "staged.py"), strings.ReplaceAll(leak, "token", "other"))
	git(t, repo, env, "add", "staged.py")
	leakFile := filepath.Join(leaky, "config.py")

	cacheFile := filepath.Join(tmp, "cache.db")
	cases := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"--version"}},
		{"", []string{"version"}},
		{"", []string{"version", "-o", "json"}},
		{"", []string{"-o", "json", "version"}},
		{"", []string{"version", "extra"}},
		{"", []string{"scan", "file", "-"}},
		{leak, []string{"scan", "file", "-"}},
		{leak, []string{"scan", "file", "-", "-o", "json"}},
		{leak, []string{"scan", "file", "-", "--format", "sarif"}},
		{leak, []string{"scan", "file", "-", "-o", "sarif"}},
		{leak, []string{"scan", "file", "-", "--format", "junit"}},
		{leak, []string{"scan", "file", "-", "--rules", "gitleaks", "--show-secrets"}},
		{"", []string{"scan", "file", leakFile}},
		{"", []string{"scan", "file", filepath.Join(tmp, "missing")}},
		{"", []string{"scan", "dir", clean}},
		{"", []string{"scan", "dir", leaky, "-o", "json"}},
		{"", []string{"scan", "dir", leaky, "--format", "sarif"}},
		{"", []string{"scan", "git", repo, "--no-cache"}},
		{"", []string{"scan", "git", repo, "--no-cache", "-o", "json"}},
		{"", []string{"scan", "git", repo, "--no-cache", "--range", "HEAD~1..HEAD", "--format", "sarif"}},
		{"", []string{"scan", "git", repo, "--cache-file", cacheFile}},
		{"", []string{"scan", "git", clean, "--no-cache"}},
		{"", []string{"scan", "staged", repo}},
		{"", []string{"scan", "staged", repo, "-o", "json"}},
		// usage errors, the front's own and those it hands over
		{"", []string{"scan", "file", "-", "--format", "bad"}},
		{"", []string{"scan", "file", "-", "--rules", "bad"}},
		{"", []string{"scan", "file", "-", "--show-secrets", "--format", "sarif"}},
		{"", []string{"scan", "file"}},
		{"", []string{"scan", "file", "a", "b"}},
		{"", []string{"scan", "file", "-", "--bogus"}},
		{"", []string{"-o", "yaml", "scan", "file", "-"}},
		{"", []string{"scan", "bogus"}},
		{"", []string{"bogus"}},
		{"", []string{"--bogus"}},
		{"", nil},
		{"", []string{"--help"}},
		{"", []string{"scan", "--help"}},
		{"", []string{"scan", "file", "-h"}},
		{"", []string{"scan"}},
		{"", []string{"completion", "bash"}},
		// the store's part: flags and commands the front hands over
		{"", []string{"scan", "file", "-", "--managed"}},
		{"", []string{"scan", "file", "-", "--index", filepath.Join(tmp, "missing.idx")}},
		{"", []string{"scan", "file", "-", "--respond"}},
		{"", []string{"scan", "file", "-", "--index", "x", "--managed"}},
		{"", []string{"--store", filepath.Join(tmp, "store"), "scan", "file", "-"}},
		{"", []string{"secret", "list", "--store", filepath.Join(tmp, "store")}},
		{"", []string{"policy", "--help"}},
	}
	for _, c := range cases {
		// Each program starts from the same (no) scan cache: a second
		// run would report the first one's commits as cached.
		os.Remove(cacheFile)
		got := runProg(t, front, tmp, env, c.stdin, c.args)
		os.Remove(cacheFile)
		want := runProg(t, fullProg, tmp, env, c.stdin, c.args)
		if got != want {
			t.Errorf("passman %q:\nfront: exit %d\nstdout:\n%s\nstderr:\n%s\nfull:  exit %d\nstdout:\n%s\nstderr:\n%s",
				c.args, got.code, got.stdout, got.stderr, want.code, want.stdout, want.stderr)
		}
	}
	// The table must exercise what it claims to: findings, clean runs and
	// usage errors answered by the front.
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"scan", "dir", leaky}, 1},
		{[]string{"scan", "dir", clean}, 0},
		{[]string{"scan", "staged", repo}, 1},
		{[]string{"scan", "file", "-", "--format", "bad"}, 2},
	} {
		if got := runProg(t, front, tmp, env, "", c.args); got.code != c.code {
			t.Errorf("passman %q: exit %d, want %d: %s", c.args, got.code, c.code, got.stderr)
		}
	}
}

// TestFrontWithoutFullProgram: a front installed alone says what is
// missing and how to get it, and still scans.
func TestFrontWithoutFullProgram(t *testing.T) {
	front, _ := buildBoth(t)
	alone := filepath.Join(t.TempDir(), filepath.Base(front))
	data, err := os.ReadFile(front)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()}
	got := runProg(t, alone, t.TempDir(), env, "", []string{"secret", "list"})
	if got.code != 2 || !strings.Contains(got.stderr, "passman-full") || !strings.Contains(got.stderr, "make build") {
		t.Errorf("without passman-full: exit %d, stderr %q", got.code, got.stderr)
	}
	got = runProg(t, alone, t.TempDir(), env, "", []string{"scan", "file", "-"})
	if got.code != 0 || got.stderr != "" {
		t.Errorf("scan without passman-full: exit %d, stderr %q", got.code, got.stderr)
	}
	// A copy of the front named passman-full is refused, not run in a loop.
	if err := os.WriteFile(filepath.Join(filepath.Dir(alone), full+filepath.Ext(front)), data, 0o755); err != nil {
		t.Fatal(err)
	}
	got = runProg(t, alone, t.TempDir(), env, "", []string{"secret", "list"})
	if got.code != 2 || !strings.Contains(got.stderr, "is this passman front itself") {
		t.Errorf("front as passman-full: exit %d, stderr %q", got.code, got.stderr)
	}
}

// TestFrontLinksLittle guards the front's start-up and resident size:
// none of the store, server, policy or rotation machinery, nor the
// libraries they bring (etcd, gRPC, OPA, Prometheus, pgx, go-github).
func TestFrontLinksLittle(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not installed")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"go.etcd.io/etcd", "google.golang.org/grpc", "github.com/open-policy-agent",
		"github.com/prometheus", "github.com/jackc/pgx", "github.com/google/go-github",
		"github.com/styrainc/regal",
	}
	for _, p := range []string{"core", "server", "client", "policy", "rotation", "store", "audit", "cli"} {
		forbidden = append(forbidden, "github.com/passman-dev/passman/"+p)
	}
	seen := 0
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/passman-dev/passman/scanner") {
			seen++
		}
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("the front links %s", pkg)
			}
		}
	}
	if seen == 0 {
		t.Fatalf("go list -deps names no scanner package: %s", out)
	}
}

package action

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/githubfake"
	"github.com/passman-dev/passman/internal/oidctest"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
)

// awsKey is a canary gitleaks' aws-access-token rule finds; split so
// this file is not itself a finding.
var awsKey = "AKIA" + "QYLPMN5HHHFPZAM2"

// step is a GitHub Actions step's environment: the runner's files in a
// temporary directory, inputs as INPUT_* variables.
type step struct {
	t    *testing.T
	dir  string
	vars map[string]string
	out  strings.Builder
}

func newStep(t *testing.T, workspace string) *step {
	t.Helper()
	dir := t.TempDir()
	s := &step{t: t, dir: dir, vars: map[string]string{
		"GITHUB_ACTIONS":      "true",
		"GITHUB_OUTPUT":       filepath.Join(dir, "output"),
		"GITHUB_ENV":          filepath.Join(dir, "env"),
		"GITHUB_STATE":        filepath.Join(dir, "state"),
		"GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary.md"),
		"RUNNER_TEMP":         filepath.Join(dir, "runner-temp"),
		"GITHUB_WORKSPACE":    workspace,
		"GITHUB_REPOSITORY":   "acme/widgets",
		"INPUT_CACHE-FILE":    "none",
	}}
	if err := os.Mkdir(s.vars["RUNNER_TEMP"], 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

// input sets an input as the runner does: INPUT_ and the upper-case
// name, hyphens kept.
func (s *step) input(name, value string) *step {
	s.vars["INPUT_"+strings.ToUpper(name)] = value
	return s
}

func (s *step) event(name string, payload any) *step {
	b, err := json.Marshal(payload)
	if err != nil {
		s.t.Fatal(err)
	}
	p := filepath.Join(s.dir, "event.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.vars["GITHUB_EVENT_NAME"], s.vars["GITHUB_EVENT_PATH"] = name, p
	return s
}

func (s *step) run(phase string) int {
	s.t.Helper()
	s.out.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return Main(ctx, []string{phase}, Env{Getenv: func(k string) string { return s.vars[k] }, Stdout: &s.out})
}

func (s *step) file(name string) string {
	b, err := os.ReadFile(s.vars[name])
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	return string(b)
}

// fileCommands parses a runner file command ($GITHUB_OUTPUT, $GITHUB_ENV)
// the way the runner does: NAME=VALUE lines and NAME<<DELIM blocks.
func fileCommands(t *testing.T, content string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(content, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var vals []string
			closed := false
			for i++; i < len(lines); i++ {
				if lines[i] == delim {
					closed = true
					break
				}
				vals = append(vals, lines[i])
			}
			if !closed {
				t.Fatalf("file command %s: no closing delimiter", name)
			}
			out[name] = strings.Join(vals, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("file command line %q is neither NAME=VALUE nor NAME<<DELIM", line)
		}
		out[name] = val
	}
	return out
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=Dev",
		"GIT_COMMITTER_EMAIL=dev@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func commit(t *testing.T, dir, file, content, msg string) string {
	t.Helper()
	p := filepath.Join(dir, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

// origin is a bare repository with main (two clean commits) and feature
// (a leak, then a clean commit), as GitHub holds a pull request.
type origin struct {
	bare       string
	main, head string
	leak       string // the commit that adds the leak
}

func newOrigin(t *testing.T) origin {
	t.Helper()
	root := t.TempDir()
	o := origin{bare: filepath.Join(root, "origin.git")}
	git(t, root, "init", "-q", "--bare", "-b", "main", o.bare)
	work := filepath.Join(root, "work")
	git(t, root, "clone", "-q", o.bare, work)
	commit(t, work, "README.md", "# widgets\n", "readme")
	o.main = commit(t, work, "main.go", "package main\n", "code")
	git(t, work, "checkout", "-q", "-b", "feature")
	o.leak = commit(t, work, "deploy/config.env", "REGION=eu-west-1\nAWS_ACCESS_KEY_ID="+awsKey+"\n", "config")
	o.head = commit(t, work, "docs/notes.md", "notes\n", "notes")
	git(t, work, "push", "-q", "origin", "main", "feature")
	return o
}

// checkout clones origin as actions/checkout does: shallow (depth 1) at
// ref, unless depth is 0.
func (o origin) checkout(t *testing.T, ref string, depth int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "checkout")
	args := []string{"clone", "-q", "--no-tags", "--branch", ref}
	if depth > 0 {
		args = append(args, fmt.Sprintf("--depth=%d", depth))
	}
	git(t, ".", append(args, "file://"+o.bare, dir)...)
	return dir
}

func prPayload(o origin, number int, fork bool) map[string]any {
	headRepo := "acme/widgets"
	if fork {
		headRepo = "mallory/widgets"
	}
	return map[string]any{
		"number": number,
		"pull_request": map[string]any{
			"number":  number,
			"commits": 2,
			"base":    map[string]any{"sha": o.main, "ref": "main", "repo": map[string]any{"full_name": "acme/widgets"}},
			"head":    map[string]any{"sha": o.head, "ref": "feature", "repo": map[string]any{"full_name": headRepo, "fork": fork}},
		},
		"repository": map[string]any{"full_name": "acme/widgets", "default_branch": "main"},
	}
}

// passmanServer is a real passman server (core store, HTTP API over TLS)
// that exchanges ID tokens from iss for the repository acme/widgets, which
// its policy lets do anything under ci/ (read, list, rotate: a leak
// response) and list the store (a plan); the store's creator may do
// everything.
type passmanServer struct {
	URL, CAFile string
	Local       *core.Local
	Audience    string
}

const testAuthPolicy = `package passman.authz

allow if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "acme/widgets"
	startswith(input.path, "ci/")
}

# passman plan lists the whole store (drift): paths and metadata only.
allow if {
	input.subject.kind == "github-oidc"
	input.subject.claims.repository == "acme/widgets"
	input.action == "list"
}
`

func newPassmanServer(t *testing.T, iss *oidctest.Issuer) *passmanServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pol, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "ci.rego"), []byte(testAuthPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := core.Options{Dir: filepath.Join(dir, "store"), Actor: "admin", AuditSync: audit.SyncWrite, PolicyDir: pol}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	local, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ps := &passmanServer{Local: local, Audience: "passman-test"}
	var oidc *server.OIDC
	if iss != nil {
		if oidc, err = server.NewOIDC(server.OIDCConfig{Issuer: iss.URL, Audience: ps.Audience, HTTPClient: iss.Client()}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewUnstartedServer(server.New(local, server.Options{OIDC: oidc, Logger: slog.New(slog.DiscardHandler)}))
	srv.StartTLS()
	ps.URL = srv.URL
	ps.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ps.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		_ = local.Close()
	})
	return ps
}

func (ps *passmanServer) put(t *testing.T, path, value string) {
	t.Helper()
	if _, err := ps.Local.Put(context.Background(), path, secret.NewValue([]byte(value)), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// idTokenEndpoint stands in for the Actions runtime's ID-token service
// (ACTIONS_ID_TOKEN_REQUEST_URL): it answers {"value": <ID token>} for the
// audience asked, minted by iss for repo, to a request bearing reqToken.
func idTokenEndpoint(t *testing.T, iss *oidctest.Issuer, repo, reqToken string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+reqToken {
			http.Error(w, "bad request token", http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		tok := iss.Sign(t, oidctest.RS256, iss.GitHubClaims(repo, aud, time.Now()))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"value": tok})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/token?api-version=2.0"
}

// Tokens of the emulated GitHub: the workflow's, and a fork's (read-only).
// Long, like GitHub's: the action masks the token it is given.
const (
	tokenRW = "ghs_workflowTokenReadWrite0123456789"
	tokenRO = "ghs_forkTokenReadOnly0123456789abcde"
)

// newGitHub is the emulated GitHub API with acme/widgets and its pull
// request 7; tokenRW is the workflow's token, tokenRO a fork's.
func newGitHub(t *testing.T) *githubfake.Server {
	t.Helper()
	gh := githubfake.New()
	t.Cleanup(gh.Close)
	gh.AddToken(tokenRW, "github-actions[bot]", false)
	gh.AddToken(tokenRO, "github-actions[bot]", true)
	gh.AddRepo("acme", "widgets")
	gh.AddPullRequest("acme", "widgets", 7)
	return gh
}

func newGH(getenv func(string) string, w *strings.Builder) *githubactions.Action {
	return githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(w))
}

// filepathGlobRead concatenates the non-test Go files matching pattern.
func filepathGlobRead(pattern string) (string, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.Write(src)
	}
	return b.String(), nil
}

var inputCall = regexp.MustCompile(`(?:input|boolInput|relInput)\("([a-z-]+)"`)

// inputNames lists the inputs the source reads.
func inputNames(src string) []string {
	var out []string
	for _, m := range inputCall.FindAllStringSubmatch(src, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

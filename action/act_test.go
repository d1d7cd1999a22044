package action

// The end-to-end suite: nektos/act runs action.yml (node24, host mode:
// -P ubuntu-latest=-self-hosted) on real events against real git
// repositories, a real passman server exchanging ID tokens from a local
// OIDC issuer, and the GitHub API emulated by internal/githubfake (GitHub
// itself cannot be reached from a test). Everything is local: the action
// is used as `uses: ./_action`, copied into the workspace by the job's
// first step as actions/checkout would, so act pulls no image and clones
// no action.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/internal/oidctest"
)

// actBinary finds act: $PASSMAN_ACT, the project's .tools/act (make
// installs it), or PATH. Without it the suite skips, loudly, unless
// PASSMAN_REQUIRE_ACT=1 (set by the Makefile) makes that a failure.
func actBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		// Host mode runs the action's JavaScript with the host's node.
		if os.Getenv("PASSMAN_REQUIRE_ACT") == "1" {
			t.Fatal("the act suite needs node on PATH (scripts/deps.sh installs nodejs)")
		}
		t.Skip("SKIPPED: the act end-to-end suite needs node on PATH")
	}
	for _, p := range []string{os.Getenv("PASSMAN_ACT"), filepath.Join("..", ".tools", "act")} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				abs, _ := filepath.Abs(p)
				return abs
			}
		}
	}
	if p, err := exec.LookPath("act"); err == nil {
		return p
	}
	if os.Getenv("PASSMAN_REQUIRE_ACT") == "1" {
		t.Fatal("nektos/act is required (PASSMAN_REQUIRE_ACT=1) but not found: run scripts/install-act.sh")
	}
	t.Skip("SKIPPED: the act end-to-end suite needs nektos/act (scripts/install-act.sh installs it into .tools/)")
	return ""
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// passmanBinary builds cmd/passman once for the suite, and passman-full
// and passman-regal beside it, where a release installs them and passman
// looks.
func passmanBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "passman-act-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "passman")
		out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../cmd/passman", "../cmd/passman-full", "../cmd/passman-regal").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build passman: %v", buildErr)
	}
	return builtBin
}

// actionSource is the action as a user's workflow gets it: action.yml and
// its scripts.
func actionSource(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"action.yml", "action/js/main.js", "action/js/post.js", "action/js/binary.js", "action/release.json"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type actRun struct {
	event    string
	payload  any
	workflow string
	env      map[string]string
}

// act runs one workflow and returns act's whole output and whether the
// job succeeded.
func runAct(t *testing.T, act string, r actRun) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	wf := filepath.Join(dir, ".github", "workflows", "test.yml")
	if err := os.MkdirAll(filepath.Dir(wf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wf, []byte(r.workflow), 0o644); err != nil {
		t.Fatal(err)
	}
	// act names the repository after the directory's origin remote.
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "remote", "add", "origin", "https://github.com/acme/widgets.git")
	commit(t, dir, "README.md", "act\n", "init")
	ev, err := json.Marshal(r.payload)
	if err != nil {
		t.Fatal(err)
	}
	evPath := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(evPath, ev, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{r.event, "-C", dir, "-W", wf, "-e", evPath, "-P", "ubuntu-latest=-self-hosted", "--no-cache-server", "--env-file", os.DevNull, "--secret-file", os.DevNull}
	for k, v := range r.env {
		args = append(args, "--env", k+"="+v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, act, args...)
	cmd.Dir = dir
	// Without TestMain's passman-regal: the one built beside passman
	// must be found.
	cmd.Env = append(environWithoutRegal(), "ACT_DISABLE_VERSION_CHECK=1", "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("act timed out:\n%s", out.String())
	}
	return out.String(), err == nil
}

const actScanStep = `
      - name: checkout
        run: cp -a "$CHECKOUT/." . && mkdir -p _action && cp -a "$ACTSRC/." _action/
      - uses: ./_action
        id: scan
        continue-on-error: ${{ env.SCAN_MAY_FAIL == 'true' }}
        with:
          command: scan
          binary: ${{ env.PASSMAN_BIN }}
          github-token: ${{ env.GH_TOKEN }}
          api-url: ${{ env.FAKE_API }}
          cache-file: none
      - run: echo "scan findings=${{ steps.scan.outputs.findings }} outcome=${{ steps.scan.outcome }}" && test -s "${{ steps.scan.outputs.sarif }}"
`

const actSecretsSteps = `
      - uses: ./_action
        id: secrets
        with:
          command: secrets
          binary: ${{ env.PASSMAN_BIN }}
          server: ${{ env.PASSMAN_SERVER }}
          ca-cert: ${{ env.PASSMAN_CA }}
          audience: passman-test
          export: env,output,file
          secrets: |
            ci/db/password > DB_PASSWORD
            ci/app/config > APP_CONFIG
      - run: |
          echo "env: $DB_PASSWORD"
          echo "output: ${{ steps.secrets.outputs.DB_PASSWORD }}"
          echo "file:"; cat "$DB_PASSWORD_FILE"; echo
          printf '%s\n' "$DB_PASSWORD" | sed -n 2p
          echo "$APP_CONFIG" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("leaf:", d["pass"], d["nested"]["keys"][0])'
          stat -c 'mode %a' "$DB_PASSWORD_FILE"
`

func TestAct(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the act suite runs on Linux hosts")
	}
	act := actBinary(t)
	bin := passmanBinary(t)
	src := actionSource(t)
	o := newOrigin(t)
	gh := newGitHub(t)
	iss := oidctest.New(t)
	ps := newPassmanServer(t, iss)
	for p, v := range deliveryValues {
		ps.put(t, p, v)
	}
	env := func(checkout string, extra ...string) map[string]string {
		m := map[string]string{
			"CHECKOUT": checkout, "ACTSRC": src, "PASSMAN_BIN": bin, "FAKE_API": gh.URL, "GH_TOKEN": tokenRW,
			"PASSMAN_SERVER": ps.URL, "PASSMAN_CA": ps.CAFile,
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	canaries := []string{awsKey, "canary-pw-7Hq2", "second-line-Zr9", "padded-line-Qx4", "json-leaf-canary-Lp3", "deep-canary-Vb8"}
	clean := func(t *testing.T, out string) {
		t.Helper()
		for _, c := range canaries {
			if strings.Contains(out, c) {
				t.Errorf("%q appears unmasked in act's output", c)
			}
		}
	}
	push := func(before string) map[string]any {
		return map[string]any{"before": before, "after": o.head, "ref": "refs/heads/feature", "repository": map[string]any{"full_name": "acme/widgets", "default_branch": "main"}}
	}
	pushWorkflow := "on: push\njobs:\n  scan:\n    runs-on: ubuntu-latest\n    steps:" + actScanStep

	t.Run("pull_request", func(t *testing.T) {
		reqURL := idTokenEndpoint(t, iss, "acme/widgets", "runtime-token")
		out, ok := runAct(t, act, actRun{
			event: "pull_request", payload: prPayload(o, 7, false),
			workflow: "on: pull_request\njobs:\n  pr:\n    runs-on: ubuntu-latest\n    steps:" + actScanStep + actSecretsSteps,
			env: env(o.checkout(t, "feature", 1), "SCAN_MAY_FAIL", "true",
				"ACTIONS_ID_TOKEN_REQUEST_URL", reqURL, "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-token"),
		})
		if !ok {
			t.Fatalf("job failed:\n%s", out)
		}
		for _, want := range []string{"scan findings=1 outcome=failure", "title=passman%3A aws-access-token", "env: ***", "output: ***", "leaf: *** ***", "mode 600", "revoked the job's token"} {
			if !strings.Contains(out, want) {
				t.Errorf("act output lacks %q", want)
			}
		}
		clean(t, out)
		cs := gh.Comments("acme", "widgets", 7)
		if len(cs) != 1 || !strings.HasPrefix(cs[0].Body, commentMarker("scan")) {
			t.Fatalf("comments: %+v", cs)
		}
		for _, c := range canaries {
			if strings.Contains(cs[0].Body, c) {
				t.Errorf("%q in the comment", c)
			}
		}
		tokens, err := ps.Local.ListTokens(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, tk := range tokens {
			if strings.HasPrefix(tk.Identity, "repo:acme/widgets") {
				n++
				if tk.RevokedAt.IsZero() {
					t.Errorf("the job's token %s outlived the job", tk.Accessor)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d OIDC tokens issued, want 1", n)
		}
		if t.Failed() {
			t.Logf("act output:\n%s", out)
		}
	})

	for name, tc := range map[string]struct {
		before, want string
	}{
		"push":       {o.main, "passman scan: push "},
		"new branch": {zeroSHA, "new branch, compared with main"},
		"force push": {strings.Repeat("e", 40), "force push whose previous tip eeeeeeeeeeee is gone"},
	} {
		t.Run(name, func(t *testing.T) {
			out, ok := runAct(t, act, actRun{event: "push", payload: push(tc.before), workflow: pushWorkflow, env: env(o.checkout(t, "feature", 1))})
			if ok || !strings.Contains(out, tc.want) || !strings.Contains(out, "1 leaks found") {
				t.Fatalf("job succeeded=%v, want a failure with %q:\n%s", ok, tc.want, out)
			}
			clean(t, out)
		})
	}
	t.Run("push of nothing new", func(t *testing.T) {
		p := push(o.head)
		out, ok := runAct(t, act, actRun{event: "push", payload: p, workflow: pushWorkflow, env: env(o.checkout(t, "feature", 1))})
		if !ok || !strings.Contains(out, "scan findings=0") {
			t.Fatalf("job failed:\n%s", out)
		}
	})

	// policy lints through passman-regal, which the binary input's passman
	// finds beside itself: without it the step fails.
	t.Run("policy", func(t *testing.T) {
		wf := `on: push
jobs:
  policy:
    runs-on: ubuntu-latest
    steps:
      - name: checkout
        run: cp -a "$CHECKOUT/." . && mkdir -p _action && cp -a "$ACTSRC/." _action/
      - uses: ./_action
        id: policy
        with:
          command: policy
          binary: ${{ env.PASSMAN_BIN }}
          policies: policies
          manifest: passman.yaml
          api-url: ${{ env.FAKE_API }}
      - run: echo "policy failures=${{ steps.policy.outputs.failures }}"
`
		out, ok := runAct(t, act, actRun{event: "push", payload: push(o.head), workflow: wf, env: env(exampleCheckout(t))})
		if !ok || !strings.Contains(out, "policy failures=0") {
			t.Fatalf("job succeeded=%v, want failures=0:\n%s", ok, out)
		}
	})

	t.Run("fork pull request", func(t *testing.T) {
		before := len(gh.Comments("acme", "widgets", 7))
		// A fork's workflow: a read-only token and no ID token.
		out, ok := runAct(t, act, actRun{
			event: "pull_request", payload: prPayload(o, 7, true),
			workflow: "on: pull_request\njobs:\n  pr:\n    runs-on: ubuntu-latest\n    steps:" + actScanStep + actSecretsSteps,
			env:      env(o.checkout(t, "feature", 1), "SCAN_MAY_FAIL", "true", "GH_TOKEN", tokenRO),
		})
		if ok {
			t.Fatalf("secrets succeeded on a fork:\n%s", out)
		}
		// The comment's 403 warning is asserted by TestScanFork: act
		// (v0.2.89) processes a step's workflow commands asynchronously and
		// at times drops the warning that closely follows an add-mask.
		for _, want := range []string{"scan findings=1 outcome=failure", "comes from a fork"} {
			if !strings.Contains(out, want) {
				t.Errorf("act output lacks %q:\n%s", want, out)
			}
		}
		if n := len(gh.Comments("acme", "widgets", 7)); n != before {
			t.Errorf("a fork's run wrote a comment")
		}
		clean(t, out)
	})
}

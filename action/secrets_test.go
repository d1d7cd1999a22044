package action

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/internal/oidctest"
	"github.com/passman-dev/passman/secret"
)

// Values a delivery must never print: multi-line, padded, JSON, and one
// built to break out of go-githubactions' fixed file-command delimiter.
var deliveryValues = map[string]string{
	"ci/db/password": "canary-pw-7Hq2\nsecond-line-Zr9\r\n  padded-line-Qx4  ",
	"ci/app/config":  `{"user":"svc-canary","pass":"json-leaf-canary-Lp3","port":54329,"nested":{"keys":["deep-canary-Vb8"]}}`,
	"ci/evil":        "evil-canary-Mn5\n_GitHubActionsFileCommandDelimeter_\nNODE_OPTIONS=--require=/tmp/x.js",
}

const deliveryMappings = `
ci/db/password > DB_PASSWORD
ci/app/config > APP_CONFIG
ci/evil > EVIL
`

func secretsStep(t *testing.T, ps *passmanServer, iss *oidctest.Issuer) *step {
	s := newStep(t, t.TempDir()).input("command", "secrets").input("server", ps.URL).input("ca-cert", ps.CAFile).
		input("audience", ps.Audience).input("secrets", deliveryMappings)
	if iss != nil {
		s.vars["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "runtime-token"
		s.vars["ACTIONS_ID_TOKEN_REQUEST_URL"] = idTokenEndpoint(t, iss, "acme/widgets", "runtime-token")
	}
	return s.event("push", map[string]any{"before": strings.Repeat("a", 40), "after": strings.Repeat("b", 40)})
}

// maskedBefore checks that every line of every value is registered with
// ::add-mask:: before the value shows anywhere else in the log, and that
// outside add-mask commands it never shows at all.
func maskedBefore(t *testing.T, log string) {
	t.Helper()
	masked := map[string]bool{}
	for _, line := range strings.Split(log, "\n") {
		if m, ok := strings.CutPrefix(line, "::add-mask::"); ok {
			masked[strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace(m)] = true
			continue
		}
		for path, v := range deliveryValues {
			for _, form := range maskForms(v) {
				if len(form) > 6 && strings.Contains(line, form) {
					t.Errorf("a form of %s shows in the log: %q", path, line)
				}
			}
		}
	}
	for path, v := range deliveryValues {
		for _, l := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
			if strings.TrimSpace(l) != "" && (!masked[l] || !masked[strings.TrimSpace(l)]) {
				t.Errorf("line %q of %s not masked", l, path)
			}
		}
	}
	for _, leaf := range []string{"svc-canary", "json-leaf-canary-Lp3", "54329", "deep-canary-Vb8"} {
		if !masked[leaf] {
			t.Errorf("JSON leaf %q not masked", leaf)
		}
	}
}

// TestSecretsOIDC: the job's ID token is exchanged for a passman token,
// the secrets are masked, then exported to the environment, outputs and
// 0600 files under RUNNER_TEMP; the post step revokes the token and
// removes the files.
func TestSecretsOIDC(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	ps := newPassmanServer(t, iss)
	for p, v := range deliveryValues {
		ps.put(t, p, v)
	}
	s := secretsStep(t, ps, iss).input("export", "env, output, file")
	if code := s.run("run"); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	log := s.out.String()
	maskedBefore(t, log)
	env := fileCommands(t, s.file("GITHUB_ENV"))
	outs := fileCommands(t, s.file("GITHUB_OUTPUT"))
	for name, path := range map[string]string{"DB_PASSWORD": "ci/db/password", "APP_CONFIG": "ci/app/config", "EVIL": "ci/evil"} {
		if env[name] != deliveryValues[path] || outs[name] != deliveryValues[path] {
			t.Errorf("%s: env %q output %q", name, env[name], outs[name])
		}
		f := env[name+"_FILE"]
		if !strings.HasPrefix(f, s.vars["RUNNER_TEMP"]+string(os.PathSeparator)) {
			t.Errorf("%s_FILE %q is not under RUNNER_TEMP", name, f)
		}
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s file: %v %v", name, fi, err)
		}
		if b, _ := os.ReadFile(f); string(b) != deliveryValues[path] {
			t.Errorf("%s file holds %q", name, b)
		}
	}
	if _, ok := env["NODE_OPTIONS"]; ok {
		t.Fatalf("a value injected NODE_OPTIONS")
	}
	if strings.Contains(s.file("GITHUB_STEP_SUMMARY"), "canary") {
		t.Errorf("a value reached the summary")
	}
	// The post step gets the state back as STATE_ variables.
	state := fileCommands(t, s.file("GITHUB_STATE"))
	token := state[stateToken]
	if !strings.Contains(log, "::add-mask::"+token) {
		t.Fatalf("the job's passman token was not masked")
	}
	c, err := client.New(client.Options{Addr: ps.URL, CACertFile: ps.CAFile, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupSelf(context.Background()); err != nil {
		t.Fatalf("token before post: %v", err)
	}
	post := newStep(t, t.TempDir()).input("command", "secrets")
	post.vars["RUNNER_TEMP"] = s.vars["RUNNER_TEMP"]
	for k, v := range state {
		post.vars["STATE_"+k] = v
	}
	if code := post.run("post"); code != ExitOK || strings.Contains(post.out.String(), "::warning") {
		t.Fatalf("post: exit %d:\n%s", code, post.out.String())
	}
	if _, err := c.LookupSelf(context.Background()); secret.Class(err) != "unauthenticated" {
		t.Fatalf("token after post: %v, want unauthenticated", err)
	}
	if _, err := os.Stat(filepath.Dir(env["EVIL_FILE"])); !os.IsNotExist(err) {
		t.Errorf("secret files left behind: %v", err)
	}
}

// TestSecretsFork: a fork's pull request has no ID token: the step fails
// saying why, before anything is fetched.
func TestSecretsFork(t *testing.T) {
	t.Parallel()
	ps := newPassmanServer(t, nil)
	o := origin{main: strings.Repeat("a", 40), head: strings.Repeat("b", 40)}
	s := secretsStep(t, ps, nil).event("pull_request", prPayload(o, 7, true))
	if code := s.run("run"); code != ExitError || !strings.Contains(s.out.String(), "from a fork") {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
}

// TestSecretsDenied: a secret the job may not read fails the step, with
// nothing exported; a token input is used as given and not revoked.
func TestSecretsDenied(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	ps := newPassmanServer(t, iss)
	ps.put(t, "prod/db/password", "prod-canary-Kk1")
	s := secretsStep(t, ps, iss).input("secrets", "prod/db/password > DB")
	if code := s.run("run"); code != ExitError || s.file("GITHUB_ENV") != "" || strings.Contains(s.out.String(), "prod-canary") {
		t.Fatalf("exit %d, env %q:\n%s", code, s.file("GITHUB_ENV"), s.out.String())
	}
	for name, in := range map[string][2]string{"bad export": {"export", "env,stdout"}, "bad mapping": {"secrets", "x"}, "no server": {"server", ""}} {
		s := secretsStep(t, ps, iss).input(in[0], in[1])
		if code := s.run("run"); code != ExitError {
			t.Errorf("%s: exit %d", name, code)
		}
	}
}

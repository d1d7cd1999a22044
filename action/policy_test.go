package action

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/internal/oidctest"
)

// copyTree copies the example manifest and policies into a checkout.
func exampleCheckout(t *testing.T) string {
	t.Helper()
	co := filepath.Join(t.TempDir(), "repo")
	for _, f := range []string{"passman.yaml", "policies/teams.rego", "policies/teams_test.rego", "policies/.regal/config.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(co, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return co
}

func policyStep(t *testing.T, co string) *step {
	return newStep(t, filepath.Dir(co)).input("command", "policy").input("path", "repo").input("policies", "policies").
		event("push", map[string]any{"before": strings.Repeat("a", 40), "after": strings.Repeat("b", 40)})
}

// TestPolicyClean: the shipped example passes: tests, lint, manifest lint.
func TestPolicyClean(t *testing.T) {
	t.Parallel()
	s := policyStep(t, exampleCheckout(t))
	if code := s.run("run"); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	sum := s.file("GITHUB_STEP_SUMMARY")
	for _, want := range []string{"**policy test**: 17 passed, 0 failed", "**policy lint**: 0 errors", "**lint** (passman.yaml): 0 deny"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if fileCommands(t, s.file("GITHUB_OUTPUT"))["failures"] != "0" {
		t.Errorf("outputs: %s", s.file("GITHUB_OUTPUT"))
	}
}

// TestPolicyFailures: a failing test, a compile error and a coverage
// minimum are annotated at file:line and fail the step; the comment
// carries the report.
func TestPolicyFailures(t *testing.T) {
	t.Parallel()
	co := exampleCheckout(t)
	failing := "package passman.authz_test\n\nimport data.passman.authz\n\ntest_always_fails if {\n\tauthz.allow with input as {}\n}\n"
	if err := os.WriteFile(filepath.Join(co, "policies", "extra_test.rego"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	gh := newGitHub(t)
	o := origin{main: strings.Repeat("a", 40), head: strings.Repeat("b", 40)}
	s := policyStep(t, co).input("coverage-min", "99.5").input("github-token", tokenRW).input("api-url", gh.URL).event("pull_request", prPayload(o, 7, false))
	if code := s.run("run"); code != ExitFailed {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	log := s.out.String()
	for _, want := range []string{"file=repo/policies/extra_test.rego,line=5,title=policy test%3A test_always_fails", "below coverage-min 99.5%25"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	cs := gh.Comments("acme", "widgets", 7)
	if len(cs) != 1 || !strings.HasPrefix(cs[0].Body, commentMarker("policy")) || !strings.Contains(cs[0].Body, "test_always_fails") {
		t.Fatalf("comments: %+v", cs)
	}
	if code := policyStep(t, co).input("coverage-min", "101").run("run"); code != ExitError {
		t.Errorf("coverage-min 101: exit %d", code)
	}
}

func TestCodeBlock(t *testing.T) {
	t.Parallel()
	got := codeBlock("a ```` b\n")
	if !strings.HasPrefix(got, "`````text\n") || !strings.HasSuffix(got, "\n`````\n") {
		t.Fatalf("%q", got)
	}
}

// TestPolicyPlan: with a server, the job logs in with its ID token and
// the plan of the example manifest goes to the summary and the comment.
func TestPolicyPlan(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	ps := newPassmanServer(t, iss)
	gh := newGitHub(t)
	o := origin{main: strings.Repeat("a", 40), head: strings.Repeat("b", 40)}
	s := policyStep(t, exampleCheckout(t)).input("server", ps.URL).input("ca-cert", ps.CAFile).input("audience", ps.Audience).
		input("github-token", tokenRW).input("api-url", gh.URL).event("pull_request", prPayload(o, 7, false))
	s.vars["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "runtime-token"
	s.vars["ACTIONS_ID_TOKEN_REQUEST_URL"] = idTokenEndpoint(t, iss, "acme/widgets", "runtime-token")
	if code := s.run("run"); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	cs := gh.Comments("acme", "widgets", 7)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "**plan**") || !strings.Contains(cs[0].Body, "+ prod/app/token") {
		t.Fatalf("comment: %+v\nlog:\n%s", cs, s.out.String())
	}
}

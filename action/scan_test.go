package action

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/internal/githubfake"
)

// noCanary fails if the leaked value shows anywhere the action wrote.
func noCanary(t *testing.T, s *step, canary string, extra ...string) {
	t.Helper()
	places := map[string]string{"log": s.out.String(), "summary": s.file("GITHUB_STEP_SUMMARY"), "outputs": s.file("GITHUB_OUTPUT")}
	outs := fileCommands(t, s.file("GITHUB_OUTPUT"))
	for _, k := range []string{"sarif", "report"} {
		if p := outs[k]; p != "" {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			places[k] = string(b)
		}
	}
	for i, e := range extra {
		places["extra"+string(rune('0'+i))] = e
	}
	for where, text := range places {
		if strings.Contains(text, canary) {
			t.Errorf("the leaked value appears in the %s", where)
		}
	}
}

func scanStep(t *testing.T, checkout string, gh *githubfake.Server) *step {
	s := newStep(t, filepath.Dir(checkout)).input("command", "scan").input("path", filepath.Base(checkout))
	if gh != nil {
		s.input("github-token", tokenRW).input("api-url", gh.URL)
	}
	return s
}

// TestScanPullRequest: a shallow checkout of a pull request is deepened,
// the leak in its first commit is found and reported everywhere
// (annotation, summary, SARIF, JSON, one comment updated in place),
// redacted everywhere.
func TestScanPullRequest(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	gh := newGitHub(t)
	// Someone pastes the marker into their own comment: never touched.
	hostile := gh.PostComment("acme", "widgets", 7, "mallory", commentMarker("scan")+"\nall clear!")
	co := o.checkout(t, "feature", 1)
	s := scanStep(t, co, gh).event("pull_request", prPayload(o, 7, false))
	if code := s.run("run"); code != ExitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, ExitFailed, s.out.String())
	}
	log := s.out.String()
	for _, want := range []string{"git fetch", "file=checkout/deploy/config.env,line=2,title=passman%3A aws-access-token::Identified a pattern", "1 leaks found"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	outs := fileCommands(t, s.file("GITHUB_OUTPUT"))
	if outs["findings"] != "1" || outs["new-findings"] != "1" || outs["rotated"] != "false" {
		t.Errorf("outputs %v", outs)
	}
	for _, k := range []string{"sarif", "report"} {
		if !strings.HasPrefix(outs[k], s.vars["RUNNER_TEMP"]) {
			t.Errorf("%s report %q is not under RUNNER_TEMP", k, outs[k])
		}
		if fi, err := os.Stat(outs[k]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s report: %v %v", k, fi, err)
		}
	}
	sarif, _ := os.ReadFile(outs["sarif"])
	if !strings.Contains(string(sarif), `"aws-access-token"`) || !strings.Contains(string(sarif), "deploy/config.env") {
		t.Errorf("SARIF lacks the finding:\n%s", sarif)
	}
	if sum := s.file("GITHUB_STEP_SUMMARY"); !strings.Contains(sum, "| aws-access-token | deploy/config\\.env\\:2 |") || !strings.Contains(sum, "pull request") {
		t.Errorf("summary:\n%s", sum)
	}
	// A second run updates the comment: still one of ours.
	if code := s.run("run"); code != ExitFailed {
		t.Fatalf("second run: exit %d", code)
	}
	cs := gh.Comments("acme", "widgets", 7)
	var ours []githubfake.Comment
	for _, c := range cs {
		if c.ID == hostile {
			if c.Body != commentMarker("scan")+"\nall clear!" {
				t.Errorf("the contributor's comment was changed")
			}
			continue
		}
		ours = append(ours, c)
	}
	if len(ours) != 1 || ours[0].Login != "github-actions[bot]" || !strings.HasPrefix(ours[0].Body, commentMarker("scan")) || !strings.Contains(ours[0].Body, "aws") {
		t.Fatalf("comments: %+v", cs)
	}
	noCanary(t, s, awsKey, ours[0].Body)
}

// TestScanFork: a fork's read-only token cannot comment, and it has no ID
// token for a managed scan: warnings, and the scan by the rules stands.
func TestScanFork(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	gh := newGitHub(t)
	s := scanStep(t, o.checkout(t, "feature", 0), gh).input("github-token", tokenRO).event("pull_request", prPayload(o, 7, true)).
		input("managed", "true").input("respond", "true").input("server", "https://passman.invalid")
	if code := s.run("run"); code != ExitFailed {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	if !strings.Contains(s.out.String(), "::warning::pull request comment skipped") || !strings.Contains(s.out.String(), "::warning::managed secrets not recognised") ||
		len(gh.Comments("acme", "widgets", 7)) != 0 {
		t.Fatalf("log:\n%s", s.out.String())
	}
}

// TestScanShallowNoFetch: without fetching, a shallow checkout fails
// saying which fetch-depth it needs.
func TestScanShallowNoFetch(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	s := scanStep(t, o.checkout(t, "feature", 1), nil).input("fetch-history", "false").event("pull_request", prPayload(o, 7, false))
	if code := s.run("run"); code != ExitError || !strings.Contains(s.out.String(), "fetch-depth: 0") {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
}

// TestScanPush covers the push cases: a normal push, a new branch (zero
// before), a force push whose before is gone, a push of nothing new, a
// deletion, and a scheduled full scan.
func TestScanPush(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	push := func(before, after string, extra ...any) map[string]any {
		p := map[string]any{"before": before, "after": after, "ref": "refs/heads/feature", "repository": map[string]any{"default_branch": "main", "full_name": "acme/widgets"}}
		for i := 0; i+1 < len(extra); i += 2 {
			p[extra[i].(string)] = extra[i+1]
		}
		return p
	}
	gone := strings.Repeat("d", 40)
	for name, tc := range map[string]struct {
		event   string
		payload map[string]any
		depth   int
		code    int
		found   string
		why     string
	}{
		"normal":          {"push", push(o.main, o.head), 1, ExitFailed, "1", "push "},
		"clean push":      {"push", push(o.leak, o.head), 1, ExitOK, "0", "push "},
		"new branch":      {"push", push(zeroSHA, o.head), 1, ExitFailed, "1", "new branch, compared with main"},
		"force push":      {"push", push(gone, o.head, "forced", true), 1, ExitFailed, "1", "force push whose previous tip"},
		"base is head":    {"push", push(o.head, o.head), 1, ExitOK, "0", "added no commit"},
		"deleted":         {"push", push(o.head, zeroSHA, "deleted", true), 1, ExitOK, "0", "deleted"},
		"schedule":        {"schedule", map[string]any{"schedule": "0 3 * * *"}, 1, ExitFailed, "1", "full history"},
		"dispatch full":   {"workflow_dispatch", map[string]any{}, 0, ExitFailed, "1", "full history"},
		"merge group":     {"merge_group", map[string]any{"merge_group": map[string]any{"base_sha": o.main, "head_sha": o.head}}, 1, ExitFailed, "1", "merge queue"},
		"merge group nil": {"merge_group", map[string]any{"merge_group": map[string]any{"base_sha": o.head, "head_sha": o.head}}, 1, ExitOK, "0", "same commit"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := scanStep(t, o.checkout(t, "feature", tc.depth), nil).event(tc.event, tc.payload)
			code := s.run("run")
			if code != tc.code || !strings.Contains(s.out.String(), tc.why) {
				t.Fatalf("exit %d, want %d; want %q in:\n%s", code, tc.code, tc.why, s.out.String())
			}
			if got := fileCommands(t, s.file("GITHUB_OUTPUT"))["findings"]; got != tc.found {
				t.Errorf("findings %q, want %s", got, tc.found)
			}
			noCanary(t, s, awsKey)
		})
	}
}

// TestScanFailOnAndBaseline: fail-on none reports without failing (as
// warnings); a baseline of the first run's report makes the leak known,
// so fail-on new passes and fail-on any still fails.
func TestScanFailOnAndBaseline(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	co := o.checkout(t, "feature", 0)
	s := scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false)).input("fail-on", "none")
	if code := s.run("run"); code != ExitOK || !strings.Contains(s.out.String(), "::warning col=19,endColumn=38,endLine=2,file=checkout/deploy/config.env,line=2") || strings.Contains(s.out.String(), "::error") {
		t.Fatalf("fail-on none: exit %d:\n%s", code, s.out.String())
	}
	report, err := os.ReadFile(fileCommands(t, s.file("GITHUB_OUTPUT"))["report"])
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(co, "baseline.json")
	if err := os.WriteFile(base, report, 0o600); err != nil {
		t.Fatal(err)
	}
	for failOn, want := range map[string]int{"new": ExitOK, "any": ExitFailed} {
		s := scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false)).input("fail-on", failOn).input("baseline", "baseline.json")
		if code := s.run("run"); code != want {
			t.Errorf("fail-on %s with baseline: exit %d, want %d:\n%s", failOn, code, want, s.out.String())
		}
		if outs := fileCommands(t, s.file("GITHUB_OUTPUT")); outs["findings"] != "1" || outs["new-findings"] != "0" {
			t.Errorf("fail-on %s: outputs %v", failOn, outs)
		}
	}
	if code := scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false)).input("fail-on", "some").run("run"); code != ExitError {
		t.Errorf("bad fail-on: exit %d", code)
	}
}

// TestScanGitleaksIgnore: the repository's .gitleaksignore drops the
// finding, and a change to it in the range is pointed out.
func TestScanGitleaksIgnore(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	co := o.checkout(t, "feature", 0)
	s := scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false)).input("fail-on", "none")
	s.run("run")
	report, _ := os.ReadFile(fileCommands(t, s.file("GITHUB_OUTPUT"))["report"])
	i := strings.Index(string(report), `"Fingerprint": "`)
	if i < 0 {
		t.Fatalf("report:\n%s", report)
	}
	fp := string(report[i+16 : i+16+64])
	if err := os.WriteFile(filepath.Join(co, ".gitleaksignore"), []byte(fp+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false))
	if code := s.run("run"); code != ExitOK {
		t.Fatalf("with .gitleaksignore: exit %d:\n%s", code, s.out.String())
	}
}

func TestScanNotACheckout(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := scanStep(t, dir, nil).event("push", map[string]any{"before": strings.Repeat("a", 40), "after": strings.Repeat("b", 40)})
	if code := s.run("run"); code != ExitError || !strings.Contains(s.out.String(), "actions/checkout") {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	if code := newStep(t, dir).input("command", "deploy").run("run"); code != ExitError {
		t.Fatalf("unknown command: exit %d", code)
	}
}

// TestScanWarnsOnRuleChanges: a pull request that edits the files that
// decide what is reported is pointed out.
func TestScanWarnsOnRuleChanges(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	work := filepath.Join(t.TempDir(), "w")
	git(t, ".", "clone", "-q", "--branch", "feature", o.bare, work)
	commit(t, work, ".gitleaksignore", "deploy/config.env:aws-access-token:2\n", "quiet")
	git(t, work, "push", "-q", "origin", "feature")
	o.head = git(t, work, "rev-parse", "HEAD")
	s := scanStep(t, o.checkout(t, "feature", 0), nil).event("pull_request", prPayload(o, 7, false))
	s.run("run")
	if !strings.Contains(s.out.String(), "::warning::this change edits .gitleaksignore") {
		t.Fatalf("log:\n%s", s.out.String())
	}
}

// TestScanGitleaksConfig: the checkout's .gitleaks.toml is honoured, as
// gitleaks does (here: an allowlist of the deploy directory).
func TestScanGitleaksConfig(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	co := o.checkout(t, "feature", 0)
	cfg := "[extend]\nuseDefault = true\n\n[[allowlists]]\npaths = ['''^deploy/''']\n"
	if err := os.WriteFile(filepath.Join(co, ".gitleaks.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false))
	if code := s.run("run"); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, s.out.String())
	}
	if err := os.WriteFile(filepath.Join(co, ".gitleaks.toml"), []byte("[[rules]]\nid = 'x'\nregex = '''('''\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := s.run("run"); code != ExitError {
		t.Fatalf("a broken config: exit %d:\n%s", code, s.out.String())
	}
}

// TestScanRules: the rules input picks the default rule set, as `passman
// scan --rules` does: passman's own rule names a .env password for what
// it is, gitleaks' rules alone report gitleaks' finding.
func TestScanRules(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	work := filepath.Join(t.TempDir(), "w")
	git(t, ".", "clone", "-q", "--branch", "feature", o.bare, work)
	commit(t, work, "app/.env", "DB_HOST=db.internal\nDB_PASSWORD="+"q8Vz3LmP0tRw7Ky2\n", "env")
	git(t, work, "push", "-q", "origin", "feature")
	o.head = git(t, work, "rev-parse", "HEAD")
	co := o.checkout(t, "feature", 0)
	for rules, want := range map[string]string{"": "passman-dotenv-password", "passman": "passman-dotenv-password", "gitleaks": "generic-api-key"} {
		s := scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false)).input("rules", rules).input("fail-on", "none")
		if code := s.run("run"); code != ExitOK {
			t.Fatalf("rules %q: exit %d:\n%s", rules, code, s.out.String())
		}
		if !strings.Contains(s.out.String(), "file=checkout/app/.env,line=2,title=passman%3A "+want+"::") {
			t.Errorf("rules %q: no %s finding:\n%s", rules, want, s.out.String())
		}
	}
	if code := scanStep(t, co, nil).event("pull_request", prPayload(o, 7, false)).input("rules", "strict").run("run"); code != ExitError {
		t.Errorf("rules strict: exit %d, want %d", code, ExitError)
	}
}

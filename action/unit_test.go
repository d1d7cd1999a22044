package action

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// TestFileCommandInjection: a value holding go-githubactions' fixed
// delimiter (and the lines an attacker would put after it) stays one
// value; a value holding the random delimiter is refused, and so is an
// unsafe name.
func TestFileCommandInjection(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "env")
	fc := newFileCommand(p)
	evil := "x\n_GitHubActionsFileCommandDelimeter_\nLD_PRELOAD=/tmp/evil.so\nBASH_ENV<<EOF\nrm -rf /\nEOF\n"
	if err := fc.set("TOKEN", evil); err != nil {
		t.Fatal(err)
	}
	if err := fc.set("PLAIN", "v"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	got := fileCommands(t, string(b))
	if len(got) != 2 || got["TOKEN"] != evil || got["PLAIN"] != "v" {
		t.Fatalf("parsed %q", got)
	}
	fc.delim = func() (string, error) { return "ghadelimiter_fixed", nil }
	err := fc.set("X", "a\nghadelimiter_fixed\nEVIL=1")
	if err == nil || strings.Contains(err.Error(), "EVIL") {
		t.Fatalf("value containing the delimiter: %v", err)
	}
	for _, name := range []string{"", "A=B", "A<<B", "A\nB"} {
		if err := fc.set(name, "v"); !errors.Is(err, errUnsafeName) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	// Delimiters differ between values.
	a, _ := randomDelimiter()
	b2, _ := randomDelimiter()
	if a == b2 || len(a) < 40 {
		t.Fatalf("delimiters %q %q", a, b2)
	}
}

func TestMaskForms(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		value     string
		want, not []string
	}{
		"multi-line": {value: "line one\nline two\r\n  indented  ", want: []string{"line one\nline two\r\n  indented  ", "line one", "line two", "  indented  ", "indented"}},
		"whitespace": {value: "  padded\t", want: []string{"  padded\t", "padded"}},
		"json leaves": {value: `{"user":"svc","pass":"p@ss\"word","port":5432,"tls":true,"nested":{"k":["deep leaf","a\nb"]}}`,
			want: []string{"svc", `p@ss"word`, `p@ss\"word`, "5432", "deep leaf", "a", "b"}, not: []string{"true", "user", "nested"}},
		"blank lines": {value: "a\n\n   \nb", want: []string{"a", "b"}, not: []string{"", "   "}},
		"json array":  {value: `["x1","x2"]`, want: []string{"x1", "x2"}},
	} {
		got := maskForms(tc.value)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: %q not masked (got %q)", name, w, got)
			}
		}
		for _, n := range tc.not {
			if slices.Contains(got, n) {
				t.Errorf("%s: %q masked", name, n)
			}
		}
	}
	// A hostile document: deep nesting and a huge array stay bounded.
	deep := strings.Repeat("[", 5000) + `"x"` + strings.Repeat("]", 5000)
	_ = maskForms(deep)
	big := "[" + strings.Repeat(`"v",`, 100000) + `"w"]`
	if forms := maskForms(big); !slices.Contains(forms, "w") {
		t.Errorf("large array: last leaf not masked")
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	sha1, sha2 := strings.Repeat("a", 40), strings.Repeat("b", 40)
	pr := `{"number":3,"pull_request":{"number":3,"commits":120,"base":{"sha":"` + sha1 + `","repo":{"full_name":"acme/w"}},"head":{"sha":"` + sha2 + `","repo":{"full_name":"fork/w"}}}}`
	ev, err := parseEvent("pull_request_target", []byte(pr))
	if err != nil || ev.Base != sha1 || ev.Head != sha2 || ev.PR != 3 || ev.Commits != 120 || !ev.Fork {
		t.Fatalf("pull request: %+v %v", ev, err)
	}
	deletedFork := `{"pull_request":{"number":4,"base":{"sha":"` + sha1 + `","repo":{"full_name":"acme/w"}},"head":{"sha":"` + sha2 + `","repo":null}}}`
	if ev, err := parseEvent("pull_request", []byte(deletedFork)); err != nil || !ev.Fork {
		t.Fatalf("deleted fork: %+v %v", ev, err)
	}
	push := `{"before":"` + zeroSHA + `","after":"` + strings.ToUpper(sha2) + `","ref":"refs/heads/x","repository":{"default_branch":"main"}}`
	if ev, err := parseEvent("push", []byte(push)); err != nil || ev.Before != zeroSHA || ev.After != sha2 || ev.DefaultBranch != "main" {
		t.Fatalf("push: %+v %v", ev, err)
	}
	mg := `{"merge_group":{"base_sha":"` + sha1 + `","head_sha":"` + sha2 + `"}}`
	if ev, err := parseEvent("merge_group", []byte(mg)); err != nil || ev.Base != sha1 || ev.Head != sha2 {
		t.Fatalf("merge group: %+v %v", ev, err)
	}
	if ev, err := parseEvent("schedule", []byte(`{"schedule":"0 0 * * *"}`)); err != nil || ev.Base != "" {
		t.Fatalf("schedule: %+v %v", ev, err)
	}
	for name, tc := range map[string]struct{ event, body string }{
		"not json":       {"push", `{`},
		"array":          {"push", `[]`},
		"no pr":          {"pull_request", `{}`},
		"option sha":     {"push", `{"before":"--upload-pack=evil","after":"` + sha2 + `"}`},
		"short sha":      {"push", `{"before":"abc","after":"` + sha2 + `"}`},
		"ref in sha":     {"pull_request", `{"pull_request":{"base":{"sha":"main"},"head":{"sha":"` + sha2 + `"}}}`},
		"no merge group": {"merge_group", `{}`},
	} {
		if _, err := parseEvent(tc.event, []byte(tc.body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	huge := make([]byte, maxEventSize+1)
	if _, err := parseEvent("push", huge); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized payload: %v", err)
	}
	// A missing payload file is an event without payload, not an error.
	if _, err := readEvent("workflow_dispatch", filepath.Join(t.TempDir(), "none.json")); err != nil {
		t.Errorf("missing payload: %v", err)
	}
}

func TestParseMappings(t *testing.T) {
	t.Parallel()
	got, err := parseMappings("# comment\nprod/db/password > DB_PASSWORD\n\n  prod/db/password version=3 >OLD\nprod/api stage=previous > API_PREV\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{path: "prod/db/password", name: "DB_PASSWORD"},
		{path: "prod/db/password", name: "OLD", sel: secret.Selector{Version: 3}},
		{path: "prod/api", name: "API_PREV", sel: secret.Selector{Stage: "previous"}},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v", got)
	}
	for name, in := range map[string]string{
		"empty":          "\n# only a comment\n",
		"no arrow":       "prod/db/password DB",
		"two arrows":     "a > B > C",
		"bad name":       "a > 1X",
		"github name":    "a > GITHUB_TOKEN",
		"runner name":    "a > runner_temp",
		"injected name":  "a > X=1",
		"duplicate":      "a > X\nb > X",
		"bad version":    "a version=0 > X",
		"version word":   "a version=x > X",
		"no path":        " > X",
		"absolute path":  "/etc/passwd > X",
		"control char":   "a\x01b > X",
		"too many lines": strings.Repeat("a/b > X\n", 1) + manyLines(300),
	} {
		if _, err := parseMappings(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func manyLines(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("p/x > V")
		b.WriteString(strings.Repeat("A", i%5))
		b.WriteString(string(rune('A' + i%26)))
		b.WriteString("_" + strings.Repeat("B", i/26) + "\n")
	}
	return b.String()
}

// TestAnnotationChoice: GitHub shows ten annotations per level, so the
// action chooses: managed secrets first, generic-api-key last, newest
// first; the rest are counted in a notice.
func TestAnnotationChoice(t *testing.T) {
	t.Parallel()
	var fs []scanner.Finding
	for i := range 14 {
		fs = append(fs, scanner.Finding{RuleID: "generic-api-key", Description: "Generic", File: "g.txt", StartLine: i + 1, EndLine: i + 1, Date: "2026-01-01T00:00:00Z"})
	}
	fs = append(fs, scanner.Finding{RuleID: "aws-access-token", Description: "AWS", File: "a.env", StartLine: 3, EndLine: 3, Date: "2025-01-01T00:00:00Z"})
	fs = append(fs, scanner.Finding{RuleID: scanner.ManagedRuleID, Description: "Managed", File: "m.env", StartLine: 9, EndLine: 9, Managed: &secret.FingerprintMatch{Path: "prod/db", Version: 2}})
	s := newStep(t, t.TempDir())
	r := &run{gh: nil, getenv: func(k string) string { return s.vars[k] }}
	r.gh = newGH(r.getenv, &s.out)
	r.annotate(fs, fs[:3], "sub")
	out := s.out.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var errs, warns, notices []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "::error "):
			errs = append(errs, l)
		case strings.HasPrefix(l, "::warning "):
			warns = append(warns, l)
		case strings.HasPrefix(l, "::notice"):
			notices = append(notices, l)
		}
	}
	if len(errs) != 10 || len(warns) != 3 || len(notices) != 1 {
		t.Fatalf("%d errors, %d warnings, %d notices:\n%s", len(errs), len(warns), len(notices), out)
	}
	if !strings.Contains(errs[0], "file=sub/m.env") || !strings.Contains(errs[0], "prod/db v2") || !strings.Contains(errs[1], "aws-access-token") {
		t.Errorf("order: %s\n%s", errs[0], errs[1])
	}
	if !strings.Contains(notices[0], "6 more error findings") {
		t.Errorf("notice: %s", notices[0])
	}
}

// TestCommandsMatchActionYAML: action.yml documents the commands the
// action has, and every input the code reads.
func TestCommandsMatchActionYAML(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	yml := string(b)
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	if !strings.Contains(yml, `"`+strings.Join(names, " | ")+`"`) {
		t.Errorf("action.yml's command input does not list %v", names)
	}
	src, err := filepathGlobRead("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputNames(src) {
		if !strings.Contains(yml, "\n  "+in+":\n") {
			t.Errorf("input %q is read but not declared in action.yml", in)
		}
	}
}

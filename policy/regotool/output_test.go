package regotool

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/passman-dev/passman/secret"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// edgeReport exercises what the writers must escape or leave out: a warning,
// a file-level violation, an absolute path, and a message and file name with
// the characters GitHub's workflow commands reserve.
var edgeReport = SourceReport{
	Files: 3,
	Violations: []Violation{
		{Source: "compile", Rule: RuleFileTooLarge, Category: "compile", Severity: "error", File: "policy/big.rego",
			Message: "file is larger than 1048576 bytes and was not checked; split the policy"},
		{Source: "regal", Rule: "line-length", Category: "style", Severity: "warning", File: "policy/a,b:c.rego",
			Line: 7, Column: 121, Message: "Line too long: 100% over\nthe limit\r\n", Docs: "https://docs.styra.com/regal/rules/style/line-length"},
		{Source: "compile", Rule: "rego_type_error", Category: "compile", Severity: "error", File: "/abs/policy/t.rego",
			Line: 2, Message: "undefined ref: data.x"},
	},
}

var testReport = TestReport{
	Results: []TestResult{
		{Package: "data.authz_test", Name: "test_allow", File: "policy/authz_test.rego", Line: 5, Pass: true, Duration: 1234567 * time.Nanosecond},
		{Package: "data.authz_test", Name: "test_deny", File: "policy/authz_test.rego", Line: 9, Fail: true, Duration: 250 * time.Microsecond,
			Message: "case admin/read failed\nprinted: input was {}"},
		{Package: "data.authz_test", Name: "test_conflict", File: "policy/authz_test.rego", Line: 14, Error: true, Duration: time.Millisecond,
			Message: "policy/authz.rego:16: eval_conflict_error: rule data.authz.label produced conflicting values"},
		{Package: "data.authz_test", Name: "todo_test_later", File: "policy/authz_test.rego", Line: 18, Skip: true},
	},
	Coverage: 88.88888888888889,
	Passed:   1, Failed: 1, Errored: 1, Skipped: 1,
}

func TestWriteLintGolden(t *testing.T) {
	t.Parallel()
	// lint_checks, a real lint's report, is package regal's golden test.
	reports := map[string]SourceReport{"lint_edge": edgeReport, "lint_clean": {Files: 2}}
	for name, rep := range reports {
		for _, format := range LintFormats {
			t.Run(name+"."+format, func(t *testing.T) {
				var buf bytes.Buffer
				if err := WriteLint(&buf, format, rep); err != nil {
					t.Fatal(err)
				}
				golden(t, name+"."+format, buf.Bytes())
				if format == "sarif" {
					checkSARIF(t, buf.Bytes(), rep)
				}
			})
		}
	}
}

func TestWriteTestGolden(t *testing.T) {
	t.Parallel()
	for _, format := range TestFormats {
		var buf bytes.Buffer
		if err := WriteTest(&buf, format, testReport); err != nil {
			t.Fatal(err)
		}
		golden(t, "test_report."+format, buf.Bytes())
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	t.Parallel()
	err := WriteLint(&bytes.Buffer{}, "xml", SourceReport{})
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "text, json, sarif, github") {
		t.Errorf("WriteLint(xml) = %v", err)
	}
	err = WriteTest(&bytes.Buffer{}, "sarif", TestReport{})
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "text, json") {
		t.Errorf("WriteTest(sarif) = %v", err)
	}
}

// TestGitHubEscaping checks the annotations GitHub receives for awkward
// file names and messages: '%', CR, LF everywhere, and ':' and ',' in
// properties, escaped as GitHub's toolkit does (go-githubactions).
func TestGitHubEscaping(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteLint(&buf, "github", edgeReport); err != nil {
		t.Fatal(err)
	}
	want := "::warning col=121,file=policy/a%2Cb%3Ac.rego,line=7,title=line-length::" +
		"Line too long: 100%25 over%0Athe limit%0D%0A (https://docs.styra.com/regal/rules/style/line-length)\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("github output lacks %q:\n%s", want, buf.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.ContainsAny(line, "\r") {
			t.Errorf("unescaped carriage return in %q", line)
		}
	}
}

// checkSARIF parses the output back and checks the facts code scanning uses.
func checkSARIF(t *testing.T, b []byte, rep SourceReport) {
	t.Helper()
	doc, err := sarif.FromBytes(b)
	if err != nil {
		t.Fatalf("output is not SARIF: %v", err)
	}
	if doc.Version != "2.1.0" || len(doc.Runs) != 1 {
		t.Fatalf("version %q with %d runs, want 2.1.0 with 1", doc.Version, len(doc.Runs))
	}
	run := doc.Runs[0]
	if len(run.Results) != len(rep.Violations) {
		t.Fatalf("%d results for %d violations", len(run.Results), len(rep.Violations))
	}
	rules := map[string]bool{}
	for _, r := range run.Tool.Driver.Rules {
		rules[r.ID] = true
	}
	for i, res := range run.Results {
		v := rep.Violations[i]
		if *res.RuleID != v.Rule || !rules[v.Rule] || *res.Level != v.Severity {
			t.Errorf("result %d: rule %q level %q, want %q %q (declared: %v)", i, *res.RuleID, *res.Level, v.Rule, v.Severity, rules[v.Rule])
		}
		loc := res.Locations[0].PhysicalLocation
		if uri, err := url.PathUnescape(*loc.ArtifactLocation.URI); err != nil || !strings.HasSuffix(uri, filepath.ToSlash(v.File)) {
			t.Errorf("result %d: uri %q for file %q", i, uri, v.File)
		}
		if v.Line > 0 && (loc.Region == nil || *loc.Region.StartLine != v.Line) {
			t.Errorf("result %d: region %+v for line %d", i, loc.Region, v.Line)
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from golden file (-want +got):\n%s", name, diff)
	}
	if strings.HasSuffix(name, ".json") {
		var v map[string]any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Errorf("%s is not JSON: %v", name, err)
		}
	}
}

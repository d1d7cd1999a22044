package scanner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-githubactions"

	"github.com/passman-dev/passman/secret"
)

var ciFindings = []Finding{
	{RuleID: "github-pat", Description: "GitHub Personal Access Token", File: "dir/a,b:c.go", StartLine: 3, StartColumn: 5, EndLine: 3, EndColumn: 44, Column: 5, EndCol: 44, Secret: "REDACTED", Fingerprint: strings.Repeat("ab", 32)},
	{RuleID: ManagedRuleID, Description: "passman-managed secret", File: ".env", StartLine: 2, StartColumn: 13, EndLine: 2, EndColumn: 28, Column: 13, EndCol: 28, Secret: "REDACTED", Fingerprint: strings.Repeat("cd", 32),
		Managed: &secret.FingerprintMatch{Path: "prod/db/password", Version: 3, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive}},
}

func TestWriteSARIF(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := Write(&buf, "sarif", ciFindings, Stats{Files: 2}, nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID              string            `json:"ruleId"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
				Locations           []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
						Region           struct {
							StartLine   int `json:"startLine"`
							StartColumn int `json:"startColumn"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				Properties map[string]any `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if doc.Version != "2.1.0" || len(doc.Runs) != 1 || len(doc.Runs[0].Results) != 2 || len(doc.Runs[0].Tool.Driver.Rules) != 2 {
		t.Fatalf("shape: %+v", doc)
	}
	r0 := doc.Runs[0].Results[0]
	loc := r0.Locations[0].PhysicalLocation
	if r0.PartialFingerprints["passman/content/v1"] != strings.Repeat("ab", 32) || loc.ArtifactLocation.URI != "dir/a%2Cb%3Ac.go" || loc.Region.StartLine != 3 || loc.Region.StartColumn != 5 {
		t.Fatalf("first result: %+v", r0)
	}
	if p := doc.Runs[0].Results[1].Properties; p["managed_path"] != "prod/db/password" {
		t.Fatalf("managed result properties: %+v", p)
	}
}

// noEnv is a getenv outside GitHub Actions, so that tests never append to
// the step summary of the CI job running them.
func noEnv(string) string { return "" }

func TestWriteGitHub(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := writeGitHub(&buf, ciFindings, Stats{Files: 2}, githubactions.WithGetenv(noEnv)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"::error col=5,endColumn=44,endLine=3,file=dir/a%2Cb%3Ac.go,line=3,title=github-pat::GitHub Personal Access Token\n",
		"::error col=13,endColumn=28,endLine=2,file=.env,line=2,title=passman-managed::passman-managed secret: passman-managed secret prod/db/password v3 leaked\n",
		"2 findings in 2 files\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("github output lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteGitHubStepSummary(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "step_summary.md")
	// The runner creates the file; an earlier step may have written to it.
	if err := os.WriteFile(path, []byte("earlier step\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "GITHUB_STEP_SUMMARY" {
			return path
		}
		return ""
	}
	var buf bytes.Buffer
	if err := writeGitHub(&buf, ciFindings, Stats{Files: 2}, githubactions.WithGetenv(env)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "::error "); n != 2 {
		t.Errorf("%d annotations on stdout, want 2:\n%s", n, buf.String())
	}
	if strings.Contains(buf.String(), "| Rule |") {
		t.Errorf("summary table went to stdout:\n%s", buf.String())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	if err := WriteSummary(&want, ciFindings, Stats{Files: 2}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "earlier step\n"+want.String()+"\n" {
		t.Errorf("step summary file:\n%s\nwant the earlier content, then:\n%s", got, want.String())
	}
}

func TestWriteGitHubStepSummaryUnwritable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "missing", "summary.md")
	env := func(k string) string {
		if k == "GITHUB_STEP_SUMMARY" {
			return dir
		}
		return ""
	}
	err := writeGitHub(&bytes.Buffer{}, ciFindings, Stats{}, githubactions.WithGetenv(env))
	if err == nil || !strings.Contains(err.Error(), "github step summary") {
		t.Fatalf("error = %v, want a github step summary error (not a panic)", err)
	}
}

// TestWriteGitHubReadsInjectedEnvironment: Write's step summary goes where
// the caller's environment says, never where the process's does (a front
// end such as the Action gives its own).
func TestWriteGitHubReadsInjectedEnvironment(t *testing.T) {
	dir := t.TempDir()
	injected, process := filepath.Join(dir, "injected.md"), filepath.Join(dir, "process.md")
	t.Setenv("GITHUB_STEP_SUMMARY", process)
	env := func(k string) string { return map[string]string{"GITHUB_STEP_SUMMARY": injected}[k] }
	if err := Write(&bytes.Buffer{}, "github", ciFindings, Stats{Files: 2}, env); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(injected); err != nil || !bytes.Contains(b, []byte("|")) {
		t.Errorf("step summary in the injected file: %q %v", b, err)
	}
	if err := Write(&bytes.Buffer{}, "github", ciFindings, Stats{Files: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(process); !os.IsNotExist(err) {
		t.Errorf("the process's GITHUB_STEP_SUMMARY was written: %v", err)
	}
}

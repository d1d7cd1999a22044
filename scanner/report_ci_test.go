package scanner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/passman-dev/passman/secret"
)

var ciFindings = []Finding{
	{RuleID: "github-pat", Description: "GitHub Personal Access Token", File: "dir/a,b:c.go", StartLine: 3, StartColumn: 5, EndLine: 3, EndColumn: 44, Secret: "REDACTED", Fingerprint: strings.Repeat("ab", 32)},
	{RuleID: ManagedRuleID, Description: "passman-managed secret", File: ".env", StartLine: 2, StartColumn: 13, EndLine: 2, EndColumn: 28, Secret: "REDACTED", Fingerprint: strings.Repeat("cd", 32),
		Managed: &secret.FingerprintMatch{Path: "prod/db/password", Version: 3, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive}},
}

func TestWriteSARIF(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := Write(&buf, "sarif", ciFindings, Stats{Files: 2}); err != nil {
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

func TestWriteGitHub(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := Write(&buf, "github", ciFindings, Stats{Files: 2}); err != nil {
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

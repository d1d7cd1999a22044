package scanner_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// ciReportFindings have everything a CI report shows: a git finding with
// author and date, a managed one, and a path that needs XML escaping.
var ciReportFindings = []scanner.Finding{
	{RuleID: "github-pat", Description: "GitHub Personal Access Token", File: "src/app.go", StartLine: 4, StartColumn: 14, EndLine: 4, EndColumn: 53, Column: 14, EndCol: 53,
		Secret: "REDACTED", Fingerprint: strings.Repeat("ab", 32),
		Commit: "0123456789abcdef0123456789abcdef01234567", Author: "Mallory <b>", Email: "m@example.com", Date: "2024-05-01T10:00:00Z"},
	{RuleID: scanner.ManagedRuleID, Description: "passman-managed secret", File: ".env", StartLine: 2, StartColumn: 13, EndLine: 2, EndColumn: 32, Column: 13, EndCol: 32,
		Secret: "REDACTED", Fingerprint: strings.Repeat("cd", 32),
		Managed: &secret.FingerprintMatch{Path: "prod/db/password", Version: 2, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive}},
	{RuleID: "generic-api-key", Description: "Generic API Key", File: "a&b/<x>\"q\".txt", StartLine: 1, StartColumn: 1, EndLine: 1, EndColumn: 30, Column: 1, EndCol: 30,
		Secret: "REDACTED", Fingerprint: strings.Repeat("ef", 32)},
}

type junitDoc struct {
	XMLName  xml.Name `xml:"testsuite"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Cases    []struct {
		ClassName string `xml:"classname,attr"`
		Name      string `xml:"name,attr"`
		Failure   *struct {
			Message string `xml:"message,attr"`
			Type    string `xml:"type,attr"`
			Text    string `xml:",chardata"`
		} `xml:"failure"`
	} `xml:"testcase"`
}

func TestWriteJUnit(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := scanner.Write(&buf, "junit", ciReportFindings, scanner.Stats{Files: 3}, nil); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit.golden.xml", buf.Bytes())

	var doc junitDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if doc.Name != "passman scan" || doc.Tests != 3 || doc.Failures != 3 || len(doc.Cases) != 3 {
		t.Fatalf("suite = %q tests=%d failures=%d cases=%d", doc.Name, doc.Tests, doc.Failures, len(doc.Cases))
	}
	c := doc.Cases[0]
	if c.ClassName != "src/app.go" || c.Name != "github-pat at src/app.go:4 (0123456)" || c.Failure == nil || c.Failure.Type != "github-pat" {
		t.Errorf("git finding's case = %+v", c)
	}
	for _, want := range []string{"location: src/app.go:4:14", "commit: 0123456789abcdef0123456789abcdef01234567", "author: Mallory <b> <m@example.com>", "date: 2024-05-01T10:00:00Z"} {
		if !strings.Contains(c.Failure.Text, want) {
			t.Errorf("failure text lacks %q:\n%s", want, c.Failure.Text)
		}
	}
	if c := doc.Cases[1]; c.Name != "passman-managed at .env:2" || !strings.Contains(c.Failure.Text, "managed: prod/db/password v2") || strings.Contains(c.Failure.Text, "commit:") {
		t.Errorf("managed finding's case = %+v", c)
	}
	if c := doc.Cases[2]; c.ClassName != "a&b/<x>\"q\".txt" {
		t.Errorf("escaped path round-trips as %q", c.ClassName)
	}
}

func TestWriteJUnitNoFindings(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := scanner.Write(&buf, "junit", nil, scanner.Stats{Files: 3}, nil); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit-empty.golden.xml", buf.Bytes())
	var doc junitDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 1 || doc.Failures != 0 || len(doc.Cases) != 1 || doc.Cases[0].Name != "no leaks found" || doc.Cases[0].Failure != nil {
		t.Errorf("clean scan = %+v", doc)
	}
}

// TestWriteJUnitControlCharacters: XML 1.0 cannot hold most control
// characters even as references, and a file name can; the report must stay
// well-formed.
func TestWriteJUnitControlCharacters(t *testing.T) {
	t.Parallel()
	f := ciReportFindings[2]
	f.File = "bad\x01name\x1b[31m.txt"
	var buf bytes.Buffer
	if err := scanner.Write(&buf, "junit", []scanner.Finding{f}, scanner.Stats{}, nil); err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, buf.String())
	}
}

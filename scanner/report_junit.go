package scanner

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// junitSuite is the JUnit XML root. CI systems (GitLab, Jenkins, Azure
// Pipelines) differ in which attributes they read; name, tests and failures
// are the ones all of them understand.
type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	ClassName string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junitSuiteName also names the passing test case of a clean scan, so that
// it groups with the suite in CI test views.
const junitSuiteName = "passman scan"

// writeJUnit writes one failing test case per finding. A clean scan still
// gets one passing test case: several CI systems treat a report without
// test cases as "no tests ran" and flag the job instead of showing a pass.
func writeJUnit(w io.Writer, findings []Finding) error {
	suite := junitSuite{Name: junitSuiteName, Tests: len(findings), Failures: len(findings)}
	for _, f := range findings {
		name := fmt.Sprintf("%s at %s:%d", f.RuleID, f.File, f.StartLine)
		if f.Commit != "" {
			name += " (" + shortSHA(f.Commit) + ")"
		}
		suite.Cases = append(suite.Cases, junitCase{
			ClassName: f.File,
			Name:      name,
			Failure:   &junitFailure{Message: message(f), Type: f.RuleID, Text: junitText(f)},
		})
	}
	if len(findings) == 0 {
		suite.Tests = 1
		suite.Cases = []junitCase{{ClassName: junitSuiteName, Name: "no leaks found"}}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suite); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	return nil
}

// junitText is the failure body CI shows when the test case is expanded.
// It is built only from Finding's fields, none of which hold secret text.
func junitText(f Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule: %s\n", f.RuleID)
	fmt.Fprintf(&b, "description: %s\n", f.Description)
	fmt.Fprintf(&b, "location: %s:%d:%d\n", f.File, f.StartLine, f.Column)
	if f.Commit != "" {
		fmt.Fprintf(&b, "commit: %s\n", f.Commit)
	}
	if f.Author != "" || f.Email != "" {
		fmt.Fprintf(&b, "author: %s\n", authorString(f))
	}
	if f.Date != "" {
		fmt.Fprintf(&b, "date: %s\n", f.Date)
	}
	if m := f.Managed; m != nil {
		fmt.Fprintf(&b, "managed: %s v%d\n", m.Path, m.Version)
	}
	return b.String()
}

// authorString is "Name <email>", or whichever half is known.
func authorString(f Finding) string {
	switch {
	case f.Email == "":
		return f.Author
	case f.Author == "":
		return "<" + f.Email + ">"
	default:
		return f.Author + " <" + f.Email + ">"
	}
}

// shortSHA abbreviates a commit id as git log --oneline does by default.
func shortSHA(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

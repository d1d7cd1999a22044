package regotool

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/passman-dev/passman/internal/report"
	"github.com/passman-dev/passman/secret"
)

// LintFormats lists the formats WriteLint accepts, first the default. It is the
// one registry behind both --format validation and its help text.
var LintFormats = []string{"text", "json", "sarif", "github"}

// TestFormats lists the formats WriteTest accepts, first the default.
var TestFormats = []string{"text", "json"}

// WriteLint writes r to w in format, one of LintFormats:
//
//   - text: "file:line:col: severity: message (rule)" lines and a summary;
//   - json: an object with files, errors, warnings and violations, in
//     snake_case, stable across releases;
//   - sarif: SARIF 2.1.0 with a rule per rule id, levels and locations;
//   - github: GitHub Actions workflow commands (::error / ::warning), which
//     annotate the files in a pull request, then the summary.
//
// An unknown format is an error wrapping secret.ErrInvalidArgument.
func WriteLint(w io.Writer, format string, r SourceReport) error {
	switch format {
	case "text":
		return writeLintText(w, r)
	case "json":
		return writeJSON(w, lintJSON{Files: r.Files, Errors: r.Errors(), Warnings: r.Warnings(), Violations: violationsJSON(r.Violations)})
	case "sarif":
		return writeLintSARIF(w, r)
	case "github":
		return writeLintGitHub(w, r)
	}
	return unknownFormat(format, LintFormats)
}

// WriteTest writes r to w in format, one of TestFormats: text (a line per
// test, failure details, totals and coverage) or json.
func WriteTest(w io.Writer, format string, r TestReport) error {
	switch format {
	case "text":
		return writeTestText(w, r)
	case "json":
		out := testJSON{Passed: r.Passed, Failed: r.Failed, Errored: r.Errored, Skipped: r.Skipped, Coverage: r.Coverage,
			Results: make([]testResultJSON, 0, len(r.Results))}
		for _, t := range r.Results {
			out.Results = append(out.Results, testResultJSON{
				Package: t.Package, Name: t.Name, File: t.File, Line: t.Line,
				Outcome: outcome(t), DurationNS: t.Duration.Nanoseconds(), Message: t.Message,
			})
		}
		return writeJSON(w, out)
	}
	return unknownFormat(format, TestFormats)
}

func unknownFormat(format string, known []string) error {
	return newError(secret.ErrInvalidArgument, nil, "unknown output format %q; use one of: %s", format, strings.Join(known, ", "))
}

// lintJSON is the json lint format; its field names are a stable interface.
type lintJSON struct {
	Files      int             `json:"files"`
	Errors     int             `json:"errors"`
	Warnings   int             `json:"warnings"`
	Violations []violationJSON `json:"violations"`
}

type violationJSON struct {
	Source   string `json:"source"`
	Rule     string `json:"rule"`
	Category string `json:"category"`
	Severity string `json:"severity"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Message  string `json:"message"`
	Docs     string `json:"docs,omitempty"`
}

// testJSON is the json test format; its field names are a stable interface.
type testJSON struct {
	Passed   int              `json:"passed"`
	Failed   int              `json:"failed"`
	Errored  int              `json:"errored"`
	Skipped  int              `json:"skipped"`
	Coverage float64          `json:"coverage"`
	Results  []testResultJSON `json:"results"`
}

type testResultJSON struct {
	Package    string `json:"package"`
	Name       string `json:"name"`
	File       string `json:"file"`
	Line       int    `json:"line"`
	Outcome    string `json:"outcome"`
	DurationNS int64  `json:"duration_ns"`
	Message    string `json:"message,omitempty"`
}

func violationsJSON(vs []Violation) []violationJSON {
	out := make([]violationJSON, 0, len(vs))
	for _, v := range vs {
		out = append(out, violationJSON(v))
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeLintText(w io.Writer, r SourceReport) error {
	ew := &report.ErrWriter{W: w}
	for _, v := range r.Violations {
		ew.Printf("%s: %s: %s (%s)\n", printable(position(v)), v.Severity, indent(printable(v.Message)), v.Rule)
	}
	ew.Printf("%s\n", lintSummary(r))
	return ew.Err
}

// position is "file:line:col", "file:line" or "file".
func position(v Violation) string {
	switch {
	case v.Line <= 0:
		return v.File
	case v.Column <= 0:
		return fmt.Sprintf("%s:%d", v.File, v.Line)
	}
	return fmt.Sprintf("%s:%d:%d", v.File, v.Line, v.Column)
}

func lintSummary(r SourceReport) string {
	files := plural(r.Files, "file")
	if len(r.Violations) == 0 {
		return files + " checked, no problems found"
	}
	return fmt.Sprintf("%s checked: %s, %s", files, plural(r.Errors(), "error"), plural(r.Warnings(), "warning"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func outcome(t TestResult) string {
	switch {
	case t.Pass:
		return "pass"
	case t.Fail:
		return "fail"
	case t.Error:
		return "error"
	}
	return "skip"
}

func writeTestText(w io.Writer, r TestReport) error {
	ew := &report.ErrWriter{W: w}
	for _, t := range r.Results {
		ew.Printf("%-5s %s.%s (%s:%d", strings.ToUpper(outcome(t)), t.Package, t.Name, t.File, t.Line)
		if !t.Skip {
			ew.Printf(", %s", t.Duration.Round(time.Microsecond))
		}
		ew.Printf(")\n")
		if t.Message != "" {
			ew.Printf("      %s\n", indent(printable(t.Message)))
		}
	}
	total := len(r.Results)
	ew.Printf("%s\n", strings.Repeat("-", 72))
	ew.Printf("PASS: %d/%d, FAIL: %d/%d, ERROR: %d/%d", r.Passed, total, r.Failed, total, r.Errored, total)
	if r.Skipped > 0 {
		ew.Printf(", SKIP: %d/%d", r.Skipped, total)
	}
	ew.Printf("\ncoverage of policy lines: %.1f%%\n", r.Coverage)
	return ew.Err
}

// printable replaces control characters other than newline and tab, which a
// hostile file could put in a parse error or a file name to drive the reader's
// terminal, with Go escapes, and drops trailing whitespace.
func printable(s string) string {
	s = strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), " \t\r\n")
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "\\x%02x", r)
		}
	}
	return b.String()
}

// indent puts continuation lines of a message under the first one.
func indent(s string) string {
	return strings.ReplaceAll(s, "\n", "\n      ")
}

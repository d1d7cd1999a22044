package scanner

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/sethvargo/go-githubactions"

	"github.com/passman-dev/passman/secret"
)

// Formats lists the output formats Write accepts, for flag validation and
// help text.
var Formats = []string{"text", "json", "sarif", "github", "junit"}

// Write renders findings in format:
//
//   - text: one line per finding, "file:line:col rule description", with
//     " [managed: path vN (stages)]" for a managed secret, then a summary
//     line built from stats.
//   - json: the findings as a JSON array ("[]" when there are none), field
//     names as documented on Finding; stats are not included.
//   - sarif: SARIF 2.1.0 for code scanning, with each finding's content
//     fingerprint as its partialFingerprints.
//   - github: GitHub workflow error annotations and a summary line; in a
//     GitHub Actions step ($GITHUB_STEP_SUMMARY set) the WriteSummary
//     Markdown is also appended to the step summary.
//   - junit: JUnit XML, a failing test case per finding (a single passing
//     one when there are none), for CI systems' test views.
//
// No format holds secret text unless the scan was built with
// Options.ShowSecrets, and then only text and json: the CI formats
// (sarif, github, junit), whose output lands in a CI system's logs and
// views, refuse such findings (secret.ErrInvalidArgument).
//
// getenv reads the environment of the step (GITHUB_STEP_SUMMARY); nil
// reads nothing.
func Write(w io.Writer, format string, findings []Finding, stats Stats, getenv func(string) string) error {
	if !ShowsSecrets(format) && slices.ContainsFunc(findings, func(f Finding) bool { return f.Secret != redacted }) {
		return fmt.Errorf("%w: the %s format never shows secret values (they would land in CI logs); use text or json to see them", secret.ErrInvalidArgument, format)
	}
	switch format {
	case "text":
		return writeText(w, findings, stats)
	case "json":
		if findings == nil {
			findings = []Finding{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(findings); err != nil {
			return fmt.Errorf("write findings: %w", err)
		}
		return nil
	case "sarif":
		return writeSARIF(w, findings)
	case "github":
		if getenv == nil {
			getenv = func(string) string { return "" }
		}
		return writeGitHub(w, findings, stats, githubactions.WithGetenv(getenv))
	case "junit":
		return writeJUnit(w, findings)
	default:
		return fmt.Errorf("%w: unknown format %q (want %s)", secret.ErrInvalidArgument, format, strings.Join(Formats, ", "))
	}
}

// ShowsSecrets reports whether format may show secret values
// (Options.ShowSecrets): only text and json, read by a person at a
// terminal, not the CI formats.
func ShowsSecrets(format string) bool { return format == "text" || format == "json" }

func writeText(w io.Writer, findings []Finding, stats Stats) error {
	var b strings.Builder
	for _, f := range findings {
		fmt.Fprintf(&b, "%s:%d:%d %s %s", printable(f.File), f.StartLine, f.Column, f.RuleID, f.Description)
		if m := f.Managed; m != nil {
			fmt.Fprintf(&b, " [managed: %s v%d", m.Path, m.Version)
			if len(m.Stages) > 0 {
				st := make([]string, len(m.Stages))
				for i, s := range m.Stages {
					st[i] = string(s)
				}
				fmt.Fprintf(&b, " (%s)", strings.Join(st, ", "))
			}
			b.WriteString("]")
		}
		if f.Commit != "" {
			fmt.Fprintf(&b, " (commit %s, %s, %s)", shortSHA(f.Commit), printable(f.Author), f.Date)
		}
		if f.Secret != redacted {
			fmt.Fprintf(&b, "\n  secret: %s", strconv.Quote(f.Secret))
		}
		b.WriteString("\n")
		for _, r := range f.Response {
			fmt.Fprintf(&b, "  -> %s\n", r)
		}
	}
	fmt.Fprintf(&b, "%d %s in %d %s (%d bytes)", len(findings), plural(len(findings), "finding"), stats.Files, plural(int(stats.Files), "file"), stats.Bytes)
	if stats.Commits > 0 {
		fmt.Fprintf(&b, " from %d %s", stats.Commits, plural(stats.Commits, "commit"))
		if stats.CachedCommits > 0 {
			fmt.Fprintf(&b, " (%d cached)", stats.CachedCommits)
		}
	}
	if stats.SkippedBinary > 0 || stats.SkippedLarge > 0 {
		fmt.Fprintf(&b, "; skipped %d binary, %d too large", stats.SkippedBinary, stats.SkippedLarge)
	}
	b.WriteString("\n")
	if stats.Shallow {
		b.WriteString("warning: shallow clone: commits before the shallow boundary were not scanned\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// printable quotes control characters in text from a repository (paths,
// author names) so it cannot drive the terminal that shows the report.
func printable(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

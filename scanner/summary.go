package scanner

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// summaryMaxRows bounds the findings table: GitHub caps a step summary at
// 1 MiB, and past a hundred rows a reader wants the full report anyway.
const summaryMaxRows = 100

// summaryMaxCell bounds each cell (in bytes, before escaping), so that a
// hundred rows of long attacker-chosen paths stay well under that cap.
const summaryMaxCell = 200

// WriteSummary writes a GitHub-flavoured Markdown summary of a scan: a
// heading, the counts, and a table of the first hundred findings (rule,
// location, commit, author, managed secret). Every cell is escaped: file
// paths, author names and even rule ids (from a repository's own gitleaks
// config) are chosen by whoever wrote the change being scanned, and must
// not be able to inject links, HTML or table structure.
func WriteSummary(w io.Writer, findings []Finding, stats Stats) error {
	var b strings.Builder
	b.WriteString("## passman scan\n\n")
	if len(findings) == 0 {
		fmt.Fprintf(&b, "No leaks found in %d %s (%d bytes)", stats.Files, plural(int(stats.Files), "file"), stats.Bytes)
	} else {
		fmt.Fprintf(&b, "**%d %s** in %d %s (%d bytes)", len(findings), plural(len(findings), "finding"), stats.Files, plural(int(stats.Files), "file"), stats.Bytes)
	}
	if stats.SkippedBinary > 0 || stats.SkippedLarge > 0 {
		fmt.Fprintf(&b, "; skipped %d binary, %d too large", stats.SkippedBinary, stats.SkippedLarge)
	}
	b.WriteString(".\n")
	if len(findings) > 0 {
		b.WriteString("\n| Rule | Location | Commit | Author | Managed secret |\n| --- | --- | --- | --- | --- |\n")
		for _, f := range findings[:min(len(findings), summaryMaxRows)] {
			managed := ""
			if m := f.Managed; m != nil {
				managed = m.Path + " v" + strconv.Itoa(m.Version)
			}
			cells := []string{f.RuleID, f.File + ":" + strconv.Itoa(f.StartLine), shortSHA(f.Commit), f.Author, managed}
			b.WriteString("|")
			for _, c := range cells {
				b.WriteString(" " + markdownCell(c) + " |")
			}
			b.WriteString("\n")
		}
		if n := len(findings) - summaryMaxRows; n > 0 {
			fmt.Fprintf(&b, "\n… and %d more\n", n)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// markdownCell makes s literal text inside a GFM table cell. Backslash
// escapes are used for every ASCII punctuation character with an inline
// meaning, including '.', ':' and '@' so that no GFM autolink (www.,
// http://, user@host) can form and '$' so that no math does; '<', '>' and
// '&' become entities so no raw HTML or entity can; line breaks and other
// control characters, which would end the table row, become spaces, and so
// do bidirectional controls, which could make a path display as another. A cell longer than
// summaryMaxCell is cut at a rune boundary and ends in "…".
func markdownCell(s string) string {
	if len(s) > summaryMaxCell {
		cut := summaryMaxCell
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			b.WriteByte(' ')
		case r < utf8.RuneSelf && strings.ContainsRune("\\`*_{}[]()#+!|~:@.\"'$^", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

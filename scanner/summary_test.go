package scanner_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/passman-dev/passman/scanner"
)

func TestWriteSummary(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := scanner.WriteSummary(&buf, ciReportFindings, scanner.Stats{Files: 7, Bytes: 1234, SkippedBinary: 1}); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.golden.md", buf.Bytes())
}

func TestWriteSummaryNoFindings(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := scanner.WriteSummary(&buf, nil, scanner.Stats{Files: 1, Bytes: 5}); err != nil {
		t.Fatal(err)
	}
	want := "## passman scan\n\nNo leaks found in 1 file (5 bytes).\n"
	if buf.String() != want {
		t.Errorf("clean summary = %q, want %q", buf.String(), want)
	}
}

func TestWriteSummaryTruncates(t *testing.T) {
	t.Parallel()
	fs := make([]scanner.Finding, 103)
	for i := range fs {
		fs[i] = scanner.Finding{RuleID: "r", File: fmt.Sprintf("f%d", i), StartLine: 1}
	}
	var buf bytes.Buffer
	if err := scanner.WriteSummary(&buf, fs, scanner.Stats{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if rows := strings.Count(out, "\n| r |"); rows != 100 {
		t.Errorf("%d table rows, want 100", rows)
	}
	if !strings.Contains(out, "| r | f99\\:1 |") || strings.Contains(out, "f100") {
		t.Errorf("wrong rows kept:\n%s", out)
	}
	if !strings.HasSuffix(out, "\n… and 3 more\n") {
		t.Errorf("summary does not end with the overflow line:\n%s", out[len(out)-200:])
	}
}

// TestWriteSummaryEscapes: each hostile path must stay inside its one cell
// as literal text. The expected cells are what CommonMark renders back to
// the original text; none may contain an unescaped '|', '<', '`', '[',
// newline or autolink trigger.
func TestWriteSummaryEscapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, cell string }{
		{"a|b.go", `a\|b\.go`},
		{"x`y`.txt", "x\\`y\\`\\.txt"},
		{"line\nbreak\r.txt", `line break \.txt`},
		{"<img src=x onerror=alert(1)>", `&lt;img src=x onerror=alert\(1\)&gt;`},
		{"[click](https://evil.example)", `\[click\]\(https\://evil\.example\)`},
		{"www.evil.example", `www\.evil\.example`},
		{"me@evil.example", `me\@evil\.example`},
		{"**bold**_em_~~s~~", `\*\*bold\*\*\_em\_\~\~s\~\~`},
		{`back\slash|`, `back\\slash\|`},
		{"&amp;", `&amp;amp;`},
		{"$x^2$", `\$x\^2\$`},
		{"rtl\u202Eexe.txt", `rtl exe\.txt`},
		{"ok/dir-name,v=1", `ok/dir-name,v=1`},
	} {
		var buf bytes.Buffer
		f := scanner.Finding{RuleID: "rule", File: tc.file, StartLine: 7}
		if err := scanner.WriteSummary(&buf, []scanner.Finding{f}, scanner.Stats{}); err != nil {
			t.Fatal(err)
		}
		want := "| rule | " + tc.cell + `\:7 |  |  |  |` + "\n"
		if !strings.Contains(buf.String(), want) {
			t.Errorf("file %q: row is not %q:\n%s", tc.file, want, buf.String())
		}
	}
}

func TestWriteSummaryLongCell(t *testing.T) {
	t.Parallel()
	// Byte 200 falls inside an "é", so the cut must step back one byte.
	f := scanner.Finding{RuleID: "rule", File: "a" + strings.Repeat("é", 150), StartLine: 1}
	var buf bytes.Buffer
	if err := scanner.WriteSummary(&buf, []scanner.Finding{f}, scanner.Stats{}); err != nil {
		t.Fatal(err)
	}
	if want := "| rule | a" + strings.Repeat("é", 99) + "… |"; !strings.Contains(buf.String(), want) {
		t.Errorf("long path not cut at 200 bytes on a rune boundary:\n%s", buf.String())
	}
}

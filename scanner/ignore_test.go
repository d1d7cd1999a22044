package scanner_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
	"github.com/zricethezav/gitleaks/v8/report"

	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

func init() {
	// gitleaks warns on stderr about entries it cannot parse; the fuzzer
	// feeds it thousands.
	logging.Logger = zerolog.Nop()
}

var contentFP = strings.Repeat("0f", 32)

// ignoreFile exercises every form gitleaks v8.30.1 accepts.
var ignoreFile = "\ufeff# known false positives\r\n" +
	"\n" +
	"  src/app.go:github-pat:4  \r\n" + // file entry: every commit
	commitA + ":docs/README.md:generic-api-key:12\n" + // commit entry
	`win\dir\a.go:aws-access-token:3` + "\n" + // Windows separators
	commitB + `:win\b.go:aws-access-token:5` + "\n" +
	"dir/a:b.env:aws-access-token:2\n" + // ':' in a file name
	`c:\x\y.go:rule:1` + "\n" + // 4 fields: normalized as a commit entry
	`d:\x:y.go:rule:1` + "\n" + // 5 fields: kept verbatim
	"keep#hash.txt:rule:8\n" + // '#' past the start is not a comment
	":stdin-rule:6\n" + // gitleaks names no file for stdin
	contentFP + "\n" +
	"#" + commitB + ":x:y:1" // commented out, no final newline

func TestIgnoreFilter(t *testing.T) {
	t.Parallel()
	ig, err := scanner.LoadIgnore(strings.NewReader(ignoreFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    scanner.Finding
		want bool // dropped
	}{
		{"file entry, no commit", scanner.Finding{RuleID: "github-pat", File: "src/app.go", StartLine: 4}, true},
		{"file entry, any commit", scanner.Finding{RuleID: "github-pat", File: "src/app.go", StartLine: 4, Commit: commitB}, true},
		{"file entry, other line", scanner.Finding{RuleID: "github-pat", File: "src/app.go", StartLine: 5}, false},
		{"file entry, other rule", scanner.Finding{RuleID: "generic-api-key", File: "src/app.go", StartLine: 4}, false},
		{"commit entry", scanner.Finding{RuleID: "generic-api-key", File: "docs/README.md", StartLine: 12, Commit: commitA}, true},
		{"commit entry, other commit", scanner.Finding{RuleID: "generic-api-key", File: "docs/README.md", StartLine: 12, Commit: commitB}, false},
		{"commit entry, no commit", scanner.Finding{RuleID: "generic-api-key", File: "docs/README.md", StartLine: 12}, false},
		{"backslashes normalized", scanner.Finding{RuleID: "aws-access-token", File: "win/dir/a.go", StartLine: 3}, true},
		{"finding's backslashes are not", scanner.Finding{RuleID: "aws-access-token", File: `win\dir\a.go`, StartLine: 3}, false},
		{"commit entry backslashes normalized", scanner.Finding{RuleID: "aws-access-token", File: "win/b.go", StartLine: 5, Commit: commitB}, true},
		{"colon in file name", scanner.Finding{RuleID: "aws-access-token", File: "dir/a:b.env", StartLine: 2, Commit: commitA}, true},
		// A Windows drive path splits like a commit entry: only the part
		// after the drive letter is normalized.
		{"4 fields read as commit c", scanner.Finding{RuleID: "rule", File: "/x/y.go", StartLine: 1, Commit: "c"}, true},
		{"4 fields: file c:/x/y.go", scanner.Finding{RuleID: "rule", File: "c:/x/y.go", StartLine: 1}, true},
		{"4 fields: backslash file not matched", scanner.Finding{RuleID: "rule", File: `c:\x\y.go`, StartLine: 1}, false},
		{"5 fields: verbatim", scanner.Finding{RuleID: "rule", File: `d:\x:y.go`, StartLine: 1}, true},
		{"5 fields: not normalized", scanner.Finding{RuleID: "rule", File: "d:/x:y.go", StartLine: 1}, false},
		{"empty file name", scanner.Finding{RuleID: "stdin-rule", StartLine: 6}, true},
		{"hash in entry", scanner.Finding{RuleID: "rule", File: "keep#hash.txt", StartLine: 8}, true},
		{"commented out", scanner.Finding{RuleID: "y", File: "x", StartLine: 1, Commit: commitB}, false},
		{"content fingerprint", scanner.Finding{RuleID: "r", File: "any.txt", StartLine: 99, Fingerprint: contentFP}, true},
		{"no fingerprint", scanner.Finding{RuleID: "r", File: "any.txt", StartLine: 99}, false},
	} {
		kept, n := ig.Filter([]scanner.Finding{tc.f})
		if got := n == 1; got != tc.want || n+len(kept) != 1 {
			t.Errorf("%s: dropped=%d kept=%d, want dropped %v", tc.name, n, len(kept), tc.want)
		}
	}
	var nilIgnore *scanner.Ignore
	if kept, n := nilIgnore.Filter(ciReportFindings); n != 0 || len(kept) != len(ciReportFindings) {
		t.Errorf("nil Ignore dropped %d", n)
	}
}

func TestLoadIgnoreErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"one field", "# c\nsrc/app.go\n", "line 2: want commit:file:rule:line"},
		{"two fields", "src/app.go:github-pat\n", "line 1:"},
		{"line not a number", "\n\na:b:c\n", "line 3:"},
		{"line with sign", "a:b:+3\n", "line 1:"},
		{"line with zero padding", "a:b:03\n", "line 1:"},
		{"empty rule", "a::3\n", "line 1:"},
		{"no line field", "a:r:\n", "line 1:"},
		{"trailing comment", "a:r:3 # fp\n", "line 1:"},
		{"short hex", strings.Repeat("a", 63) + "\n", "line 1:"},
		{"uppercase hex", strings.Repeat("A", 64) + "\n", "line 1:"},
		{"long line", "a:r:1\n" + strings.Repeat("x", 64<<10+1) + ":r:1\n", "line 2 is longer than 64 KiB"},
	} {
		_, err := scanner.LoadIgnore(strings.NewReader(tc.in))
		if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want ErrInvalidArgument containing %q", tc.name, err, tc.want)
		}
	}
	// A line of exactly the limit is fine.
	if _, err := scanner.LoadIgnore(strings.NewReader(strings.Repeat("x", 64<<10-4) + ":r:1")); err != nil {
		t.Errorf("64 KiB line: %v", err)
	}
	_, err := scanner.LoadIgnore(io.MultiReader(strings.NewReader("a:r:1\n"), endless{}))
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "larger than the 16 MiB limit") {
		t.Errorf("oversized: error = %v", err)
	}
}

// gitleaksDrops reports, for each finding, whether gitleaks v8.30.1 itself
// drops it given ignore as its .gitleaksignore: the reference LoadIgnore
// must agree with.
func gitleaksDrops(t testing.TB, ignore []byte, fs []scanner.Finding) []bool {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".gitleaksignore")
	if err := os.WriteFile(path, ignore, 0o600); err != nil {
		t.Fatal(err)
	}
	d := detect.NewDetector(config.Config{})
	if err := d.AddGitleaksIgnore(path); err != nil {
		t.Fatal(err)
	}
	out := make([]bool, len(fs))
	for i, f := range fs {
		before := len(d.Findings())
		d.AddFinding(report.Finding{RuleID: f.RuleID, File: f.File, StartLine: f.StartLine, Commit: f.Commit})
		out[i] = len(d.Findings()) == before
	}
	return out
}

// candidates builds findings that each entry of an ignore file might
// match, read both as a commit entry and as a file entry, with and without
// '\' turned into '/'.
func candidates(ignore []byte) []scanner.Finding {
	var out []scanner.Finding
	for _, line := range strings.Split(string(ignore), "\n") {
		line = strings.TrimSpace(line)
		i := strings.LastIndex(line, ":")
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(line[i+1:])
		if err != nil {
			continue
		}
		rest := line[:i]
		j := strings.LastIndex(rest, ":")
		if j < 0 {
			continue
		}
		rule, file := rest[j+1:], rest[:j]
		for _, fl := range []string{file, strings.ReplaceAll(file, `\`, "/")} {
			out = append(out, scanner.Finding{RuleID: rule, File: fl, StartLine: n})
			out = append(out, scanner.Finding{RuleID: rule, File: fl, StartLine: n, Commit: commitA})
			if c, f, ok := strings.Cut(fl, ":"); ok {
				out = append(out, scanner.Finding{RuleID: rule, File: f, StartLine: n, Commit: c})
			}
		}
	}
	return out
}

// TestIgnoreMatchesGitleaks runs the same entries and findings through
// gitleaks' own AddGitleaksIgnore and AddFinding.
func TestIgnoreMatchesGitleaks(t *testing.T) {
	t.Parallel()
	in := []byte(strings.TrimPrefix(ignoreFile, "\ufeff"))
	ig, err := scanner.LoadIgnore(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	fs := candidates(in)
	if len(fs) < 20 {
		t.Fatalf("only %d candidate findings", len(fs))
	}
	compareWithGitleaks(t, ig, in, fs)
}

func compareWithGitleaks(t testing.TB, ig *scanner.Ignore, in []byte, fs []scanner.Finding) {
	t.Helper()
	want := gitleaksDrops(t, in, fs)
	for i, f := range fs {
		_, n := ig.Filter([]scanner.Finding{f})
		if got := n == 1; got != want[i] {
			t.Errorf("finding %s (commit %q): passman drops %v, gitleaks %v", f.GitleaksFingerprint(), f.Commit, got, want[i])
		}
	}
}

func FuzzLoadIgnore(f *testing.F) {
	for _, seed := range []string{
		strings.TrimPrefix(ignoreFile, "\ufeff"),
		ignoreFile,
		"", "#\n\n", "a:b:1", `a\b:c\d:r:1`, `a:b\c:d:r:1`, "a:b:c:d:e:r:7\r\n", contentFP, "x", "a:r:-1", " \t a:r:0 \v",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ig, err := scanner.LoadIgnore(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, secret.ErrInvalidArgument) {
				t.Fatalf("error is not ErrInvalidArgument: %v", err)
			}
			if !strings.Contains(err.Error(), ".gitleaksignore line ") {
				t.Fatalf("error has no line number: %v", err)
			}
			return
		}
		// gitleaks reads with a bufio.Scanner, which stops at a line over
		// 64 KiB and keeps a leading byte order mark; compare only where
		// the two are meant to agree.
		if bytes.HasPrefix(data, []byte("\ufeff")) || len(data) > 64<<10 {
			return
		}
		// Candidates carry no content fingerprint, which gitleaks lacks.
		compareWithGitleaks(t, ig, data, candidates(data))
	})
}

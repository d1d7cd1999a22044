package scanner_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

const (
	commitA = "9326f35380636bcbe61e94b0584d1618c4b5c2c2"
	commitB = "b55d88dc151f7022901cda41a03d43e0e508f2b7"
)

// gitleaksReport is the shape of gitleaks --report-format json, raw secret
// included, as gitleaks writes it without --redact.
func gitleaksReport(secretText string) string {
	return `[
 {
  "RuleID": "github-pat",
  "Description": "GitHub Personal Access Token",
  "StartLine": 4, "EndLine": 4, "StartColumn": 14, "EndColumn": 53,
  "Match": "token = ` + secretText + `",
  "Secret": "` + secretText + `",
  "File": "src/app.go",
  "SymlinkFile": "",
  "Commit": "` + commitA + `",
  "Entropy": 4.5,
  "Author": "A", "Email": "a@example.com", "Date": "2022-03-07T14:33:06Z",
  "Message": "add config",
  "Tags": [],
  "Fingerprint": "` + commitA + `:src/app.go:github-pat:4"
 },
 {
  "RuleID": "aws-access-token",
  "StartLine": 2,
  "Secret": "` + secretText + `",
  "File": "dir/a:b.env",
  "Fingerprint": "dir/a:b.env:aws-access-token:2"
 },
 {
  "RuleID": "generic-api-key",
  "StartLine": 9,
  "Secret": "` + secretText + `",
  "File": "old/report.txt",
  "Commit": "` + commitB + `"
 }
]`
}

func TestLoadBaselineGitleaks(t *testing.T) {
	t.Parallel()
	b, err := scanner.LoadBaseline(strings.NewReader(gitleaksReport(githubPAT)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    scanner.Finding
		want bool // suppressed
	}{
		{"commit fingerprint", scanner.Finding{RuleID: "github-pat", File: "src/app.go", StartLine: 4, Commit: commitA}, true},
		{"other commit", scanner.Finding{RuleID: "github-pat", File: "src/app.go", StartLine: 4, Commit: commitB}, false},
		{"same place outside git", scanner.Finding{RuleID: "github-pat", File: "src/app.go", StartLine: 4}, false},
		{"line moved", scanner.Finding{RuleID: "github-pat", File: "src/app.go", StartLine: 5, Commit: commitA}, false},
		{"file fingerprint, ':' in name", scanner.Finding{RuleID: "aws-access-token", File: "dir/a:b.env", StartLine: 2}, true},
		// A baseline, unlike .gitleaksignore, matches gitleaks' fingerprint
		// exactly: gitleaks' own baseline requires the same commit.
		{"file fingerprint, git finding", scanner.Finding{RuleID: "aws-access-token", File: "dir/a:b.env", StartLine: 2, Commit: commitA}, false},
		{"no Fingerprint field: built from fields", scanner.Finding{RuleID: "generic-api-key", File: "old/report.txt", StartLine: 9, Commit: commitB}, true},
		{"other rule", scanner.Finding{RuleID: "generic-api-key", File: "src/app.go", StartLine: 4, Commit: commitA}, false},
	} {
		kept, n := b.Filter([]scanner.Finding{tc.f})
		if got := n == 1 && len(kept) == 0; got != tc.want || n+len(kept) != 1 {
			t.Errorf("%s: suppressed=%d kept=%d, want suppressed %v", tc.name, n, len(kept), tc.want)
		}
	}
}

func TestLoadBaselineOwnFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := scanner.Write(&buf, "json", ciReportFindings[:2], scanner.Stats{}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := scanner.LoadBaseline(&buf)
	if err != nil {
		t.Fatal(err)
	}
	moved := ciReportFindings[0]
	moved.StartLine, moved.Commit = 40, commitB // same secret, file and rule
	fresh := ciReportFindings[2]
	renamed := ciReportFindings[1]
	renamed.File, renamed.Fingerprint = "other/.env", strings.Repeat("12", 32)
	kept, n := b.Filter([]scanner.Finding{ciReportFindings[0], moved, fresh, ciReportFindings[1], renamed})
	if n != 3 {
		t.Errorf("suppressed %d, want 3", n)
	}
	if diff := cmp.Diff([]scanner.Finding{fresh, renamed}, kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
}

func TestLoadBaselineEmptyArray(t *testing.T) {
	t.Parallel()
	b, err := scanner.LoadBaseline(strings.NewReader(" []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if kept, n := b.Filter(ciReportFindings); n != 0 || len(kept) != len(ciReportFindings) {
		t.Errorf("empty baseline suppressed %d", n)
	}
	var nilBaseline *scanner.Baseline
	if kept, n := nilBaseline.Filter(ciReportFindings); n != 0 || len(kept) != len(ciReportFindings) {
		t.Errorf("nil baseline suppressed %d", n)
	}
}

// numericCanary is a secret that encoding/json would quote back as a
// number literal in its errors.
const numericCanary = "98765432109876543210"

func TestLoadBaselineErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "  \n", "baseline is empty"},
		{"not JSON", "RuleID,File\nx,y\n", "not valid JSON (syntax error at byte 1)"},
		{"truncated", `[{"RuleID": "r", "File": "f"`, "not valid JSON"},
		{"trailing data", `[] []`, "not valid JSON"},
		{"object", `{"RuleID": "r", "File": "f"}`, "want a JSON array of findings, got object"},
		{"null", `null`, "got null"},
		{"string", `"x"`, "got string"},
		{"number", `12`, "got number"},
		{"entry not an object", `[{"RuleID": "r", "File": "f"}, 3]`, "baseline entry 2: want a finding object, got number"},
		{"entry null", `[null]`, "baseline entry 1: want a finding object, got null"},
		{"nothing to match by", `[{"Description": "d", "StartLine": 3}]`, "baseline entry 1: no passman or gitleaks Fingerprint, and no RuleID and File"},
		{"only RuleID", `[{"RuleID": "r"}]`, "no RuleID and File"},
		{"unusable fingerprint", `[{"Fingerprint": "abc"}]`, "no passman or gitleaks Fingerprint"},
		{"uppercase content fingerprint", `[{"Fingerprint": "` + strings.Repeat("AB", 32) + `"}]`, "no passman or gitleaks Fingerprint"},
		{"fingerprint line not a number", `[{"Fingerprint": "f:r:x"}]`, "no passman or gitleaks Fingerprint"},
		{"wrong type", `[{"RuleID": "r", "File": "f", "StartLine": "4"}]`, "baseline entry 1: field StartLine has the wrong JSON type"},
	} {
		_, err := scanner.LoadBaseline(strings.NewReader(tc.in))
		if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want ErrInvalidArgument containing %q", tc.name, err, tc.want)
		}
	}
}

// endless is an unbounded stream of spaces, to test the size cap without
// building the input in memory first.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestLoadBaselineTooLarge(t *testing.T) {
	t.Parallel()
	_, err := scanner.LoadBaseline(io.MultiReader(strings.NewReader(`[{"Secret": "`+githubPAT+`"}`), endless{}))
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "larger than the 64 MiB limit") {
		t.Errorf("error = %v, want the 64 MiB limit", err)
	}
	assertNoCanary(t, err, githubPAT)
}

// TestLoadBaselineNeverQuotesSecrets plants raw secrets where gitleaks
// puts them and breaks the report around them: encoding/json's own errors
// would quote a character or number literal of the input.
func TestLoadBaselineNeverQuotesSecrets(t *testing.T) {
	t.Parallel()
	report := gitleaksReport(githubPAT)
	for _, tc := range []struct{ name, in string }{
		{"truncated inside the secret", report[:strings.Index(report, githubPAT)+10]},
		{"truncated after the secret", report[:strings.LastIndex(report, githubPAT)+len(githubPAT)]},
		{"unquoted secret", strings.Replace(report, `"`+githubPAT+`"`, githubPAT, 1)},
		{"secret with a bad escape", strings.Replace(report, githubPAT, githubPAT+`\q`, 1)},
		{"secret with a raw newline", strings.Replace(report, githubPAT, githubPAT+"\n", 1)},
		{"secret after the array", report + githubPAT},
		{"secret as the document", `"` + githubPAT + `"`},
		{"secret as an entry", `["` + githubPAT + `"]`},
		{"secret as the object key", `[{"` + githubPAT + `" "x"}]`},
		{"object of secrets", `{"Secret": "` + githubPAT + `", "Match": "` + githubPAT + `"}`},
		{"secret-only entry", `[{"Secret": "` + githubPAT + `", "Match": "k=` + githubPAT + `"}]`},
		{"secret as fingerprint", `[{"Fingerprint": "` + githubPAT + `", "Secret": "` + githubPAT + `"}]`},
		{"secret as a line number", strings.Replace(report, `"StartLine": 2`, `"StartLine": "`+githubPAT+`"`, 1)},
		{"numeric secret as a rule", `[{"RuleID": ` + numericCanary + `, "File": "f", "Secret": "` + numericCanary + `"}]`},
		{"numeric secret overflowing a line", `[{"RuleID": "r", "File": "f", "StartLine": ` + numericCanary + `}]`},
		{"numeric secret as the document", numericCanary},
		{"numeric secret after the array", `[]` + numericCanary},
	} {
		_, err := scanner.LoadBaseline(strings.NewReader(tc.in))
		if !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: error = %v, want ErrInvalidArgument", tc.name, err)
			continue
		}
		assertNoCanary(t, err, githubPAT)
		assertNoCanary(t, err, numericCanary)
		assertNoQuotes(t, err)
	}
}

// assertNoQuotes fails if err's text quotes anything: encoding/json quotes
// the input character at a syntax error, and a baseline's input includes
// its secrets; LoadBaseline's own errors quote nothing.
func assertNoQuotes(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.ContainsAny(err.Error(), "'\"`") {
		t.Errorf("error quotes its input: %s", err)
	}
}

// assertNoCanary fails if err's text holds any 6-byte piece of canary.
func assertNoCanary(t *testing.T, err error, canary string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for i := 0; i+6 <= len(canary); i++ {
		if strings.Contains(msg, canary[i:i+6]) {
			t.Errorf("error quotes the secret (%q): %s", canary[i:i+6], msg)
			return
		}
	}
}

func FuzzLoadBaseline(f *testing.F) {
	var own bytes.Buffer
	if err := scanner.Write(&own, "json", ciReportFindings, scanner.Stats{}, nil); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		own.String(),
		gitleaksReport(githubPAT),
		gitleaksReport(numericCanary),
		"[]", "null", "", `{"RuleID":"r"}`, `[{"Fingerprint":"a:b:c:1"}]`, `[{"RuleID":"r","File":"f","StartLine":-1}]`,
		`[{"RuleID": ` + numericCanary + `}]`, `["` + githubPAT + `"]`, `[{"Secret":` + githubPAT + `}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := scanner.LoadBaseline(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, secret.ErrInvalidArgument) {
				t.Fatalf("error is not ErrInvalidArgument: %v", err)
			}
			// Errors are built from fixed text and numbers only, so none
			// can carry a piece of the input longer than a number.
			msg := err.Error()
			if strings.ContainsFunc(msg, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) {
				t.Fatalf("error holds input bytes: %q", msg)
			}
			assertNoCanary(t, err, githubPAT)
			assertNoCanary(t, err, numericCanary)
			assertNoQuotes(t, err)
			return
		}
		kept, n := b.Filter(ciReportFindings)
		if n+len(kept) != len(ciReportFindings) {
			t.Fatalf("Filter lost findings: kept %d + suppressed %d != %d", len(kept), n, len(ciReportFindings))
		}
	})
}

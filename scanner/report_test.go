package scanner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

var reportFindings = []scanner.Finding{
	{RuleID: "github-pat", Description: "GitHub PAT", File: "src/app.go", StartLine: 4, StartColumn: 14, EndLine: 4, EndColumn: 53, Column: 14, EndCol: 53, Entropy: 3.5, Secret: "REDACTED", Fingerprint: "ab"},
	{RuleID: scanner.ManagedRuleID, Description: "passman-managed secret", File: ".env", StartLine: 2, StartColumn: 13, EndLine: 2, EndColumn: 32, Column: 13, EndCol: 32, Secret: "REDACTED", Fingerprint: "cd",
		Managed: &secret.FingerprintMatch{Path: "prod/db/password", Version: 2, Stages: []secret.Stage{secret.StageCurrent, secret.StagePending}, State: secret.StateActive}},
	{RuleID: scanner.ManagedRuleID, Description: "passman-managed secret", File: ".env", StartLine: 3, StartColumn: 1, EndLine: 3, EndColumn: 20, Column: 1, EndCol: 20, Secret: "REDACTED", Fingerprint: "ef",
		Managed: &secret.FingerprintMatch{Path: "prod/db/password", Version: 1, State: secret.StateActive}},
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := scanner.Write(&buf, "text", reportFindings, scanner.Stats{Files: 7, Bytes: 1234, SkippedBinary: 1, SkippedLarge: 2}, nil); err != nil {
		t.Fatal(err)
	}
	want := `src/app.go:4:14 github-pat GitHub PAT
.env:2:13 passman-managed passman-managed secret [managed: prod/db/password v2 (current, pending)]
.env:3:1 passman-managed passman-managed secret [managed: prod/db/password v1]
3 findings in 7 files (1234 bytes); skipped 1 binary, 2 too large
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
	buf.Reset()
	if err := scanner.Write(&buf, "text", nil, scanner.Stats{Files: 1, Bytes: 5}, nil); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "0 findings in 1 file (5 bytes)\n" {
		t.Errorf("empty text = %q", got)
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := scanner.Write(&buf, "json", reportFindings[:2], scanner.Stats{}, nil); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"RuleID": "github-pat", "Description": "GitHub PAT", "File": "src/app.go", "StartLine": 4.0, "StartColumn": 14.0, "EndLine": 4.0, "EndColumn": 53.0,
			"Column": 14.0, "EndCol": 53.0, "Entropy": 3.5, "Secret": "REDACTED", "Fingerprint": "ab"},
		{"RuleID": "passman-managed", "Description": "passman-managed secret", "File": ".env", "StartLine": 2.0, "StartColumn": 13.0, "EndLine": 2.0, "EndColumn": 32.0,
			"Column": 13.0, "EndCol": 32.0, "Secret": "REDACTED", "Fingerprint": "cd",
			"Managed": map[string]any{"path": "prod/db/password", "version": 2.0, "stages": []any{"current", "pending"}, "state": "active"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
	buf.Reset()
	if err := scanner.Write(&buf, "json", nil, scanner.Stats{}, nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "[]\n" {
		t.Errorf("no findings = %q, want []", buf.String())
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	t.Parallel()
	if err := scanner.Write(&bytes.Buffer{}, "xml", nil, scanner.Stats{}, nil); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("error = %v, want ErrInvalidArgument", err)
	}
}

// TestShowSecrets: the value only with Options.ShowSecrets, and never in a
// CI format.
func TestShowSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	content := "github_token = " + githubPAT + "\n"
	hidden := newScanner(t, scanner.Options{})
	fs, _, err := hidden.ScanReader(ctx, "a.txt", strings.NewReader(content))
	if err != nil || len(fs) != 1 || fs[0].Secret != "REDACTED" {
		t.Fatalf("default scan = %+v, %v", fs, err)
	}
	shown := newScanner(t, scanner.Options{ShowSecrets: true})
	fs, st, err := shown.ScanReader(ctx, "a.txt", strings.NewReader(content))
	if err != nil || len(fs) != 1 || fs[0].Secret != githubPAT {
		t.Fatalf("ShowSecrets scan = %+v, %v", fs, err)
	}
	for _, format := range scanner.Formats {
		var buf bytes.Buffer
		err := scanner.Write(&buf, format, fs, st, nil)
		if scanner.ShowsSecrets(format) {
			if err != nil || !strings.Contains(buf.String(), githubPAT) {
				t.Errorf("%s: %v, output without the secret", format, err)
			}
		} else if !errors.Is(err, secret.ErrInvalidArgument) || strings.Contains(buf.String(), githubPAT) {
			t.Errorf("%s wrote a secret value: %v", format, err)
		}
	}
}

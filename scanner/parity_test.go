package scanner_test

import (
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/passman-dev/passman/internal/benchrepo"
	"github.com/passman-dev/passman/scanner"
)

// TestParityWithGitleaks runs the real gitleaks CLI (the version the
// Makefile pins, installed by `make test` into .tools and named by
// $PASSMAN_GITLEAKS; another version fails the test) and ScanGit on
// the same repository, and checks that every secret gitleaks reports is
// reported too: same rule, same file, same secret (compared by content
// fingerprint, as findings carry no secret text).
//
// Findings only passman reports must be explained: they must be the secrets
// the repository builder planted where a merge commit adds them in neither
// parent, which `gitleaks git` never reads (its git log -p shows no diff for
// merges: gitleaks issue #1028). Any other finding at a merge is not
// excused.
func TestParityWithGitleaks(t *testing.T) {
	gitleaks := os.Getenv("PASSMAN_GITLEAKS")
	if gitleaks == "" {
		t.Skip("PASSMAN_GITLEAKS is not set: run through `make test`, which installs gitleaks v8.30.1")
	}
	if _, err := os.Stat(gitleaks); err != nil {
		t.Fatalf("PASSMAN_GITLEAKS: %v", err)
	}
	checkGitleaksVersion(t, gitleaks)
	ctx := context.Background()
	sources, err := benchrepo.SourceDirs(ctx, "..")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	m, err := benchrepo.Build(ctx, repo, benchrepo.Options{Commits: 300, Seed: 3, Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	addEncodedSecrets(t, repo)

	report := filepath.Join(t.TempDir(), "gitleaks.json")
	cmd := exec.Command(gitleaks, "git", "--no-banner", "--log-level", "error", "--exit-code", "0",
		"--report-format", "json", "--report-path", report, repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var theirs []struct {
		RuleID, File, Secret, Commit      string
		StartLine, StartColumn, EndColumn int
	}
	if err := json.Unmarshal(b, &theirs); err != nil {
		t.Fatal(err)
	}
	if len(theirs) < 10 {
		t.Fatalf("gitleaks found %d secrets; the repository should hold more", len(theirs))
	}

	s, err := scanner.New(scanner.Options{Rules: scanner.RulesGitleaks})
	if err != nil {
		t.Fatal(err)
	}
	ours, _, err := s.ScanGit(ctx, repo, scanner.GitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byFingerprint := map[string]scanner.Finding{}
	for _, f := range ours {
		byFingerprint[f.Fingerprint] = f
	}
	want := map[string]bool{}
	glColumns := map[string][][2]int{}
	decoded := 0
	for _, g := range theirs {
		fp := scanner.ContentFingerprint(g.RuleID, g.File, []byte(g.Secret))
		want[fp] = true
		f, ok := byFingerprint[fp]
		if !ok {
			t.Errorf("gitleaks reports %s in %s (commit %.7s); passman does not", g.RuleID, g.File, g.Commit)
			continue
		}
		if f.Commit == g.Commit && f.StartLine == g.StartLine {
			glColumns[fp] = append(glColumns[fp], [2]int{g.StartColumn, g.EndColumn})
		}
	}
	// gitleaks' column numbers, as the field names say. passman reports a
	// secret once per file where gitleaks may report it twice on a line:
	// passman's match must be one of gitleaks'.
	for fp, cols := range glColumns {
		f := byFingerprint[fp]
		if !slices.Contains(cols, [2]int{f.StartColumn, f.EndColumn}) {
			t.Errorf("%s in %s:%d: columns %d-%d, gitleaks %v", f.RuleID, f.File, f.StartLine, f.StartColumn, f.EndColumn, cols)
		}
	}
	if len(glColumns) < 10 {
		t.Errorf("only %d findings compared by column", len(glColumns))
	}
	for _, f := range ours {
		if slices.ContainsFunc(f.Tags, func(tag string) bool { return strings.HasPrefix(tag, "decoded:") }) {
			decoded++
		}
		if want[f.Fingerprint] {
			continue
		}
		if slices.ContainsFunc(m.Planted, func(p benchrepo.Planted) bool {
			return p.Kind == benchrepo.KindMergeOnly && p.Rule == f.RuleID && p.File == f.File && p.Commit == f.Commit
		}) {
			continue // added by a merge: gitleaks reads no merge diffs
		}
		t.Errorf("passman alone reports %s in %s:%d (commit %.7s), unexplained", f.RuleID, f.File, f.StartLine, f.Commit)
	}
	if decoded == 0 {
		t.Error("no finding in base64-encoded text: gitleaks' decoding is not in effect")
	}
	mergeOnly := 0
	for _, p := range m.Planted {
		if p.Kind == benchrepo.KindMergeOnly {
			mergeOnly++
			if !hasFinding(ours, p.Rule, p.File, p.Commit) {
				t.Errorf("the secret only a merge adds (%s in %s) is not reported at the merge", p.Rule, p.File)
			}
		}
	}
	if mergeOnly == 0 {
		t.Error("the repository has no merge-only secret")
	}
	t.Logf("gitleaks: %d findings; passman: %d (%d from decoded text)", len(theirs), len(ours), decoded)
}

// checkGitleaksVersion fails unless the gitleaks binary is the version the
// Makefile pins (GITLEAKS_VERSION): parity with another version proves
// nothing about the one passman claims to match, and a stale binary in
// .tools survives a change of the pin.
func checkGitleaksVersion(t *testing.T, gitleaks string) {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	pin := regexp.MustCompile(`(?m)^GITLEAKS_VERSION\s*:=\s*(v\S+)\s*$`).FindSubmatch(mk)
	if pin == nil {
		t.Fatal("the Makefile pins no GITLEAKS_VERSION")
	}
	want := string(pin[1])
	// `make test` builds gitleaks with go install, which records the
	// module version in the binary; its own version command reports a
	// placeholder in such a build.
	var got string
	if bi, err := buildinfo.ReadFile(gitleaks); err == nil && bi.Main.Path == "github.com/zricethezav/gitleaks/v8" && strings.HasPrefix(bi.Main.Version, "v") {
		got = bi.Main.Version
	} else if out, err := exec.Command(gitleaks, "version").Output(); err == nil {
		got = "v" + strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	}
	if got != want {
		t.Fatalf("%s is gitleaks %q; the Makefile pins %s: remove it and run `make test`", gitleaks, got, want)
	}
}

// addEncodedSecrets commits a base64-encoded AWS key (found by gitleaks'
// decoding pass) and one marked gitleaks:allow (reported by neither).
func addEncodedSecrets(t *testing.T, repo string) {
	rng := rand.New(rand.NewPCG(11, 12))
	key := func() string {
		b := make([]byte, 16)
		for i := range b {
			b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[rng.IntN(32)]
		}
		return "AKIA" + string(b)
	}
	encoded := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("aws_access_key_id=%s", key())))
	content := fmt.Sprintf("blob: %s\nallowed = %q # gitleaks:allow\n", encoded, key())
	if err := os.WriteFile(filepath.Join(repo, "encoded.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "encoded.txt"}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "encoded"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

func hasFinding(fs []scanner.Finding, rule, file, commit string) bool {
	for _, f := range fs {
		if f.RuleID == rule && f.File == file && f.Commit == commit {
			return true
		}
	}
	return false
}

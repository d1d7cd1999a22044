package scanner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// plantedTree is a small repository with secrets gitleaks' default rules
// detect, one of them allowed inline, and places the scanner must skip.
func plantedTree(t *testing.T) string {
	t.Helper()
	root := writeTree(t, map[string]string{
		"config/aws.ini": "[default]\naws_access_key_id = " + awsKeyID + "\nregion = eu-west-1\n",
		"src/app.go":     "package app\n\n// token for CI\nconst tok = \"" + githubPAT + "\"\nconst ok = \"" + githubPAT + "\" // gitleaks:allow\n",
		"keys/id_rsa":    privateKey + "\n",
		"README.md":      "nothing to see\n",
		".git/config":    "token = " + githubPAT + "\n",
	})
	if err := os.Symlink(filepath.Join(root, "src", "app.go"), filepath.Join(root, "link.go")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "missing"), filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestScanDirDefaultRules(t *testing.T) {
	t.Parallel()
	s := newScanner(t, scanner.Options{})
	got, st, err := s.ScanDir(context.Background(), plantedTree(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []loc{
		{File: "config/aws.ini", Line: 2, Col: 21, EndLine: 2, EndCol: 40, Rule: "aws-access-token"},
		{File: "keys/id_rsa", Line: 1, Col: 1, EndLine: 3, EndCol: 29, Rule: "private-key"},
		{File: "src/app.go", Line: 4, Col: 14, EndLine: 4, EndCol: 53, Rule: "github-pat"},
	}
	if diff := cmp.Diff(want, locs(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if st.Files != 4 || st.SkippedBinary != 0 || st.SkippedLarge != 0 {
		t.Errorf("stats = %+v, want 4 files scanned, none skipped", st)
	}
	for _, f := range got {
		if f.Secret != "REDACTED" || f.Description == "" || len(f.Fingerprint) != 64 {
			t.Errorf("finding %+v: want Secret REDACTED, a description and a 64-hex fingerprint", f)
		}
	}
}

func TestManaged(t *testing.T) {
	t.Parallel()
	s := newScanner(t, scanner.Options{Managed: buildIndex(t)})
	root := writeTree(t, map[string]string{
		".env":      "APP=1\nDB_PASSWORD=" + managedValue + "\n",
		"other.env": "DB_PASSWORD=" + managedMiss + "\nX=" + managedValue + "x\n",
	})
	got, _, err := s.ScanDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	// The .env rule's match on the line covers the managed value: only the
	// managed finding is kept. The near misses in other.env are not
	// managed; the .env rule still reports the first (gitleaks drops its
	// generic-api-key match there for the more specific rule's).
	want := []loc{
		{File: ".env", Line: 2, Col: 13, EndLine: 2, EndCol: 32, Rule: scanner.ManagedRuleID, ManagedPath: "prod/db/password", ManagedVer: 2},
		{File: "other.env", Line: 1, Col: 1, EndLine: 1, EndCol: 32, Rule: "passman-dotenv-password"},
	}
	if diff := cmp.Diff(want, locs(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if m := got[0].Managed; m == nil || m.State != secret.StateActive || !slicesEqual(m.Stages, []secret.Stage{secret.StageCurrent}) {
		t.Errorf("managed match = %+v, want active and current", m)
	}
}

func slicesEqual(a, b []secret.Stage) bool { return cmp.Equal(a, b) }

func TestRedactionCanary(t *testing.T) {
	t.Parallel()
	s := newScanner(t, scanner.Options{Managed: buildIndex(t), MaxFileSize: 1 << 10})
	root := plantedTree(t)
	files := map[string]string{
		"creds":     "aws_secret_access_key = " + awsSecret + "\n",
		"app/.env":  "DB_PASSWORD=" + managedValue + "\n",
		"huge.txt":  githubPAT + strings.Repeat("\n", 2<<10),
		"mixed.bin": "\x00" + githubPAT,
	}
	for name, c := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, st, err := s.ScanDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 5 {
		t.Fatalf("got %d findings, want at least 5 (every planted secret): %+v", len(got), got)
	}
	var out bytes.Buffer
	for _, format := range scanner.Formats {
		if err := scanner.Write(&out, format, got, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(&out, "%+v %#v", got, got)
	// An oversized stream's error must not quote it either.
	_, _, err = s.ScanReader(context.Background(), "stdin", strings.NewReader(files["huge.txt"]))
	if !errors.Is(err, secret.ErrTooLarge) {
		t.Fatalf("ScanReader(huge) error = %v, want ErrTooLarge", err)
	}
	out.WriteString(err.Error())
	for _, raw := range rawSecrets {
		if strings.Contains(out.String(), raw) {
			t.Errorf("output contains the raw secret %q", raw)
		}
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		toml, want string
	}{
		"bad rule regex":       {"[[rules]]\nid = \"broken-rule\"\nregex = '''(unclosed'''\n", "broken-rule"},
		"bad rule path":        {"[[rules]]\nid = \"bad-path\"\npath = '''[z-a]'''\n", "bad-path"},
		"bad allowlist regex":  {"[[rules]]\nid = \"r1\"\nregex = '''x'''\n[[rules.allowlists]]\nregexes = ['''(?P<''']\n", "r1"},
		"bad global allowlist": {"[[allowlists]]\npaths = ['''*''']\n", "global allowlist"},
		"not toml":             {"[[rules\n", "read gitleaks config"},
		"extend path":          {"[extend]\npath = \"other.toml\"\n", "not supported"},
		"unknown target rule":  {"[extend]\nuseDefault = true\n[[allowlists]]\ntargetRules = [\"nope\"]\nregexes = ['''x''']\n", "nope"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), ".gitleaks.toml")
			if err := os.WriteFile(p, []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := scanner.New(scanner.Options{ConfigPath: p})
			if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %v, want ErrInvalidArgument mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := scanner.New(scanner.Options{ConfigPath: filepath.Join(t.TempDir(), "missing.toml")}); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("missing config: error = %v, want ErrInvalidArgument", err)
	}
}

func TestCustomConfig(t *testing.T) {
	t.Parallel()
	custom := "[[rules]]\nid = \"acme-key\"\ndescription = \"ACME key\"\nregex = '''acme_[0-9]{8}'''\nkeywords = [\"acme_\"]\n"
	root := writeTree(t, map[string]string{"a.txt": "k = acme_12345678\nt = " + githubPAT + "\n"})
	tests := map[string]struct {
		toml string
		want []string
	}{
		"replaces defaults": {custom, []string{"acme-key"}},
		"extends defaults":  {"[extend]\nuseDefault = true\n" + custom, []string{"acme-key", "github-pat"}},
		"disables a default": {"[extend]\nuseDefault = true\ndisabledRules = [\"github-pat\"]\n" + custom,
			[]string{"acme-key"}},
		"targeted allowlist": {"[extend]\nuseDefault = true\n" + custom + "[[allowlists]]\ntargetRules = [\"github-pat\"]\nregexes = ['''^ghp_''']\n",
			[]string{"acme-key"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), ".gitleaks.toml")
			if err := os.WriteFile(p, []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			// Loaded several times: gitleaks' own loader stops extending
			// after its second load in a process.
			for range 3 {
				s := newScanner(t, scanner.Options{ConfigPath: p})
				got, _, err := s.ScanDir(context.Background(), root)
				if err != nil {
					t.Fatal(err)
				}
				var rules []string
				for _, f := range got {
					rules = append(rules, f.RuleID)
				}
				if diff := cmp.Diff(tc.want, rules); diff != "" {
					t.Fatalf("rules (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestSkips(t *testing.T) {
	t.Parallel()
	s := newScanner(t, scanner.Options{MaxFileSize: 100})
	root := writeTree(t, map[string]string{
		"bin.dat":   "ELF\x00\x01" + githubPAT,
		"large.txt": strings.Repeat("x", 101),
		"exact.txt": strings.Repeat("y", 100),
		"latin1.go": "caf\xe9 \xff\xfe = \"" + githubPAT + "\"\n",
	})
	if err := os.Symlink(filepath.Join(root, "gone"), filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	got, st, err := s.ScanDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	want := []loc{{File: "latin1.go", Line: 1, Col: 12, EndLine: 1, EndCol: 51, Rule: "github-pat"}}
	if diff := cmp.Diff(want, locs(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	wantStats := scanner.Stats{Files: 2, Bytes: 100 + int64(len(files(root, "latin1.go"))), SkippedBinary: 1, SkippedLarge: 1}
	if st != wantStats {
		t.Errorf("stats = %+v, want %+v", st, wantStats)
	}
}

func files(root, name string) []byte {
	b, _ := os.ReadFile(filepath.Join(root, name))
	return b
}

func TestScanReader(t *testing.T) {
	t.Parallel()
	s := newScanner(t, scanner.Options{MaxFileSize: 200})
	ctx := context.Background()

	got, st, err := s.ScanReader(ctx, "-", strings.NewReader("x\ny = "+githubPAT))
	if err != nil {
		t.Fatal(err)
	}
	want := []loc{{File: "-", Line: 2, Col: 5, EndLine: 2, EndCol: 44, Rule: "github-pat"}}
	if diff := cmp.Diff(want, locs(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if st.Files != 1 || st.Bytes != int64(len("x\ny = "+githubPAT)) {
		t.Errorf("stats = %+v", st)
	}

	if _, _, err := s.ScanReader(ctx, "big", strings.NewReader(strings.Repeat("z", 201))); !errors.Is(err, secret.ErrTooLarge) {
		t.Errorf("oversized: error = %v, want ErrTooLarge", err)
	}
	if _, st, err := s.ScanReader(ctx, "b", strings.NewReader("\x00"+githubPAT)); err != nil || st.SkippedBinary != 1 || st.Files != 0 {
		t.Errorf("binary: stats %+v, error %v; want skipped and counted", st, err)
	}
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, _, err := s.ScanReader(ctx, "dir", dir); err == nil {
		t.Error("ScanReader(directory) succeeded, want an error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.ScanReader(cctx, "-", strings.NewReader("a")); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: error = %v, want context.Canceled", err)
	}
}

func TestScanDirErrors(t *testing.T) {
	t.Parallel()
	s := newScanner(t, scanner.Options{})
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.ScanDir(cctx, plantedTree(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: error = %v, want context.Canceled", err)
	}
	if _, _, err := s.ScanDir(context.Background(), filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing root: error = %v, want ErrNotExist", err)
	}
}

func TestFingerprintContentBased(t *testing.T) {
	t.Parallel()
	s := newScanner(t, scanner.Options{Managed: buildIndex(t)})
	scan := func(name, content string) map[string]scanner.Finding {
		t.Helper()
		got, _, err := s.ScanReader(context.Background(), name, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]scanner.Finding{}
		for _, f := range got {
			out[f.RuleID] = f
		}
		return out
	}
	body := "t = " + githubPAT + "\np: " + managedValue + "\n"
	before := scan("a.yaml", body)
	after := scan("a.yaml", "\n\n# moved down\n  "+body)
	other := scan("b.yaml", body)
	for _, rule := range []string{"github-pat", scanner.ManagedRuleID} {
		b, a, o := before[rule], after[rule], other[rule]
		if b.Fingerprint == "" || a.StartLine == b.StartLine {
			t.Fatalf("%s: before %+v after %+v: want a finding that moved", rule, b, a)
		}
		if a.Fingerprint != b.Fingerprint {
			t.Errorf("%s: fingerprint changed when the secret moved lines", rule)
		}
		if o.Fingerprint == b.Fingerprint {
			t.Errorf("%s: fingerprint is the same in another file", rule)
		}
	}
	if before["github-pat"].Fingerprint == scan("a.yaml", "t = "+strings.Replace(githubPAT, "a", "z", 1))["github-pat"].Fingerprint {
		t.Error("fingerprint is the same for a different secret")
	}
}

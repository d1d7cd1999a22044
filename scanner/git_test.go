package scanner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// The git tests build real repositories with the git CLI in temporary
// directories. Every planted secret is generated at run time from a seed
// derived from the test's name, so failures reproduce and this file holds
// no secret-looking literal.

const (
	ruleAWS = "aws-access-token"
	rulePAT = "github-pat"
)

// TestMain keeps the developer's git settings out of every git process of
// this package, the scanner's own included (it inherits the environment):
// no system or global config, no global attributes file, no GIT_DIR or
// GIT_INDEX_FILE from a hook running the tests, and no repository above the
// temporary directory that a "not a repository" directory could belong to.
// HOME stays: go commands run by other tests find their caches through it;
// the tests' own git commands get a HOME of their own (see runGit).
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GIT_") {
			os.Unsetenv(k)
		}
	}
	for k, v := range map[string]string{
		"GIT_CONFIG_NOSYSTEM":     "1",
		"GIT_CONFIG_GLOBAL":       os.DevNull,
		"GIT_ATTR_NOSYSTEM":       "1",
		"GIT_CONFIG_COUNT":        "1",
		"GIT_CONFIG_KEY_0":        "core.attributesFile",
		"GIT_CONFIG_VALUE_0":      os.DevNull,
		"GIT_TERMINAL_PROMPT":     "0",
		"GIT_CEILING_DIRECTORIES": os.TempDir(),
	} {
		os.Setenv(k, v)
	}
	os.Exit(m.Run())
}

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on PATH")
	}
}

// planted generates the test's secrets and checks that none of them ever
// leaves the scanner.
type planted struct {
	rng  *rand.Rand
	list []string
}

func newPlanted(t *testing.T) *planted {
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return &planted{rng: rand.New(rand.NewPCG(h.Sum64(), 0x9e3779b97f4a7c15))}
}

// draw returns prefix followed by n characters of alphabet, with enough
// entropy for gitleaks' rules (3.0 for both used here) and never repeated.
func (p *planted) draw(prefix, alphabet string, n int) string {
	for {
		b := []byte(prefix)
		for range n {
			b = append(b, alphabet[p.rng.IntN(len(alphabet))])
		}
		s := string(b)
		if entropy(s) >= 3.5 && !strings.HasSuffix(s, "EXAMPLE") && !slices.Contains(p.list, s) {
			p.list = append(p.list, s)
			return s
		}
	}
}

// aws is an AWS access key id (gitleaks rule aws-access-token).
func (p *planted) aws() string {
	return p.draw("AK"+"IA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
}

// pat is a GitHub personal access token (gitleaks rule github-pat).
func (p *planted) pat() string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz" + "0123456789"
	return p.draw("gh"+"p_", alnum, 36)
}

func entropy(s string) float64 {
	counts := map[rune]float64{}
	for _, r := range s {
		counts[r]++
	}
	var e float64
	for _, c := range counts {
		f := c / float64(len(s))
		e -= f * math.Log2(f)
	}
	return e
}

// noLeak fails the test if a finding (as JSON or as Go syntax) or the error
// holds a planted secret.
func (p *planted) noLeak(t *testing.T, fs []scanner.Finding, err error) {
	t.Helper()
	b, jerr := json.Marshal(fs)
	if jerr != nil {
		t.Fatalf("marshal findings: %v", jerr)
	}
	text := string(b) + fmt.Sprintf("\n%+v\n%#v\n", fs, fs)
	if err != nil {
		text += err.Error()
	}
	for _, s := range p.list {
		if strings.Contains(text, s) {
			t.Errorf("a finding or the error holds the planted secret %.6s…", s)
		}
	}
}

var defaultScanner = sync.OnceValues(func() (*scanner.Scanner, error) {
	return scanner.New(scanner.Options{})
})

// gitScanner is one scanner with gitleaks' default rules, shared by the
// tests: a Scanner is immutable and safe for concurrent scans.
func gitScanner(t *testing.T) *scanner.Scanner {
	t.Helper()
	s, err := defaultScanner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scanGit runs ScanGit with a deadline and checks its output for leaks.
func (p *planted) scanGit(t *testing.T, s *scanner.Scanner, dir string, opts scanner.GitOptions) ([]scanner.Finding, scanner.Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	fs, st, err := s.ScanGit(ctx, dir, opts)
	p.noLeak(t, fs, err)
	return fs, st, err
}

func (p *planted) mustScanGit(t *testing.T, s *scanner.Scanner, dir string, opts scanner.GitOptions) ([]scanner.Finding, scanner.Stats) {
	t.Helper()
	fs, st, err := p.scanGit(t, s, dir, opts)
	if err != nil {
		t.Fatalf("ScanGit(%+v): %v", opts, err)
	}
	return fs, st
}

func (p *planted) scanStaged(t *testing.T, s *scanner.Scanner, dir string) ([]scanner.Finding, scanner.Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	fs, st, err := s.ScanStaged(ctx, dir)
	p.noLeak(t, fs, err)
	return fs, st, err
}

// gitLoc is the part of a git finding the tests compare.
type gitLoc struct {
	Rule              string
	File              string
	Line, Col, EndCol int
	EndLine           int
	Commit            string
}

// at is the finding of secret on line number line of file, whose text is
// lineText, introduced by commit.
func at(rule, file string, line int, lineText, secret, commit string) gitLoc {
	col := strings.Index(lineText, secret) + 1
	if col == 0 {
		panic("at: the secret is not on the line")
	}
	return gitLoc{Rule: rule, File: file, Line: line, Col: col, EndCol: col + len(secret) - 1, EndLine: line, Commit: commit}
}

func gitLocs(fs []scanner.Finding) []gitLoc {
	var out []gitLoc
	for _, f := range fs {
		out = append(out, gitLoc{Rule: f.RuleID, File: f.File, Line: f.StartLine, Col: f.Column, EndCol: f.EndCol, EndLine: f.EndLine, Commit: f.Commit})
	}
	return out
}

// sortedLocs orders locations by file and line, for histories whose
// topological order is not unique.
func sortedLocs(ls []gitLoc) []gitLoc {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b gitLoc) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	return ls
}

func checkLocs(t *testing.T, want []gitLoc, got []scanner.Finding) {
	t.Helper()
	if diff := cmp.Diff(want, gitLocs(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func checkSortedLocs(t *testing.T, want []gitLoc, got []scanner.Finding) {
	t.Helper()
	if diff := cmp.Diff(sortedLocs(want), sortedLocs(gitLocs(got))); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// testRepo is a repository built with the git CLI. Every commit has a
// fixed author, committer and date, a minute after the previous one, so
// the same steps give the same commit ids.
type testRepo struct {
	t    *testing.T
	dir  string
	home string // HOME of its git commands
	n    int    // commits made
}

const (
	epoch       = 1700000000
	authorName  = "Ada Author"
	authorEmail = "ada@example.com"
)

func newRepo(t *testing.T) *testRepo {
	t.Helper()
	needGit(t)
	r := &testRepo{t: t, dir: t.TempDir(), home: t.TempDir()}
	r.git("init", "-q")
	r.git("symbolic-ref", "HEAD", "refs/heads/main")
	return r
}

// date is the author and committer date of the repository's next commit,
// in a zone east of UTC, as git accepts it.
func (r *testRepo) date() string { return fmt.Sprintf("%d +0200", epoch+60*r.n) }

// commitDate is the date findings of the n-th commit (0-based) report.
func commitDate(n int) string {
	return time.Unix(epoch+60*int64(n), 0).UTC().Format(time.RFC3339)
}

func (r *testRepo) run(args ...string) (string, error) {
	return runGit(r.dir, r.home, r.date(), args...)
}

// runGit runs git in dir with a HOME of its own (on top of what TestMain
// set) and a fixed identity and date.
func runGit(dir, home, date string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-c", "gc.auto=0", "-c", "core.autocrlf=false", "-c", "commit.gpgSign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+home, "XDG_CONFIG_HOME="+home,
		"GIT_AUTHOR_NAME="+authorName, "GIT_AUTHOR_EMAIL="+authorEmail, "GIT_AUTHOR_DATE="+date,
		"GIT_COMMITTER_NAME=Cy Committer", "GIT_COMMITTER_EMAIL=cy@example.com", "GIT_COMMITTER_DATE="+date,
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	out, err := r.run(args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *testRepo) write(name, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRepo) remove(name string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.dir, filepath.FromSlash(name))); err != nil {
		r.t.Fatal(err)
	}
}

// commit commits everything in the work tree (finishing a merge in
// progress) and returns the new commit's id.
func (r *testRepo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "--no-verify", "-m", msg)
	r.n++
	return r.git("rev-parse", "HEAD")
}

// merge merges branch into the current one with a merge commit.
func (r *testRepo) merge(branch string) string {
	r.t.Helper()
	r.git("merge", "-q", "--no-ff", "--no-edit", branch)
	r.n++
	return r.git("rev-parse", "HEAD")
}

// startMerge starts merging branch without committing, conflicts allowed.
func (r *testRepo) startMerge(branch string) {
	r.t.Helper()
	_, _ = r.run("merge", "-q", "--no-ff", "--no-commit", branch)
	if _, err := r.run("rev-parse", "-q", "--verify", "MERGE_HEAD"); err != nil {
		r.t.Fatalf("merge %s did not start: %v", branch, err)
	}
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func TestScanGitCommits(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()

	keyLine := "id = " + key
	r.write("app/config.ini", lines("[aws]", keyLine))
	c1 := r.commit("root commit with a key")
	r.write("README", "hello\n")
	r.commit("docs")
	tokLine := "tok = " + tok
	r.write("app/config.ini", lines("[aws]", keyLine, "", "[gh]", tokLine))
	c3 := r.commit("token")

	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{
		at(ruleAWS, "app/config.ini", 2, keyLine, key, c1),
		at(rulePAT, "app/config.ini", 5, tokLine, tok, c3),
	}, got)
	for i, f := range got {
		wantDate := commitDate(2 * i) // c1 is commit 0, c3 commit 2
		if f.Author != authorName || f.Email != authorEmail || f.Date != wantDate {
			t.Errorf("finding %d: author %q <%s> at %s, want %q <%s> at %s", i, f.Author, f.Email, f.Date, authorName, authorEmail, wantDate)
		}
		if f.Secret != "REDACTED" || len(f.Fingerprint) != 64 || f.Description == "" {
			t.Errorf("finding %d = %+v: want Secret REDACTED, a fingerprint and a description", i, f)
		}
		if want := f.Commit + ":app/config.ini:" + f.RuleID + ":" + fmt.Sprint(f.StartLine); f.GitleaksFingerprint() != want {
			t.Errorf("GitleaksFingerprint() = %q, want %q", f.GitleaksFingerprint(), want)
		}
	}
	wantStats := scanner.Stats{
		Files:   3,
		Bytes:   int64(len(lines("[aws]", keyLine)) + len("hello\n") + len(lines("", "[gh]", tokLine))),
		Commits: 3,
	}
	if st != wantStats {
		t.Errorf("stats = %+v, want %+v", st, wantStats)
	}
}

func TestScanGitRootCommitOnly(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	tok := p.pat()
	line := "const token = \"" + tok + "\""
	r.write("main.go", lines("package main", "", line))
	c1 := r.commit("initial")
	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(rulePAT, "main.go", 3, line, tok, c1)}, got)
	if st.Commits != 1 || st.Files != 1 {
		t.Errorf("stats = %+v, want 1 commit, 1 file", st)
	}
}

func TestScanGitEmptyRepo(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	if len(got) != 0 || st != (scanner.Stats{}) {
		t.Errorf("empty repository: findings %+v, stats %+v; want none", got, st)
	}
}

// An "evil merge" adds lines neither parent has; gitleaks, reading the
// first-parent diff only, misses them.
func TestScanGitEvilMerge(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()

	r.write("f.txt", lines("one", "two", "three"))
	r.commit("base")
	r.git("checkout", "-q", "-b", "side")
	r.write("f.txt", lines("one", "two", "three", "side"))
	r.commit("side")
	r.git("checkout", "-q", "main")
	r.write("f.txt", lines("main", "one", "two", "three"))
	r.commit("main")
	r.startMerge("side")
	keyLine := "leak = " + key
	r.write("f.txt", lines("main", "one", "two", keyLine, "three", "side"))
	tokLine := "  token: " + tok
	r.write("new/evil.yaml", lines("a: 1", tokLine))
	m := r.commit("merge side")

	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{
		at(ruleAWS, "f.txt", 4, keyLine, key, m),
		at(rulePAT, "new/evil.yaml", 2, tokLine, tok, m),
	}, got)
	if st.Commits != 4 {
		t.Errorf("stats = %+v, want 4 commits", st)
	}
}

// What a merge carries over from a branch is attributed to the branch's
// commit, also where the merge resolved a conflict by taking that line.
func TestScanGitSideBranchMerge(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok, key2 := p.aws(), p.pat(), p.aws()

	r.write("f.txt", lines("a", "b", "c"))
	r.commit("base")
	r.git("checkout", "-q", "-b", "side")
	keyLine := "leak = " + key
	r.write("side.txt", lines("x", keyLine))
	tokLine := "b = " + tok
	r.write("f.txt", lines("a", tokLine, "c"))
	cs := r.commit("side adds secrets")
	r.git("checkout", "-q", "-b", "side2", "main")
	key2Line := "k2 " + key2
	r.write("side2.txt", lines(key2Line))
	cs2 := r.commit("side2")
	r.git("checkout", "-q", "main")
	r.write("f.txt", lines("a", "bee", "c"))
	r.write("main.txt", "m\n")
	r.commit("main diverges")
	r.startMerge("side") // conflicts on f.txt line 2
	r.write("f.txt", lines("a", tokLine, "c"))
	m1 := r.commit("merge side, taking its line")
	m2 := r.merge("side2")

	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkSortedLocs(t, []gitLoc{
		at(rulePAT, "f.txt", 2, tokLine, tok, cs),
		at(ruleAWS, "side.txt", 2, keyLine, key, cs),
		at(ruleAWS, "side2.txt", 1, key2Line, key2, cs2),
	}, got)
	for _, f := range got {
		if f.Commit == m1 || f.Commit == m2 {
			t.Errorf("finding attributed to a merge: %+v", gitLocs([]scanner.Finding{f}))
		}
	}
	if st.Commits != 6 {
		t.Errorf("stats = %+v, want 6 commits", st)
	}
}

func TestScanGitDeletedSecret(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()
	keyLine := "aws " + key
	tokLine := tok
	r.write("a.txt", lines("1", "2", keyLine, "4"))
	r.write("b.txt", lines(tokLine))
	c1 := r.commit("add")
	r.write("a.txt", lines("1", "2", "4"))
	r.commit("remove the line")
	r.remove("b.txt")
	r.commit("remove the file")

	got, _ := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{
		at(ruleAWS, "a.txt", 3, keyLine, key, c1),
		at(rulePAT, "b.txt", 1, tokLine, tok, c1),
	}, got)
}

func TestScanGitRename(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key := p.aws()
	keyLine := "key=" + key
	body := []string{"# settings", keyLine, "alpha", "beta", "gamma", "delta", "epsilon"}
	r.write("old/name.conf", lines(body...))
	c1 := r.commit("add")
	if err := os.Mkdir(filepath.Join(r.dir, "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("mv", "old/name.conf", "new/renamed.conf")
	r.commit("rename")
	r.write("new/renamed.conf", lines(append(body, "zeta")...))
	r.commit("edit the renamed file")

	got, _ := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(ruleAWS, "old/name.conf", 2, keyLine, key, c1)}, got)
}

// A rename with an edit, in a commit that also adds a secret to the
// renamed file and to a file that is not a rename: only the new ones are
// reported there (the history is read without rename detection, and such
// a commit read again with it), as with gitleaks; a merge that renames
// keeps the rule too.
func TestScanGitRenameWithEdits(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, key2, tok := p.aws(), p.aws(), p.pat()
	body := []string{"# settings", "key=" + key, "alpha", "beta", "gamma", "delta", "epsilon"}
	r.write("old/name.conf", lines(body...))
	c1 := r.commit("add")
	r.remove("old/name.conf")
	r.write("new/renamed.conf", lines(append(body, "other="+key2)...))
	r.write("fresh.txt", lines(tok))
	c2 := r.commit("rename, edit and add")

	got, _ := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkSortedLocs(t, []gitLoc{
		at(ruleAWS, "old/name.conf", 2, "key="+key, key, c1),
		at(ruleAWS, "new/renamed.conf", 8, "other="+key2, key2, c2),
		at(rulePAT, "fresh.txt", 1, tok, tok, c2),
	}, got)
}

// A secret stays one finding, at the commit that added it, through edits
// around it, edits of its own line and a removal and re-addition.
func TestScanGitSecretCarriedThroughEdits(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	tok := p.pat()
	line := "token: " + tok
	r.write("s.yaml", lines("x: 1", line))
	c1 := r.commit("add")
	r.write("s.yaml", lines("# a", "# b", "# c", "x: 1", line))
	r.commit("insert lines above")
	r.write("s.yaml", lines("# a", "# b", "# c", "x: 1", line+" # rotate me", "y: 2"))
	r.commit("edit the secret's line")
	r.write("s.yaml", lines("# a", "x: 1", "y: 2"))
	r.commit("remove it")
	r.write("s.yaml", lines("# a", "x: 1", "y: 2", line))
	r.commit("put it back")

	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(rulePAT, "s.yaml", 2, line, tok, c1)}, got)
	if st.Commits != 5 {
		t.Errorf("stats = %+v, want 5 commits", st)
	}
}

func TestScanGitBinary(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	r.write("blob.dat", "\x00\x01\x02 "+p.aws()+"\n"+p.pat()+"\n\xff\xfe")
	r.write("text.txt", "nothing here\n")
	r.commit("binary")
	r.write("blob.dat", "\x00\x01\x02 "+p.aws()+"\n")
	r.commit("binary again")
	// A text file turns binary: what the commit adds to it is skipped,
	// while the commit's other files are scanned.
	tok := p.pat()
	tokLine := "t " + tok
	r.write("text.txt", lines("nothing here", "k "+p.aws(), "\x00"))
	r.write("other.txt", lines(tokLine))
	c3 := r.commit("text turns binary")

	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(rulePAT, "other.txt", 1, tokLine, tok, c3)}, got)
	want := scanner.Stats{Files: 2, Bytes: int64(len("nothing here\n") + len(tokLine) + 1), SkippedBinary: 3, Commits: 3}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
}

// A 50,000,000-byte file (under the default 50 MiB limit) with a secret
// near its end.
func TestScanGitLargeFile(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key := p.aws()
	const size, lineLen = 50_000_000, 1000
	const secretLine = size/lineLen - 7
	filler := strings.Repeat(".", lineLen-1) + "\n"
	keyLine := "leak = " + key + " " + strings.Repeat(".", lineLen-len("leak =  ")-len(key)-1)
	var b strings.Builder
	b.Grow(size)
	for i := 1; i <= size/lineLen; i++ {
		if i == secretLine {
			b.WriteString(keyLine + "\n")
		} else {
			b.WriteString(filler)
		}
	}
	if b.Len() != size {
		t.Fatalf("built %d bytes", b.Len())
	}
	r.write("big.txt", b.String())
	c1 := r.commit("big")

	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(ruleAWS, "big.txt", secretLine, keyLine, key, c1)}, got)
	want := scanner.Stats{Files: 1, Bytes: size, Commits: 1}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
}

// Additions over MaxFileSize are skipped and counted; the rest of the
// commit is scanned.
func TestScanGitSizeLimit(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()
	r.write("large.txt", strings.Repeat("x\n", 600)+"leak "+key+"\n")
	tokLine := "t " + tok
	r.write("small.txt", lines(tokLine))
	c1 := r.commit("files")
	s := newScanner(t, scanner.Options{MaxFileSize: 1000})
	got, st := p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(rulePAT, "small.txt", 1, tokLine, tok, c1)}, got)
	if st.SkippedLarge != 1 || st.Files != 1 {
		t.Errorf("stats = %+v, want large.txt skipped and counted, small.txt scanned", st)
	}
}

// Single lines of 1,000,000 bytes (within the parser's read buffer) and of
// 3 MiB (longer than it).
func TestScanGitLongLines(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	tok, key := p.pat(), p.aws()
	oneMB := strings.Repeat("a", 600_000) + " " + tok + " " + strings.Repeat("b", 1_000_000-600_002-len(tok))
	long := strings.Repeat("c", 3<<20) + " " + key + " d"
	r.write("one.txt", oneMB+"\n")
	r.write("three.txt", "first\n"+long+"\n")
	c1 := r.commit("long lines")
	if len(oneMB) != 1_000_000 {
		t.Fatalf("line is %d bytes", len(oneMB))
	}
	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{
		at(rulePAT, "one.txt", 1, oneMB, tok, c1),
		at(ruleAWS, "three.txt", 2, long, key, c1),
	}, got)
	if st.SkippedLarge != 0 || st.Files != 2 {
		t.Errorf("stats = %+v, want 2 files scanned, none skipped", st)
	}
}

func TestScanGitLatin1(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()
	keyLine := "caf\xe9 \xff\xfe = " + key + " \xe0\xe7"
	tokLine := "\xa9\xae" + tok + "\xb5"
	r.write("latin1.txt", "na\xefve\n"+keyLine+"\n\xe9t\xe9\n"+tokLine+"\n")
	c1 := r.commit("latin-1")
	got, _ := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{
		at(ruleAWS, "latin1.txt", 2, keyLine, key, c1),
		at(rulePAT, "latin1.txt", 4, tokLine, tok, c1),
	}, got)
}

// File names git quotes, and a name with a space (git ends its "+++" line
// with a tab then).
func TestScanGitFileNames(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	names := []string{
		"with space.txt",
		"dir with space/file.txt",
		"tab\there.txt",
		`quote"d.txt`,
		"café.txt",
		"tab\t\"quote\"café.txt", // quoted, no space
		"back\\slash.txt",
		"nl\nname.txt",
		"b/looks-like-a-prefix.txt",
		"ünï/cödé.txt",
	}
	type placed struct{ name, line, tok string }
	var ps []placed
	for _, n := range names {
		tok := p.pat()
		line := "t=" + tok
		r.write(n, lines(line))
		ps = append(ps, placed{n, line, tok})
	}
	c1 := r.commit("odd names")
	var want []gitLoc
	for _, x := range ps {
		want = append(want, at(rulePAT, x.name, 1, x.line, x.tok, c1))
	}
	got, _ := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkSortedLocs(t, want, got)
}

// A name with a space and characters git quotes: git ends the "+++" line
// with a tab after the closing quote.
func TestScanGitFileNameQuotedWithSpace(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	tok := p.pat()
	name := "sp ace\ttab \"q\" café.txt"
	line := "t=" + tok
	r.write(name, lines(line))
	c1 := r.commit("odd name")
	got, _ := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(rulePAT, name, 1, line, tok, c1)}, got)
}

// rangeRepo is a pull request's history:
//
//	main:    c1 (cfg.txt holds base) - c2 ------------- c3 (other.txt: onMain)
//	                                     \                 \
//	feature:                              f1 - f2 - f3 ----- m
//
// f1 re-indents the line holding base and adds inRange; f2 adds added,
// f3 removes it again; c3 adds onMain on main; m merges main into feature
// and adds evil in the merge itself.
type rangeRepo struct {
	*testRepo
	c1, c2, c3, f1, f2, f3, m      string
	base, inRange, added, onMain   string
	baseLine, inRangeLine, addLine string
	onMainLine, evil, evilLine     string
}

func newRangeRepo(t *testing.T, p *planted) *rangeRepo {
	r := &rangeRepo{testRepo: newRepo(t)}
	r.base, r.inRange, r.added, r.onMain, r.evil = p.aws(), p.pat(), p.aws(), p.aws(), p.pat()
	r.baseLine = "leak = " + r.base
	r.write("cfg.txt", lines("[a]", r.baseLine))
	r.write("other.txt", "o\n")
	r.c1 = r.commit("c1")
	r.write("README", "r\n")
	r.c2 = r.commit("c2")
	r.git("checkout", "-q", "-b", "feature")
	r.inRangeLine = "tok = " + r.inRange
	r.write("cfg.txt", lines("[a]", "    "+r.baseLine, r.inRangeLine))
	r.f1 = r.commit("f1: re-indent, add a token")
	r.addLine = "k " + r.added
	r.write("new.txt", lines("x", r.addLine))
	r.f2 = r.commit("f2: add a key")
	r.remove("new.txt")
	r.f3 = r.commit("f3: remove it")
	r.git("checkout", "-q", "main")
	r.onMainLine = "leak = " + r.onMain
	r.write("other.txt", lines("o", r.onMainLine))
	r.c3 = r.commit("c3")
	r.git("checkout", "-q", "feature")
	r.startMerge("main")
	r.evilLine = "evil = " + r.evil
	r.write("cfg.txt", lines("[a]", "    "+r.baseLine, r.inRangeLine, r.evilLine))
	r.m = r.commit("merge main, with an evil line")
	return r
}

func TestScanGitRange(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRangeRepo(t, p)
	s := gitScanner(t)

	// main..feature: f1, f2, f3 and m. base was in cfg.txt at the merge
	// base (c3) and is not new although f1 rewrote its line; onMain came
	// from main.
	got, st := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Range: "main..feature"})
	checkLocs(t, []gitLoc{
		at(rulePAT, "cfg.txt", 3, r.inRangeLine, r.inRange, r.f1),
		at(ruleAWS, "new.txt", 2, r.addLine, r.added, r.f2),
		at(rulePAT, "cfg.txt", 4, r.evilLine, r.evil, r.m),
	}, got)
	if st.Commits != 4 {
		t.Errorf("main..feature: stats = %+v, want 4 commits", st)
	}

	// From the fork point, c3 is in the range too.
	got, st = p.mustScanGit(t, s, r.dir, scanner.GitOptions{Range: r.c2 + "..feature"})
	checkSortedLocs(t, []gitLoc{
		at(rulePAT, "cfg.txt", 3, r.inRangeLine, r.inRange, r.f1),
		at(rulePAT, "cfg.txt", 4, r.evilLine, r.evil, r.m),
		at(ruleAWS, "new.txt", 2, r.addLine, r.added, r.f2),
		at(ruleAWS, "other.txt", 2, r.onMainLine, r.onMain, r.c3),
	}, got)
	if st.Commits != 5 {
		t.Errorf("c2..feature: stats = %+v, want 5 commits", st)
	}

	// Only the merge commit.
	got, _ = p.mustScanGit(t, s, r.dir, scanner.GitOptions{Range: r.f3 + ".." + r.m})
	checkSortedLocs(t, []gitLoc{
		at(rulePAT, "cfg.txt", 4, r.evilLine, r.evil, r.m),
		at(ruleAWS, "other.txt", 2, r.onMainLine, r.onMain, r.c3),
	}, got)

	// A range whose commits add nothing new, and an empty range.
	for _, rg := range []string{r.c1 + ".." + r.c2, "feature..main~1", "feature..feature"} {
		got, _ := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Range: rg})
		if len(got) != 0 {
			t.Errorf("%s: findings %+v, want none", rg, gitLocs(got))
		}
	}

	// The whole history: base at c1.
	got, _ = p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	checkSortedLocs(t, []gitLoc{
		at(ruleAWS, "cfg.txt", 2, r.baseLine, r.base, r.c1),
		at(rulePAT, "cfg.txt", 3, r.inRangeLine, r.inRange, r.f1),
		at(rulePAT, "cfg.txt", 4, r.evilLine, r.evil, r.m),
		at(ruleAWS, "new.txt", 2, r.addLine, r.added, r.f2),
		at(ruleAWS, "other.txt", 2, r.onMainLine, r.onMain, r.c3),
	}, got)
}

// A range over a history unrelated to its base (no merge base).
func TestScanGitRangeUnrelated(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key := p.aws()
	line := "leak = " + key
	r.write("a.txt", lines(line))
	r.commit("main")
	r.git("checkout", "-q", "--orphan", "other")
	r.git("rm", "-q", "-r", "-f", ".")
	r.write("b.txt", "x\n")
	r.commit("unrelated root")
	r.write("b.txt", lines("x", line))
	o2 := r.commit("adds the same key elsewhere")
	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{Range: "main..other"})
	checkLocs(t, []gitLoc{at(ruleAWS, "b.txt", 2, line, key, o2)}, got)
	if st.Commits != 2 {
		t.Errorf("stats = %+v, want 2 commits", st)
	}
}

func TestScanStaged(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	old, staged, stagedNew, unstaged, untracked := p.aws(), p.pat(), p.aws(), p.pat(), p.aws()
	oldLine := "leak = " + old
	r.write("cfg.txt", lines("[a]", oldLine, "end"))
	r.commit("head")

	stagedLine := "tok = " + staged
	r.write("cfg.txt", lines("[a]", "  "+oldLine+" # re-indented", "end", stagedLine))
	newLine := "k " + stagedNew
	r.write("dir/new.txt", lines(newLine))
	r.git("add", "cfg.txt", "dir/new.txt")
	// Not staged: an edit of a staged file and an untracked file.
	r.write("cfg.txt", lines("[a]", "  "+oldLine+" # re-indented", "end", stagedLine, "u = "+unstaged))
	r.write("untracked.txt", lines("k "+untracked))

	got, st, err := p.scanStaged(t, gitScanner(t), r.dir)
	if err != nil {
		t.Fatal(err)
	}
	checkLocs(t, []gitLoc{
		at(rulePAT, "cfg.txt", 4, stagedLine, staged, ""),
		at(ruleAWS, "dir/new.txt", 1, newLine, stagedNew, ""),
	}, got)
	for _, f := range got {
		if f.Author != "" || f.Email != "" || f.Date != "" {
			t.Errorf("staged finding has commit metadata: %+v", f)
		}
	}
	// Runs of added lines: cfg.txt's lines 2 and 4, dir/new.txt's line 1.
	if st.Files != 3 || st.Commits != 0 {
		t.Errorf("stats = %+v, want 3 runs of lines, no commits", st)
	}

	// Nothing staged.
	r.commit("commit it")
	got, _, err = p.scanStaged(t, gitScanner(t), r.dir)
	if err != nil || len(got) != 0 {
		t.Errorf("nothing staged: findings %+v, error %v; want none", gitLocs(got), err)
	}
}

func TestScanStagedEmptyRepo(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	s := gitScanner(t)
	got, _, err := p.scanStaged(t, s, r.dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty index: findings %+v, error %v; want none", gitLocs(got), err)
	}
	tok := p.pat()
	line := "tok: " + tok
	r.write("first.yaml", lines("a: b", line))
	r.git("add", "first.yaml")
	got, st, err := p.scanStaged(t, s, r.dir)
	if err != nil {
		t.Fatal(err)
	}
	checkLocs(t, []gitLoc{at(rulePAT, "first.yaml", 2, line, tok, "")}, got)
	if st.Files != 1 {
		t.Errorf("stats = %+v, want 1 file", st)
	}
}

func TestScanGitCache(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	s := gitScanner(t)
	key, tok, key2 := p.aws(), p.pat(), p.aws()
	r.write("a.txt", lines("k "+key))
	r.commit("1")
	r.write("b.txt", lines("x", "t "+tok, "marker-123456"))
	r.commit("2")
	r.write("a.txt", lines("k "+key, "more"))
	r.commit("3")

	cachePath := filepath.Join(t.TempDir(), "cache", "scan.db")
	c, err := scanner.OpenCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }()

	uncached, ust := p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	if len(uncached) != 2 {
		t.Fatalf("uncached scan: %+v, want 2 findings", gitLocs(uncached))
	}
	first, st1 := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Cache: c})
	if diff := cmp.Diff(uncached, first); diff != "" || st1 != ust {
		t.Errorf("first cached scan differs from an uncached one: stats %+v vs %+v\n%s", st1, ust, diff)
	}
	var progress [][2]int
	second, st2 := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Cache: c, Progress: func(done, total int) {
		progress = append(progress, [2]int{done, total})
	}})
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second scan (-first +second):\n%s", diff)
	}
	if st2.CachedCommits != 3 {
		t.Errorf("second scan: %d cached commits, want 3", st2.CachedCommits)
	}
	if st2.CachedCommits = 0; st2 != st1 {
		t.Errorf("second scan: stats %+v, want %+v", st2, st1)
	}
	if want := [][2]int{{3, 3}}; !slices.Equal(progress, want) {
		t.Errorf("second scan: progress %v, want %v", progress, want)
	}

	// A new commit: only it is scanned.
	line := "leak = " + key2
	r.write("c.txt", lines(line))
	c4 := r.commit("4")
	progress = nil
	third, st3 := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Cache: c, Progress: func(done, total int) {
		progress = append(progress, [2]int{done, total})
	}})
	if st3.CachedCommits != 3 || st3.Commits != 4 {
		t.Errorf("after a commit: stats %+v, want 3 of 4 commits cached", st3)
	}
	if want := [][2]int{{3, 4}, {4, 4}}; !slices.Equal(progress, want) {
		t.Errorf("after a commit: progress %v, want %v", progress, want)
	}
	uncached4, ust4 := p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	if diff := cmp.Diff(uncached4, third); diff != "" {
		t.Errorf("after a commit (-uncached +cached):\n%s", diff)
	}
	if st3.CachedCommits = 0; st3 != ust4 {
		t.Errorf("after a commit: stats %+v, want %+v", st3, ust4)
	}
	if n := len(third); n != 3 || third[2].Commit != c4 || third[2].File != "c.txt" {
		t.Errorf("after a commit: %+v, want the new key last, at %s", gitLocs(third), c4)
	}

	// Other rules do not reuse these results.
	cfg := filepath.Join(t.TempDir(), ".gitleaks.toml")
	toml := "[extend]\nuseDefault = true\n\n[[rules]]\nid = \"test-marker\"\nregex = '''marker-[0-9]{6}'''\nkeywords = [\"marker-\"]\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := newScanner(t, scanner.Options{ConfigPath: cfg})
	want2, _ := p.mustScanGit(t, s2, r.dir, scanner.GitOptions{})
	got2, st := p.mustScanGit(t, s2, r.dir, scanner.GitOptions{Cache: c})
	if st.CachedCommits != 0 {
		t.Errorf("other rules: %d cached commits, want 0", st.CachedCommits)
	}
	if diff := cmp.Diff(want2, got2); diff != "" || len(got2) != 4 {
		t.Errorf("other rules: %d findings, want 4 (-uncached +cached):\n%s", len(got2), diff)
	}
	// ... and replaced them: the default rules start over.
	got, st := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Cache: c})
	if diff := cmp.Diff(uncached4, got); diff != "" || st.CachedCommits != 0 {
		t.Errorf("default rules again: %d cached commits, want 0; (-uncached +cached):\n%s", st.CachedCommits, diff)
	}

	// The cache persists.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err = scanner.OpenCache(cachePath); err != nil {
		t.Fatal(err)
	}
	got, st = p.mustScanGit(t, s, r.dir, scanner.GitOptions{Cache: c})
	if diff := cmp.Diff(uncached4, got); diff != "" || st.CachedCommits != 4 {
		t.Errorf("reopened: %d cached commits, want 4; (-uncached +cached):\n%s", st.CachedCommits, diff)
	}
	// A range reads the same cache.
	got, st = p.mustScanGit(t, s, r.dir, scanner.GitOptions{Cache: c, Range: "HEAD~1..HEAD"})
	checkLocs(t, []gitLoc{at(ruleAWS, "c.txt", 1, line, key2, c4)}, got)
	if st.CachedCommits != 1 {
		t.Errorf("range: %d cached commits, want 1", st.CachedCommits)
	}
}

// shallowClone clones src with --depth 1 over the file transport, so the
// clone really is shallow.
func shallowClone(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "clone")
	if _, err := runGit(src, t.TempDir(), "", "clone", "-q", "--depth", "1", "file://"+filepath.ToSlash(src), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestScanGitShallow(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()
	keyLine, tokLine := "leak = "+key, "t "+tok
	r.write("a.txt", lines(keyLine))
	c1 := r.commit("1")
	r.write("b.txt", lines("x", tokLine))
	r.commit("2")
	r.write("b.txt", lines("x", tokLine, "y"))
	c3 := r.commit("3")
	dst := shallowClone(t, r.dir)
	s := gitScanner(t)

	// The shallow boundary shows its whole tree as added.
	got, st := p.mustScanGit(t, s, dst, scanner.GitOptions{})
	checkLocs(t, []gitLoc{
		at(ruleAWS, "a.txt", 1, keyLine, key, c3),
		at(rulePAT, "b.txt", 2, tokLine, tok, c3),
	}, got)
	if !st.Shallow || st.Commits != 1 {
		t.Errorf("stats = %+v, want a shallow scan of 1 commit", st)
	}
	if _, st := p.mustScanGit(t, s, r.dir, scanner.GitOptions{}); st.Shallow {
		t.Errorf("full repository reported shallow: %+v", st)
	}

	for _, rg := range []string{"HEAD~1..HEAD", c1 + "..HEAD"} {
		_, _, err := p.scanGit(t, s, dst, scanner.GitOptions{Range: rg})
		if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "shallow") {
			t.Errorf("range %s in a shallow clone: error %v, want ErrInvalidArgument mentioning shallow", rg, err)
		}
	}
}

// A cached commit's result is its diff against its parents; the boundary
// commit of a shallow clone has none there, so its diff is its whole tree.
// A cache filled from a full clone must not hide that tree from a shallow
// scan, nor the other way round.
func TestScanGitShallowCache(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()
	keyLine, tokLine := "leak = "+key, "t = "+tok
	r.write("a.txt", lines(keyLine))
	c1 := r.commit("1")
	r.write("sub/b.txt", "x\n")
	r.commit("2")
	r.git("mv", "a.txt", "sub/moved.txt")
	r.write("sub/b.txt", lines("x", tokLine))
	c3 := r.commit("3: move a.txt, add a token")
	dst := shallowClone(t, r.dir)
	s := gitScanner(t)
	newCache := func() *scanner.Cache {
		c, err := scanner.OpenCache(filepath.Join(t.TempDir(), "scan.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	full := []gitLoc{
		at(ruleAWS, "a.txt", 1, keyLine, key, c1),
		at(rulePAT, "sub/b.txt", 2, tokLine, tok, c3),
	}
	shallow := []gitLoc{
		at(rulePAT, "sub/b.txt", 2, tokLine, tok, c3),
		at(ruleAWS, "sub/moved.txt", 1, keyLine, key, c3),
	}

	// The full history first, then the shallow clone (from its top and
	// from a subdirectory), each twice.
	c := newCache()
	for _, dir := range []string{r.dir, dst, filepath.Join(dst, "sub")} {
		want := shallow
		if dir == r.dir {
			want = full
		}
		for range 2 {
			got, _ := p.mustScanGit(t, s, dir, scanner.GitOptions{Cache: c})
			checkLocs(t, want, got)
		}
	}
	// The shallow clone first, then the full history.
	c = newCache()
	for _, dir := range []string{dst, r.dir} {
		want := shallow
		if dir == r.dir {
			want = full
		}
		got, _ := p.mustScanGit(t, s, dir, scanner.GitOptions{Cache: c})
		checkLocs(t, want, got)
	}
	if _, st := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Cache: c}); st.CachedCommits != 3 {
		t.Errorf("full history after the shallow clone: %d cached commits, want 3", st.CachedCommits)
	}
}

// corruptRepo returns a repository whose history holds a secret in the
// blob of a.txt at its first commit, and that blob's loose object file.
func corruptRepo(t *testing.T, p *planted) (dir, object string) {
	r := newRepo(t)
	r.write("a.txt", lines("x", "leak = "+p.aws()))
	r.commit("1")
	blob := r.git("rev-parse", "HEAD:a.txt")
	r.write("b.txt", "b\n")
	r.commit("2")
	return r.dir, filepath.Join(r.dir, ".git", "objects", blob[:2], blob[2:])
}

func TestScanGitCorruptObject(t *testing.T) {
	t.Parallel()
	damage := map[string]func(t *testing.T, path string){
		"deleted": func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		},
		"truncated": func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		},
		"garbled": func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := 8; i < len(b); i++ {
				b[i] ^= 0x5a
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newPlanted(t)
			dir, obj := corruptRepo(t, p)
			f(t, obj)
			got, _, err := p.scanGit(t, gitScanner(t), dir, scanner.GitOptions{})
			if err == nil {
				t.Fatalf("scan of a repository with a %s object passed, findings %+v; want an error", name, gitLocs(got))
			}
			if got != nil {
				t.Errorf("findings %+v with the error, want none", gitLocs(got))
			}
		})
	}
}

func TestScanGitBadInput(t *testing.T) {
	t.Parallel()
	needGit(t)
	p := newPlanted(t)
	s := gitScanner(t)
	plain := t.TempDir()
	file := filepath.Join(plain, "file")
	if err := os.WriteFile(file, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(plain, "missing")
	for _, tc := range []struct {
		dir  string
		want error
	}{
		{plain, secret.ErrInvalidArgument},
		{file, secret.ErrInvalidArgument},
		{missing, fs.ErrNotExist},
	} {
		_, _, err := p.scanGit(t, s, tc.dir, scanner.GitOptions{})
		if !errors.Is(err, tc.want) {
			t.Errorf("ScanGit(%s): error %v, want %v", tc.dir, err, tc.want)
		}
		_, _, err = p.scanStaged(t, s, tc.dir)
		if !errors.Is(err, tc.want) {
			t.Errorf("ScanStaged(%s): error %v, want %v", tc.dir, err, tc.want)
		}
	}
}

func TestScanGitBadRange(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	r.write("a.txt", lines("leak = "+p.aws()))
	r.commit("1")
	r.write("a.txt", "b\n")
	r.commit("2")
	s := gitScanner(t)
	for _, rg := range []string{
		"a", "..", "..HEAD", "HEAD..", "a...b", "HEAD...HEAD~1", "-x..HEAD", "HEAD..-x",
		"HEAD..--output=/tmp/x", "HEAD..nope", "nope..HEAD", "HEAD~1..HEAD\n", "HEAD\x00..HEAD",
		"HEAD:a.txt..HEAD",
	} {
		got, _, err := p.scanGit(t, s, r.dir, scanner.GitOptions{Range: rg})
		if !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("range %q: findings %+v, error %v; want ErrInvalidArgument", rg, gitLocs(got), err)
		}
	}
	// "" is not a range: the whole history.
	all, _ := p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	got, _ := p.mustScanGit(t, s, r.dir, scanner.GitOptions{Range: ""})
	if len(all) != 1 || !cmp.Equal(all, got) {
		t.Errorf("range \"\": %+v, want the whole history's %+v", gitLocs(got), gitLocs(all))
	}
}

// fastImport adds n commits to main with git fast-import, commit i adding
// file i with content(i).
func (r *testRepo) fastImport(n int, content func(i int) string) {
	r.t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\n", i+1)
		fmt.Fprintf(&b, "author %s <%s> %d +0000\ncommitter %s <%s> %d +0000\n", authorName, authorEmail, epoch+i, authorName, authorEmail, epoch+i)
		msg := fmt.Sprintf("commit %d", i)
		fmt.Fprintf(&b, "data %d\n%s\n", len(msg), msg)
		if i > 0 {
			fmt.Fprintf(&b, "from :%d\n", i)
		}
		c := content(i)
		fmt.Fprintf(&b, "M 644 inline file%04d.txt\ndata %d\n%s\n", i, len(c), c)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "HOME="+r.home, "XDG_CONFIG_HOME="+r.home)
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git fast-import: %v: %s", err, out)
	}
	r.n += n
}

// cancelRepo has enough history that a scan takes a while: 300 commits of
// 50 KB of text each.
func cancelRepo(t *testing.T, p *planted) *testRepo {
	r := newRepo(t)
	key := p.aws()
	filler := strings.Repeat("some text that is not a secret, line after line\n", 1000)
	r.fastImport(300, func(i int) string {
		if i == 299 {
			return filler + "leak = " + key + "\n"
		}
		return filler
	})
	return r
}

// Canceling mid-scan (here from Progress, once the first commit is done)
// stops the scan promptly with an error.
func TestScanGitCancel(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := cancelRepo(t, p)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var canceledAt time.Time
	progress := func(done, total int) {
		if done >= 1 && canceledAt.IsZero() {
			canceledAt = time.Now()
			cancel()
		}
	}
	fs, _, err := gitScanner(t).ScanGit(ctx, r.dir, scanner.GitOptions{Progress: progress})
	p.noLeak(t, fs, err)
	if canceledAt.IsZero() {
		t.Fatal("the scan finished without reporting progress")
	}
	if took := time.Since(canceledAt); took > 10*time.Second {
		t.Errorf("the scan returned %v after it was canceled", took)
	}
	if err == nil || fs != nil {
		t.Errorf("canceled scan: %d findings, error %v; want an error", len(fs), err)
	}
}

// The error of a canceled scan says so, however far the scan got.
func TestScanGitCancelError(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := cancelRepo(t, p)
	s := gitScanner(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	progress := func(done, total int) {
		if done >= 1 {
			cancel()
		}
	}
	fs, _, err := s.ScanGit(ctx, r.dir, scanner.GitOptions{Progress: progress})
	p.noLeak(t, fs, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled mid-scan: error %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	fs, _, err = s.ScanGit(ctx, r.dir, scanner.GitOptions{})
	p.noLeak(t, fs, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ScanGit canceled before the start: error %v, want context.Canceled", err)
	}
	fs, _, err = s.ScanStaged(ctx, r.dir)
	p.noLeak(t, fs, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ScanStaged canceled before the start: error %v, want context.Canceled", err)
	}
}

// Settings in the repository's own config that would change git's output
// do not change what is found.
func TestScanGitRepoConfig(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok, key2 := p.aws(), p.pat(), p.aws()
	keyLine, tokLine, key2Line := "leak = "+key, "t "+tok, "k2 = "+key2
	r.write("dir/café.txt", lines("one", "two", "three"))
	r.commit("1")
	r.write("dir/café.txt", lines("ONE", "two", keyLine, "three", tokLine))
	c2 := r.commit("2")
	r.git("mv", "dir/café.txt", "moved file.txt")
	r.write("moved file.txt", lines("ONE", "two", keyLine, "three", tokLine, key2Line))
	c3 := r.commit("3")
	s := gitScanner(t)
	want, _ := p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{
		at(ruleAWS, "dir/café.txt", 3, keyLine, key, c2),
		at(rulePAT, "dir/café.txt", 5, tokLine, tok, c2),
		at(ruleAWS, "moved file.txt", 6, key2Line, key2, c3),
	}, want)
	for _, kv := range [][2]string{
		{"core.quotePath", "false"},
		{"diff.noprefix", "true"},
		{"diff.mnemonicPrefix", "true"},
		{"diff.relative", "true"},
		{"diff.renames", "false"},
		{"diff.external", "false"},
		{"diff.context", "5"},
		{"diff.interHunkContext", "3"},
		{"diff.algorithm", "histogram"},
		{"diff.colorMoved", "zebra"},
		{"color.ui", "always"},
		{"color.diff", "always"},
		{"log.showRoot", "false"},
		{"log.showSignature", "true"},
		{"log.abbrevCommit", "true"},
		{"log.decorate", "full"},
		{"log.follow", "true"},
		{"format.pretty", "oneline"},
		{"core.pager", "false"},
		{"pager.log", "false"},
		{"i18n.logOutputEncoding", "ISO-8859-1"},
	} {
		r.git("config", kv[0], kv[1])
	}
	got, _ := p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with a hostile repository config (-want +got):\n%s", diff)
	}
}

// With diff.interHunkContext git joins nearby hunks with context lines,
// and with diff.suppressBlankEmpty it prints an empty one without its
// leading space; neither may end a hunk early.
func TestScanGitSuppressBlankEmpty(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key := p.aws()
	keyLine := "leak = " + key
	r.write("f.txt", lines("a", "", "b", "c"))
	r.commit("1")
	r.write("f.txt", lines("A", "", "b", keyLine))
	c2 := r.commit("2")
	r.git("config", "diff.interHunkContext", "3")
	r.git("config", "diff.suppressBlankEmpty", "true")
	got, _ := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(ruleAWS, "f.txt", 4, keyLine, key, c2)}, got)
}

// A removed line (never scanned) longer than MaxFileSize and the parser's
// 1 MiB buffer does not make the parser skip what the commit adds to the
// file.
func TestScanGitRemovedLongLine(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key := p.aws()
	keyLine := "leak = " + key
	r.write("f.txt", lines("head", strings.Repeat("z", 3<<20), "tail"))
	r.commit("1")
	r.write("f.txt", lines("head", keyLine, "tail"))
	c2 := r.commit("2")
	s := newScanner(t, scanner.Options{MaxFileSize: 2 << 20})
	got, st := p.mustScanGit(t, s, r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(ruleAWS, "f.txt", 2, keyLine, key, c2)}, got)
	// Commit 1 adds a file over the limit; commit 2 adds one short line.
	if st.SkippedLarge != 1 {
		t.Errorf("stats = %+v, want 1 skipped large", st)
	}
}

// git's own binary test follows attributes (gitleaks uses it): a committed
// .gitattributes line must not hide a text file's secrets.
func TestScanGitAttributesCannotHideText(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key := p.aws()
	line := "AWS_KEY=" + key
	r.write(".gitattributes", "*.env -diff\n")
	r.write("prod.env", lines(line))
	c1 := r.commit("env")
	got, st := p.mustScanGit(t, gitScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{at(ruleAWS, "prod.env", 1, line, key, c1)}, got)
	if st.SkippedBinary != 0 {
		t.Errorf("stats = %+v, want no binary file", st)
	}
}

// pathRuleScanner has one path-only rule: any file named *.env.
func pathRuleScanner(t *testing.T) *scanner.Scanner {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), ".gitleaks.toml")
	toml := "[[rules]]\nid = \"env-file\"\ndescription = \"an env file\"\npath = '''\\.env$'''\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return newScanner(t, scanner.Options{ConfigPath: cfg})
}

// A path-only rule's finding has zero positions, and is reported once per
// file, at the commit that first added lines to it.
func TestScanGitPathOnlyRule(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	r.write("dev.env", lines("A=1", "B=2"))
	c1 := r.commit("1")
	r.write("dev.env", lines("A=1", "B=2", "C=3"))
	r.commit("2")
	got, _ := p.mustScanGit(t, pathRuleScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{{Rule: "env-file", File: "dev.env", Commit: c1}}, got)
}

// A path-only finding keeps zero positions where the file's first run of
// added lines does not start at line 1.
func TestScanGitPathOnlyRuleRenamed(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	r.write("settings.example", lines("A=1", "B=2", "C=3"))
	r.commit("1")
	r.git("mv", "settings.example", "prod.env")
	r.write("prod.env", lines("A=1", "B=2", "C=3", "D=4"))
	c2 := r.commit("2")
	got, _ := p.mustScanGit(t, pathRuleScanner(t), r.dir, scanner.GitOptions{})
	checkLocs(t, []gitLoc{{Rule: "env-file", File: "prod.env", Commit: c2}}, got)
}

// A bare clone (a server's pre-receive hook), a linked worktree and a
// subdirectory of the work tree scan as the repository itself.
func TestScanGitBareWorktreeSubdir(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key, tok := p.aws(), p.pat()
	keyLine, tokLine := "leak = "+key, "t = "+tok
	r.write("sub/a.txt", lines("x", keyLine))
	c1 := r.commit("1")
	want := []gitLoc{at(ruleAWS, "sub/a.txt", 2, keyLine, key, c1)}
	s := gitScanner(t)

	bare := filepath.Join(t.TempDir(), "bare.git")
	r.git("clone", "-q", "--bare", r.dir, bare)
	wt := filepath.Join(t.TempDir(), "wt")
	r.git("worktree", "add", "-q", "-b", "wt", wt)
	for _, dir := range []string{bare, wt, filepath.Join(r.dir, "sub")} {
		got, _ := p.mustScanGit(t, s, dir, scanner.GitOptions{})
		checkLocs(t, want, got)
		got, _ = p.mustScanGit(t, s, dir, scanner.GitOptions{Range: c1 + "~0.." + c1})
		if len(got) != 0 {
			t.Errorf("%s: empty range: %+v", dir, gitLocs(got))
		}
	}

	// Staged from a subdirectory: paths are the repository's, and the
	// re-indented key that HEAD has is not new.
	r.write("sub/a.txt", lines("x", "  "+keyLine, tokLine))
	r.git("add", "sub/a.txt")
	got, _, err := p.scanStaged(t, s, filepath.Join(r.dir, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	checkLocs(t, []gitLoc{at(rulePAT, "sub/a.txt", 3, tokLine, tok, "")}, got)
}

// A scan that shows secrets neither reads nor fills the commit cache.
func TestScanGitShowSecretsSkipsCache(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	r := newRepo(t)
	key := p.aws()
	r.write("a.txt", lines("key "+key))
	r.commit("add")
	s, err := scanner.New(scanner.Options{ShowSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	cachePath := filepath.Join(t.TempDir(), "scan.db")
	c, err := scanner.OpenCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	got, st, err := s.ScanGit(context.Background(), r.dir, scanner.GitOptions{Cache: c})
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Secret != key || st.CachedCommits != 0 {
		t.Fatalf("findings %+v, %d cached", got, st.CachedCommits)
	}
	b, err := os.ReadFile(cachePath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(key)) {
		t.Fatal("the cache holds the secret")
	}
}

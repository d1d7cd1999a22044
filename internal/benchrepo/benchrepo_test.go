package benchrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testCommits is small enough for the race detector and still holds every
// special case (MinCommits would too, with fewer merges).
const testCommits = 300

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on PATH")
	}
}

// sources are this module's dependencies, as the command uses.
func sources(t *testing.T) []string {
	t.Helper()
	dirs, err := SourceDirs(t.Context(), "../..")
	if err != nil {
		t.Fatalf("SourceDirs: %v", err)
	}
	if len(dirs) == 0 {
		t.Skip("no dependency in the module cache")
	}
	return dirs
}

// extraValues are built at run time: a literal would be a managed-looking
// secret in this repository.
func extraValues() [][]byte {
	var vs [][]byte
	for i := range 3 {
		vs = append(vs, []byte(fmt.Sprintf("pm%dQx%08dZk%d", i, 73910000+i*17, i*7)))
	}
	return vs
}

func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(t.TempDir())
	out, err := cmd.Output()
	return string(out), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(out)
}

// hasAt reports whether the file at rev holds the secret's lines from the
// 1-based line on.
func hasAt(t *testing.T, dir, rev, file string, line int, secret string) bool {
	t.Helper()
	out, err := git(t, dir, "show", rev+":"+file)
	if err != nil {
		return false
	}
	lines := strings.Split(out, "\n")
	for i, s := range strings.Split(secret, "\n") {
		if line-1+i >= len(lines) || !strings.Contains(lines[line-1+i], s) {
			return false
		}
	}
	return true
}

func TestBuild(t *testing.T) {
	needGit(t)
	t.Parallel()
	srcs := sources(t)
	extra := extraValues()
	type result struct {
		dir string
		m   Manifest
		err error
	}
	build := func(seed uint64) *result {
		r := &result{dir: filepath.Join(t.TempDir(), "repo")}
		r.m, r.err = Build(t.Context(), r.dir, Options{Commits: testCommits, Seed: seed, Sources: srcs, Extra: extra})
		return r
	}
	// Three builds at once: the test's time is one build's.
	var a, b, c *result
	var wg sync.WaitGroup
	wg.Go(func() { a = build(7) })
	wg.Go(func() { b = build(7) })
	wg.Go(func() { c = build(8) })
	wg.Wait()
	for _, r := range []*result{a, b, c} {
		if r.err != nil {
			t.Fatalf("Build: %v", r.err)
		}
	}
	if a.m.Head != b.m.Head || !reflect.DeepEqual(a.m, b.m) {
		t.Errorf("same seed, different repositories: %s and %s", a.m.Head, b.m.Head)
	}
	if a.m.Head == c.m.Head {
		t.Errorf("seeds 7 and 8 gave the same HEAD %s", a.m.Head)
	}

	dir, m := a.dir, a.m
	if got := mustGit(t, dir, "rev-parse", "HEAD"); got != m.Head {
		t.Errorf("HEAD = %s, manifest says %s", got, m.Head)
	}
	if got := mustGit(t, dir, "rev-list", "--first-parent", "--count", "main"); got != strconv.Itoa(testCommits) {
		t.Errorf("main has %s first-parent commits, want %d", got, testCommits)
	}
	if got := mustGit(t, dir, "rev-list", "--all", "--count"); got != strconv.Itoa(m.Commits) {
		t.Errorf("%s commits in all refs, manifest says %d", got, m.Commits)
	}
	if n, _ := strconv.Atoi(mustGit(t, dir, "rev-list", "--merges", "--count", "--all")); n == 0 {
		t.Error("no merge commits")
	}
	if n, _ := strconv.Atoi(mustGit(t, dir, "rev-list", "--count", "main..feature-x")); n == 0 {
		t.Error("feature-x has no commit of its own")
	}
	if got := mustGit(t, dir, "status", "--porcelain"); got != "" {
		t.Errorf("work tree differs from HEAD:\n%s", got)
	}
	if per := m.AddedBytes / int64(m.Commits); per < 15_000 || per > 50_000 {
		t.Errorf("%d bytes added per commit, want about 20–40 KB", per)
	}

	mainLine := mustGit(t, dir, "rev-list", "--first-parent", "main")
	kinds := map[string]int{}
	rulesSeen := map[string]int{}
	for _, p := range m.Planted {
		kinds[p.Kind]++
		rulesSeen[p.Rule]++
		if !hasAt(t, dir, p.Commit, p.File, p.Line, p.Secret) {
			t.Errorf("%s secret (%s) not at %s:%s:%d", p.Kind, p.Rule, p.Commit, p.File, p.Line)
			continue
		}
		switch p.Kind {
		case KindMergeOnly:
			if n := len(strings.Fields(mustGit(t, dir, "rev-list", "--parents", "-n1", p.Commit))); n != 3 {
				t.Errorf("merge-only secret in %s, which has %d parents", p.Commit, n-1)
			}
			for _, parent := range []string{"^1", "^2"} {
				if out, _ := git(t, dir, "show", p.Commit+parent+":"+p.File); strings.Contains(out, firstLine(p.Secret)) {
					t.Errorf("merge-only secret already in %s%s:%s", p.Commit, parent, p.File)
				}
			}
		case KindDeletedLater, KindRenamed:
			next := nextOnMain(t, dir, p.Commit)
			if out, _ := git(t, dir, "show", next+":"+p.File); strings.Contains(out, firstLine(p.Secret)) {
				t.Errorf("%s secret still in %s:%s", p.Kind, next, p.File)
			}
			if p.Kind == KindRenamed {
				st := mustGit(t, dir, "diff-tree", "-r", "-M", "--name-status", p.Commit, next)
				if !strings.Contains(st, "R100\t"+p.File+"\t") {
					t.Errorf("%s:%s not renamed by %s:\n%s", p.Commit, p.File, next, st)
				}
			}
		case KindBranch:
			if strings.Contains(mainLine, p.Commit) {
				t.Errorf("branch secret in %s, a main-line commit", p.Commit)
			}
		}
	}
	for _, k := range []string{KindNormal, KindMergeOnly, KindDeletedLater, KindRenamed, KindBranch, KindExtra} {
		if kinds[k] == 0 {
			t.Errorf("no %s secret planted: %v", k, kinds)
		}
	}
	for _, r := range append(rules, RuleManaged) {
		if rulesSeen[r] == 0 {
			t.Errorf("no %s secret planted: %v", r, rulesSeen)
		}
	}
	if kinds[KindExtra] < len(extra) || kinds[KindExtra] < int(numContexts) {
		t.Errorf("%d extra values planted, want every value and context", kinds[KindExtra])
	}

	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Planted {
		if strings.Contains(string(js), firstLine(p.Secret)) {
			t.Errorf("manifest JSON holds a %s secret", p.Rule)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// nextOnMain is the child of commit on main's first-parent line.
func nextOnMain(t *testing.T, dir, commit string) string {
	t.Helper()
	list := strings.Fields(mustGit(t, dir, "rev-list", "--first-parent", "--reverse", commit+"..main"))
	if len(list) == 0 {
		t.Fatalf("%s has no child on main", commit)
	}
	if parent := mustGit(t, dir, "rev-parse", list[0]+"^1"); parent != commit {
		t.Fatalf("first main commit after %s is %s, whose parent is %s", commit, list[0], parent)
	}
	return list[0]
}

// TestSecretsMatchGitleaksRules checks generated values against the rule
// regexes, entropy thresholds and stop words of the gitleaks configuration
// this module pins, read from the module cache (importing gitleaks here
// would cost a large build for one check).
func TestSecretsMatchGitleaksRules(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/zricethezav/gitleaks/v8").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("gitleaks module not available: %v", err)
	}
	toml, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "config", "gitleaks.toml"))
	if err != nil {
		t.Skipf("gitleaks config: %v", err)
	}
	g := newGenerator(context.Background(), Options{Commits: MinCommits, Seed: 3}, nil)
	for _, rule := range rules {
		re, minEntropy, stop := gitleaksRule(t, toml, rule)
		for range 200 {
			lines, secret := g.secretFor(rule)
			text := strings.Join(lines, "\n")
			sm := re.FindStringSubmatch(text)
			if sm == nil {
				t.Fatalf("%s: %q does not match %s", rule, text, re)
			}
			got := sm[0]
			if len(sm) > 1 && sm[1] != "" {
				got = sm[1]
			}
			if !strings.Contains(secret, got) && !strings.Contains(got, secret) {
				t.Fatalf("%s: matched %q, planted %q", rule, got, secret)
			}
			if e := entropy(got); e < minEntropy {
				t.Fatalf("%s: %q has entropy %.2f < %.2f", rule, got, e, minEntropy)
			}
			for _, w := range stop {
				if strings.Contains(strings.ToLower(got), w) {
					t.Fatalf("%s: %q holds stop word %q", rule, got, w)
				}
			}
		}
	}
}

// gitleaksRule pulls a rule's regex, entropy and stop words out of
// gitleaks.toml with a line scan: enough for this file's fixed layout.
func gitleaksRule(t *testing.T, toml []byte, id string) (*regexp.Regexp, float64, []string) {
	t.Helper()
	start := bytes.Index(toml, []byte("id = \""+id+"\"\n"))
	if start < 0 {
		t.Fatalf("rule %s not in gitleaks.toml", id)
	}
	block := string(toml[start:])
	if end := strings.Index(block, "[[rules]]"); end >= 0 {
		block = block[:end]
	}
	var re *regexp.Regexp
	var minEntropy float64
	var stop []string
	inStop := false
	for line := range strings.Lines(block) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "regex = '''"):
			re = regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(line, "regex = '''"), "'''"))
		case strings.HasPrefix(line, "entropy = "):
			minEntropy, _ = strconv.ParseFloat(strings.TrimPrefix(line, "entropy = "), 64)
		case line == "stopwords = [":
			inStop = true
		case inStop && line == "]":
			inStop = false
		case inStop:
			stop = append(stop, strings.ToLower(strings.Trim(line, `",`)))
		}
	}
	if re == nil {
		t.Fatalf("rule %s has no regex", id)
	}
	return re, minEntropy, stop
}

func TestBuildRefusesNonEmptyDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Build(t.Context(), dir, Options{Commits: MinCommits, Sources: []string{dir}})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Build into a non-empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		t.Error("Build wrote into the non-empty directory")
	}
}

func TestSourceDirs(t *testing.T) {
	t.Parallel()
	dirs := sources(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		if d == root {
			t.Errorf("main module %s listed", d)
		}
		if i > 0 && dirs[i-1] >= d {
			t.Errorf("not sorted and unique: %s before %s", dirs[i-1], d)
		}
	}
}

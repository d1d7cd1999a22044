package scanner_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/scanner"
)

// TestScanGitRangeRerun: a range whose findings' files exist at the base
// is scanned again from the cache (so no finding comes from the scan
// itself, and the base's blobs are all read at the end), and with its only
// finding in a file whose name has a line break (which the prefetch leaves
// to the end): both give the first scan's findings.
func TestScanGitRangeRerun(t *testing.T) {
	t.Parallel()
	p := newPlanted(t)
	key, key2 := p.aws(), p.aws()
	for _, name := range []string{"app.env", "odd\nname.env"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			r := newRepo(t)
			r.write(name, lines("x = 1"))
			r.commit("base")
			r.write(name, lines("x = 1", "leak = "+key))
			r.commit("1")
			r.write(name, lines("x = 1", "leak = "+key, "leak2 = "+key2))
			r.commit("2")
			s := gitScanner(t)
			c, err := scanner.OpenCache(filepath.Join(t.TempDir(), "cache.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			opts := scanner.GitOptions{Cache: c, Range: "HEAD~2..HEAD"}
			first, _ := p.mustScanGit(t, s, r.dir, opts)
			if len(first) != 2 {
				t.Fatalf("first scan: %d findings, want 2", len(first))
			}
			again, st := p.mustScanGit(t, s, r.dir, opts)
			if st.CachedCommits != 2 {
				t.Errorf("rerun: %d cached commits, want 2", st.CachedCommits)
			}
			if diff := cmp.Diff(first, again); diff != "" {
				t.Errorf("rerun from the cache (-first +again):\n%s", diff)
			}
		})
	}
}

// TestScanGitPathWithLineBreak: a repository whose path holds a line break
// is scanned, whole, as a range, staged from a subdirectory, and as a
// shallow clone (whose shallow file git names by that path).
func TestScanGitPathWithLineBreak(t *testing.T) {
	t.Parallel()
	needGit(t)
	p := newPlanted(t)
	dir := filepath.Join(t.TempDir(), "nl\ndir")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &testRepo{t: t, dir: dir, home: t.TempDir()}
	r.git("init", "-q")
	key, key2 := p.aws(), p.aws()
	r.write("a.txt", lines("x"))
	r.commit("1")
	r.write("a.txt", lines("x", "leak = "+key))
	c2 := r.commit("2")
	s := gitScanner(t)
	want := []gitLoc{at(ruleAWS, "a.txt", 2, "leak = "+key, key, c2)}
	got, _ := p.mustScanGit(t, s, dir, scanner.GitOptions{})
	checkLocs(t, want, got)
	got, _ = p.mustScanGit(t, s, dir, scanner.GitOptions{Range: "HEAD~1..HEAD"})
	checkLocs(t, want, got)

	r.write("sub/b.txt", lines("leak2 = "+key2))
	r.git("add", "-A")
	fs, _, err := p.scanStaged(t, s, filepath.Join(dir, "sub"))
	if err != nil || len(fs) != 1 || fs[0].File != "sub/b.txt" {
		t.Errorf("staged from a subdirectory: %d findings, %v; want the staged key", len(fs), err)
	}

	clone := filepath.Join(t.TempDir(), "clone\nhere")
	if _, err := runGit(t.TempDir(), t.TempDir(), "", "clone", "-q", "--depth", "1", "file://"+filepath.ToSlash(dir), clone); err != nil {
		t.Fatal(err)
	}
	got, st := p.mustScanGit(t, s, clone, scanner.GitOptions{})
	if !st.Shallow || len(got) != 1 || got[0].File != "a.txt" {
		t.Errorf("shallow clone: %d findings, stats %+v; want the key, shallow", len(got), st)
	}
}

package scanner_test

import (
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

package scanner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBlobPrefetch reads blobs through the prefetch as a range's findings
// ask for them: present, over the limit, a directory, missing, asked twice,
// a path with a newline (left to blobs), and nothing after wait.
func TestBlobPrefetch(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	files := map[string]string{
		"small.txt":     "password = hunter2\n",
		"big.txt":       strings.Repeat("x", 100),
		"sub/inner.txt": "inner\n",
		"new\nline.txt": "odd name\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"init", "-q"},
		{"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", "c"},
	} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	ctx := context.Background()
	g, err := openRepo(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := g.run(ctx, nil, "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	spec := func(p string) string { return strings.TrimSpace(string(out)) + ":" + p }

	// Empty maps, not nil ones: the caller adds the blobs it reads itself.
	if got, asked, err := newBlobPrefetch(ctx, g, 50).wait(); got == nil || len(got) != 0 || asked == nil || len(asked) != 0 || err != nil {
		t.Errorf("a prefetch never asked: %q %v %v, want empty maps", got, asked, err)
	}
	p := newBlobPrefetch(ctx, g, 50)
	for _, s := range []string{"small.txt", "big.txt", "sub", "missing.txt", "small.txt", "new\nline.txt"} {
		p.add(spec(s))
	}
	got, asked, err := p.wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[spec("small.txt")]) != files["small.txt"] {
		t.Errorf("got %q, want small.txt alone", got)
	}
	for _, s := range []string{"small.txt", "big.txt", "sub", "missing.txt"} {
		if !asked[spec(s)] {
			t.Errorf("%s not asked", s)
		}
	}
	if asked[spec("new\nline.txt")] {
		t.Error("a path with a newline was written to the batch")
	}
	p.add(spec("sub/inner.txt")) // after wait: ignored
	if again, _, err := p.wait(); err != nil || len(again) != 1 {
		t.Errorf("second wait: %q, %v", again, err)
	}

	// git cannot run there: wait reports it, and the scan reads the
	// blobs itself.
	gone := &gitRepo{dir: filepath.Join(dir, "missing-dir")}
	p = newBlobPrefetch(ctx, gone, 50)
	p.add(spec("small.txt"))
	p.add(spec("big.txt"))
	if _, _, err := p.wait(); err == nil {
		t.Error("no error from a prefetch whose git failed")
	}
}

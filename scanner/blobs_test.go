package scanner

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBlobs reads a commit's blobs through one cat-file --batch: a small
// file, a file over the limit, a directory, a missing path and a path with
// a newline (read on its own), in one call.
func TestBlobs(t *testing.T) {
	files := map[string]string{
		"small.txt":        "password = hunter2\n",
		"big.txt":          strings.Repeat("x", 100),
		"sub/inner.txt":    "inner\n",
		"new\nline.txt":    "odd name\n",
		"with space/a b.c": "spaced\n",
	}
	ctx := context.Background()
	g, spec := blobRepo(t, files)
	got, err := g.blobs(ctx, []string{spec("small.txt"), spec("big.txt"), spec("sub"), spec("missing.txt"), spec("new\nline.txt"), spec("with space/a b.c")}, 50)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		spec("small.txt"):        files["small.txt"],
		spec("new\nline.txt"):    files["new\nline.txt"],
		spec("with space/a b.c"): files["with space/a b.c"],
	}
	if len(got) != len(want) {
		t.Errorf("got %d blobs, want %d: %q", len(got), len(want), got)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%q: got %q, want %q", k, got[k], v)
		}
	}
}

// TestReadBatchMalformed: answers that do not follow git's batch format
// are errors naming the spec or line, never content misattributed to
// another spec.
func TestReadBatchMalformed(t *testing.T) {
	for name, answer := range map[string]string{
		"empty":          "",
		"short header":   "abc blob\n",
		"bad size":       "abc blob x\nhi\n",
		"negative size":  "abc blob -1\nhi\n",
		"truncated body": "abc blob 10\nhi\n",
		"extra fields":   "abc blob 2 3\nhi\n",
	} {
		t.Run(name, func(t *testing.T) {
			res := map[string][]byte{}
			err := readBatch(bufio.NewReader(strings.NewReader(answer)), []string{"c:f"}, 1<<20, res)
			if err == nil {
				t.Fatalf("no error; result %q", res)
			}
			if len(res) != 0 {
				t.Errorf("result %q beside the error", res)
			}
		})
	}
	res := map[string][]byte{}
	ok := "c:f missing\nabc blob 2\nhi\n"
	if err := readBatch(bufio.NewReader(strings.NewReader(ok)), []string{"c:f", "c:g"}, 1<<20, res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || string(res["c:g"]) != "hi" {
		t.Errorf("got %q, want c:g = hi alone", res)
	}
}

// blobRepo commits files in a new repository and returns it opened, and
// the blob spec ("HEAD's id:path") of a path in its commit.
func blobRepo(t *testing.T, files map[string]string) (*gitRepo, func(path string) string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
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
	head := strings.TrimSpace(string(out))
	return g, func(p string) string { return head + ":" + p }
}

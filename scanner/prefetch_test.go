package scanner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestBlobPrefetch reads blobs through the prefetch as a range's findings
// ask for them: present, over the limit, a directory, missing, asked twice,
// a path with a newline (left to blobs), and nothing after wait.
func TestBlobPrefetch(t *testing.T) {
	files := map[string]string{
		"small.txt":     "password = hunter2\n",
		"big.txt":       strings.Repeat("x", 100),
		"sub/inner.txt": "inner\n",
		"new\nline.txt": "odd name\n",
	}
	ctx := context.Background()
	g, spec := blobRepo(t, files)

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
	gone := &gitRepo{dir: filepath.Join(t.TempDir(), "missing-dir")}
	p = newBlobPrefetch(ctx, gone, 50)
	p.add(spec("small.txt"))
	p.add(spec("big.txt"))
	if _, _, err := p.wait(); err == nil {
		t.Error("no error from a prefetch whose git failed")
	}
}

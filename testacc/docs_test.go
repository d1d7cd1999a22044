package testacc

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDocsUpToDate regenerates the provider's documentation with
// tfplugindocs (scripts/tfdocs.sh, as `make tfdocs` does) and fails when
// docs/terraform differs: the docs have one source, the schema's
// descriptions and examples/.
func TestDocsUpToDate(t *testing.T) {
	needTerraform(t)
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "docs")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "tfdocs.sh"), out)
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tfplugindocs: %v\n%s", err, b)
	}
	want := tree(t, out)
	got := tree(t, filepath.Join(root, "docs", "terraform"))
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("docs/terraform/%s is missing", name)
		case !bytes.Equal(g, w):
			t.Errorf("docs/terraform/%s is stale", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/terraform/%s is not generated any more", name)
		}
	}
	if t.Failed() {
		t.Log("run 'make tfdocs' and commit docs/terraform")
	}
}

func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestExampleValidates: the runnable example (examples/terraform, which
// make demo applies) is valid configuration for this provider.
func TestExampleValidates(t *testing.T) {
	needTerraform(t)
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "examples", "terraform", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	d := newTFDir(t, string(b))
	if out := d.run(succeeds, "validate", "-no-color"); !bytes.Contains([]byte(out), []byte("The configuration is valid")) {
		t.Fatalf("terraform validate:\n%s", out)
	}
}

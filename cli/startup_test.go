package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPassmanDoesNotLinkRegal guards start-up: Regal parses its rule
// bundle in a package variable (~50 ms), so the passman program must reach
// it only through passman-regal.
func TestPassmanDoesNotLinkRegal(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not installed")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/passman-dev/passman/cmd/passman").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/styrainc/regal") || strings.HasSuffix(pkg, "/policy/regotool/regal") {
			t.Errorf("passman links %s", pkg)
		}
	}
}

package cli

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestPassmanDoesNotLinkRegal guards start-up: Regal parses its rule
// bundle in a package variable (~50 ms), so neither passman program (the
// front nor passman-full) may link it: they reach it only through
// passman-regal.
func TestPassmanDoesNotLinkRegal(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not installed")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/passman-dev/passman/cmd/passman", "github.com/passman-dev/passman/cmd/passman-full").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/styrainc/regal") || strings.HasSuffix(pkg, "/policy/regotool/regal") {
			t.Errorf("passman links %s", pkg)
		}
	}
}

// TestPackageInitsAreLight guards start-up: every command pays for every
// linked package's init, so passman's own packages do no work there
// (compiling a regexp, parsing rules, building tables) beyond a few small
// allocations; such work belongs on first use (sync.OnceValue). The
// package inits of this test binary, which links what passman links, are
// traced by the runtime (GODEBUG=inittrace=1).
func TestPackageInitsAreLight(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	const budget = 16 << 10
	seen := 0
	for line := range strings.Lines(string(out)) {
		// init PKG @T ms, C ms clock, B bytes, A allocs
		f := strings.Fields(line)
		if len(f) < 11 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/passman-dev/passman") {
			continue
		}
		seen++
		bytes, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("unexpected init trace line %q", line)
		}
		if bytes > budget {
			t.Errorf("package %s allocates %d bytes in init (budget %d): %s", f[1], bytes, budget, strings.TrimSpace(line))
		}
	}
	if seen < 10 {
		t.Fatalf("traced %d passman packages' inits: %s", seen, out)
	}
}

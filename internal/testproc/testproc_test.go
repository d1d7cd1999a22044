package testproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFreePortsDistinct(t *testing.T) {
	ports, err := FreePorts(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: not 8 distinct ports", ports)
		}
		seen[p] = true
	}
	if len(seen) != 8 {
		t.Fatalf("got %d ports, want 8", len(seen))
	}
}

func TestTail(t *testing.T) {
	name := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(name, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Tail(name, 4); got != "6789" {
		t.Errorf("Tail(4) = %q, want 6789", got)
	}
	if got := Tail(name, 100); got != "0123456789" {
		t.Errorf("Tail(100) = %q, want the whole file", got)
	}
	if got := Tail(filepath.Join(t.TempDir(), "missing"), 4); !strings.HasPrefix(got, "(") {
		t.Errorf("Tail of a missing file = %q, want the reason in parentheses", got)
	}
}

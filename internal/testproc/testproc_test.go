package testproc

import (
	"errors"
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

// TestShared: the server is started once for every caller, again once it
// has stopped, and a failed start is not tried again.
func TestShared(t *testing.T) {
	type srv struct{ n int }
	starts := 0
	start := func() (*srv, error) { starts++; return &srv{n: starts}, nil }
	var stoppedN int
	stopped := func(s *srv) bool { return s.n == stoppedN }
	var s Shared[*srv]
	for range 3 {
		if got, err := s.Get(start, stopped); err != nil || got.n != 1 {
			t.Fatalf("Get: %+v, %v, want server 1", got, err)
		}
	}
	stoppedN = 1
	if got, err := s.Get(start, stopped); err != nil || got.n != 2 || starts != 2 {
		t.Fatalf("Get after a stop: %+v, %v (%d starts), want server 2", got, err, starts)
	}

	var f Shared[*srv]
	boom := errors.New("boom")
	fails := 0
	failing := func() (*srv, error) { fails++; return nil, boom }
	for range 2 {
		if _, err := f.Get(failing, stopped); !errors.Is(err, boom) {
			t.Fatalf("Get with a failing start: %v", err)
		}
	}
	if fails != 1 {
		t.Errorf("a failed start was tried %d times, want once", fails)
	}
}

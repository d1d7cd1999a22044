package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testTime is the fixed request time of every test input.
var testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newEngine builds an engine or fails the test.
func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return e
}

// writeFiles creates files (slash paths relative to dir) with their texts.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

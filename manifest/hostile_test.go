package manifest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/secret"
)

// billionLaughs is the classic alias bomb: 9 levels of 9 aliases expand to
// 9^9 strings if anything follows the aliases.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("secrets:\n  - path: a\n    static: true\n    rotation:\n      period: 1h\n      connection: x\n      params:\n")
	b.WriteString(`        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for i := 'b'; i <= 'i'; i++ {
		p := string(i - 1)
		fmt.Fprintf(&b, "        %c: &%c [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", i, i, p, p, p, p, p, p, p, p, p)
	}
	return b.String()
}

func TestParseHostile(t *testing.T) {
	t.Parallel()
	const head = "secrets:\n  - path: a\n    static: true\n"
	for name, tc := range map[string]struct {
		data string
		want string // the whole error
	}{
		"NUL byte":          {head + "    owner: te\x00am\n", "passman.yaml:4:14: control character U+0000 is not allowed in a manifest"},
		"escape character":  {head + "    owner: \x1b[31mred\n", "passman.yaml:4:12: control character U+001B is not allowed in a manifest"},
		"invalid UTF-8":     {head + "    owner: \xff\n", "passman.yaml:4:12: invalid UTF-8; a manifest is UTF-8 text"},
		"billion laughs":    {billionLaughs(), "passman.yaml:8:12: aliases (*name) and anchors (&name) are not allowed in a manifest"},
		"merge key":         {"base: &b {static: true}\nsecrets:\n  - <<: *b\n    path: a\n", "passman.yaml:1:7: aliases (*name) and anchors (&name) are not allowed in a manifest"},
		"deep config":       {head + "    rotation: {period: 1h, connection: x, params: {k: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "}}\n", "passman.yaml:4:82: nested more than 32 levels deep"},
		"deeper than yaml":  {head + "    rotation: {period: 1h, connection: x, params: {k: " + strings.Repeat("[", 10001) + "}}\n", "passman.yaml:4:5: yaml: exceeded max depth of 10000"},
		"scalar document":   {"just a string\n", "passman.yaml:1:1: manifest: want a mapping, got a string"},
		"null document":     {"---\n~\n", "passman.yaml:2:1: no secrets: declare at least one under secrets:"},
		"third document":    {head + "---\n---\n", "passman.yaml:4:1: a second YAML document; a manifest is one document (remove the '---' separator)"},
		"too large":         {head + strings.Repeat("#", manifest.MaxFileSize), "too large: manifest passman.yaml is 4194342 bytes, at most 4194304 (4 MiB) allowed; split it"},
		"complex key":       {"secrets:\n  - ? [a]\n    : x\n    path: a\n    static: true\n", "passman.yaml:2:7: secret: field names must be strings, got a list"},
		"binary owner":      {head + "    owner: !!binary aGVsbG8=\n", "passman.yaml:4:12: owner: want a string, got binary data"},
		"legacy config":     {head + "    rotation: {period: 1h, connector: exec, config: {command: /bin/sh}}\n", "passman.yaml:4:28: rotation.connector: a secret names a connection now (rotation.connection); the connector and its config belong to the connection, which an administrator defines (docs/rotation.md)\npassman.yaml:4:45: rotation.config: a secret's per-secret settings are rotation.params now; credentials, URLs and programs belong to the connection (docs/rotation.md)"},
		"int key in config": {head + "    rotation: {period: 1h, connection: x, params: {1: a}}\n", "passman.yaml:4:52: rotation.params: keys must be strings, got an integer"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := manifest.Parse("passman.yaml", []byte(tc.data))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Parse error:\n got %v\nwant %s", err, tc.want)
			}
			if !errors.Is(err, secret.ErrInvalidArgument) && !errors.Is(err, secret.ErrTooLarge) {
				t.Errorf("error is neither ErrInvalidArgument nor ErrTooLarge: %v", err)
			}
		})
	}
}

// TestAliasBombMemory checks that refusing the bomb costs about its own
// size: nothing expands the aliases.
func TestAliasBombMemory(t *testing.T) {
	data := []byte(billionLaughs())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	if _, err := manifest.Parse("passman.yaml", data); err == nil {
		t.Fatal("bomb accepted")
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	// Allocation, not time, is the behaviour under test: nothing expands
	// the aliases. (Speed is for benchmarks; a loaded CI machine is slow.)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("refusing a %d-byte bomb allocated %d bytes (%v)", len(data), alloc, elapsed)
	}
}

// TestParseMaxElementsMemory bounds the worst case within the limits: a
// flat list, the most YAML nodes per byte, just under MaxElements.
func TestParseMaxElementsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB")
	}
	head := "secrets:\n  - path: a\n    static: true\n    rotation: {period: 1h, connection: x, params: {k: ["
	n := manifest.MaxElements - 40
	data := []byte(head + strings.Repeat("1,", n) + "1]}}\n")
	if _, err := manifest.Parse("passman.yaml", append(data, strings.Repeat(",", 100)...)); !errors.Is(err, secret.ErrTooLarge) {
		t.Fatalf("more than MaxElements accepted: %v", err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	m, err := manifest.Parse("passman.yaml", data)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes, %d list items: %v, %d MB allocated", len(data), len(m.Secrets[0].Rotation.Params["k"].([]any)), elapsed, alloc>>20)
	if alloc > 600<<20 {
		t.Fatalf("a maximal manifest allocated %d MB (%v)", alloc>>20, elapsed)
	}
}

// TestLoadRefusesLargeFile checks the size is refused before reading: a
// sparse 1 GiB file would take seconds and a gigabyte to read.
func TestLoadRefusesLargeFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "passman.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	_, err = manifest.Load(path)
	if !errors.Is(err, secret.ErrTooLarge) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("Load of a 1 GiB file: %v after %v", err, time.Since(start))
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "passman.yaml")
	// A byte-order mark and CRLF line ends, as Windows editors write.
	if err := os.WriteFile(path, []byte("\ufeffsecrets:\r\n  - path: a\r\n    static: true\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(path)
	if err != nil || m.File != path || m.Secrets[0].Path != "a" || m.Secrets[0].Line != 2 {
		t.Fatalf("Load = %+v, %v", m, err)
	}
	if _, err := manifest.Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

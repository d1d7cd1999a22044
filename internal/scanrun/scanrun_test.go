package scanrun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/scanner"
)

func TestFilters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := scanner.Finding{RuleID: "r", File: "a.txt", StartLine: 1, Fingerprint: strings.Repeat("a", 64), Commit: strings.Repeat("1", 40)}
	b := scanner.Finding{RuleID: "r", File: "b.txt", StartLine: 2, Fingerprint: strings.Repeat("b", 64), Commit: strings.Repeat("2", 40)}
	c := scanner.Finding{RuleID: "r", File: "c.txt", StartLine: 3, Fingerprint: strings.Repeat("c", 64), Commit: strings.Repeat("3", 40)}
	base := filepath.Join(dir, "baseline.json")
	if err := os.WriteFile(base, []byte(`[{"RuleID":"r","File":"b.txt","StartLine":2,"Fingerprint":"`+b.Fingerprint+`"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitleaksignore"), []byte(c.Fingerprint+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := LoadFilters(base, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	fresh, known := f.Apply([]scanner.Finding{a, b, c})
	if len(fresh) != 1 || fresh[0].File != "a.txt" || len(known) != 1 || known[0].File != "b.txt" {
		t.Fatalf("fresh %v known %v", fresh, known)
	}
	// No filters: everything is new.
	if fresh, known := (Filters{}).Apply([]scanner.Finding{a, b}); len(fresh) != 2 || known != nil {
		t.Fatalf("no filters: %v %v", fresh, known)
	}
	// A missing default .gitleaksignore is fine; a named one is not.
	if _, err := LoadFilters("", "", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][3]string{
		"missing baseline": {filepath.Join(dir, "none.json"), "", ""},
		"missing ignore":   {"", filepath.Join(dir, "none"), ""},
		"bad baseline":     {filepath.Join(dir, ".gitleaksignore"), "", ""},
	} {
		if _, err := LoadFilters(args[0], args[1], args[2]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

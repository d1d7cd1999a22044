package clibase

import (
	"strings"
	"testing"
)

// TestServes pins which invocations the front answers itself: only those
// that need no store, and parse; everything else is the full program's.
func TestServes(t *testing.T) {
	for _, c := range []struct {
		args string
		want bool
	}{
		{"--version", true},
		{"version", true},
		{"version -o json", true},
		{"-o json version", true},
		{"scan file -", true},
		{"scan file - --format sarif --rules gitleaks --show-secrets=false", true},
		{"scan dir .", true},
		{"scan git . --range a..b --no-cache --cache-file x", true},
		{"scan staged", true},
		{"-o json scan staged .", true},
		{"scan file - --baseline b.json --gitleaks-ignore .gitleaksignore --config c.toml", true},
		{"", false},
		{"--help", false},
		{"-h", false},
		{"version --help", false},
		{"scan file --help", false},
		{"scan file - -h", false},
		{"scan", false},
		{"scan bogus", false},
		{"scan file", false},
		{"scan file a b", false},
		{"scan file - --bogus", false},
		{"scan file - --index ix.json", false},
		{"scan file - --managed", false},
		{"scan file - --managed=false", false},
		{"scan git . --respond", false},
		{"--store s scan file -", false},
		{"scan file - --addr http://x", false},
		{"--version extra", false},
		{"completion bash", false},
		{"__complete scan ''", false},
		{"secret list", false},
		{"action run", false},
		{"bogus", false},
	} {
		if got := Serves(strings.Fields(c.args)); got != c.want {
			t.Errorf("Serves(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

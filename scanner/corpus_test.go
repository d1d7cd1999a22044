package scanner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/passman-dev/passman/scanner"
)

// corpusScore scans every file of testdata/corpus.txtar and scores the
// findings against its labels (the risky lines): recall is the share of
// risky lines found, precision the share of findings on a risky line.
func corpusScore(t *testing.T, rules string) (recall, precision float64, missed []string) {
	t.Helper()
	a, err := txtar.ParseFile("testdata/corpus.txtar")
	if err != nil {
		t.Fatal(err)
	}
	risky := map[string]bool{}
	found := map[string]bool{}
	hits, total := 0, 0
	s := newScanner(t, scanner.Options{Rules: rules})
	for _, f := range a.Files {
		if f.Name == "labels" {
			for _, l := range strings.Fields(string(f.Data)) {
				risky[l] = true
			}
			continue
		}
		fs, _, err := s.ScanReader(context.Background(), f.Name, strings.NewReader(string(f.Data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range fs {
			key := fmt.Sprintf("%s:%d", g.File, g.StartLine)
			total++
			if risky[key] {
				hits++
				found[key] = true
			} else if rules == scanner.RulesPassman {
				t.Logf("false positive: %s %s", key, g.RuleID)
			}
		}
	}
	if len(risky) < 40 {
		t.Fatalf("the corpus labels %d lines", len(risky))
	}
	for k := range risky {
		if !found[k] {
			missed = append(missed, k)
		}
	}
	if total > 0 {
		precision = float64(hits) / float64(total)
	}
	return float64(len(found)) / float64(len(risky)), precision, missed
}

// TestCorpusRecall holds passman's rules to recall ≥ 0.6 at precision
// ≥ 0.9 on the corpus of leaks gitleaks' rules miss.
func TestCorpusRecall(t *testing.T) {
	t.Parallel()
	recall, precision, missed := corpusScore(t, scanner.RulesPassman)
	glRecall, glPrecision, _ := corpusScore(t, scanner.RulesGitleaks)
	t.Logf("passman rules: recall %.2f, precision %.2f; gitleaks rules: recall %.2f, precision %.2f", recall, precision, glRecall, glPrecision)
	t.Logf("missed: %v", missed)
	if recall < 0.6 || precision < 0.9 {
		t.Errorf("recall %.2f, precision %.2f: want at least 0.6 and 0.9", recall, precision)
	}
}

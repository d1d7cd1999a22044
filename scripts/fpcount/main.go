// Command fpcount counts what the scanner reports in ordinary source trees
// (the source of this module's dependencies in the module cache, where no
// real secret should be) with gitleaks' rules and with passman's, so that
// passman's extra rules can be held to a bounded number of false positives.
//
//	go run ./scripts/fpcount
package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/passman-dev/passman/internal/benchrepo"
	"github.com/passman-dev/passman/scanner"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "fpcount:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dirs, err := benchrepo.SourceDirs(ctx, ".")
	if err != nil {
		return err
	}
	counts := map[string]map[string]int{}
	var files int64
	for _, set := range scanner.RuleSets {
		s, err := scanner.New(scanner.Options{Rules: set})
		if err != nil {
			return err
		}
		counts[set] = map[string]int{}
		files = 0
		for _, d := range dirs {
			fs, st, err := s.ScanDir(ctx, d)
			if err != nil {
				return err
			}
			files += st.Files
			for _, f := range fs {
				counts[set][f.RuleID]++
			}
		}
	}
	total := func(m map[string]int) (n int) {
		for _, c := range m {
			n += c
		}
		return n
	}
	gl, pm := total(counts[scanner.RulesGitleaks]), total(counts[scanner.RulesPassman])
	fmt.Printf("%d source trees, %d files\n", len(dirs), files)
	fmt.Printf("findings with gitleaks' rules: %d; with passman's: %d (%+.1f%%)\n", gl, pm, 100*(float64(pm)/float64(max(gl, 1))-1))
	for _, id := range slices.Sorted(maps.Keys(counts[scanner.RulesPassman])) {
		if d := counts[scanner.RulesPassman][id] - counts[scanner.RulesGitleaks][id]; d != 0 {
			fmt.Printf("  %-40s %+d\n", id, d)
		}
	}
	return nil
}

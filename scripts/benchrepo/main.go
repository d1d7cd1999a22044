// Command benchrepo builds the deterministic git benchmark repository for
// secret scanning from the source of this module's dependencies (see
// internal/benchrepo), writes its manifest and prints a summary line.
//
//	go run ./scripts/benchrepo -out /tmp/benchrepo-10k -manifest /tmp/benchrepo-10k.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/passman-dev/passman/internal/benchrepo"
)

func main() {
	out := flag.String("out", "", "directory to create the repository in (must not exist or be empty)")
	commits := flag.Int("commits", 10000, "commits on main's first-parent line, merges included")
	seed := flag.Uint64("seed", 1, "PRNG seed; the same seed gives the same repository")
	manifest := flag.String("manifest", "", "file to write the manifest to as JSON (secret values left out)")
	mergeHeavy := flag.Bool("merge-heavy", false, "small commits and a merged feature branch every few commits (see benchrepo.Options.MergeHeavy)")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: benchrepo -out DIR [-commits N] [-seed N] [-manifest FILE]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *commits, *seed, *manifest, *mergeHeavy); err != nil {
		fmt.Fprintln(os.Stderr, "benchrepo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string, commits int, seed uint64, manifest string, mergeHeavy bool) error {
	// The corpus is this module's dependencies, so it is fixed by go.sum.
	sources, err := benchrepo.SourceDirs(ctx, ".")
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := benchrepo.Build(ctx, out, benchrepo.Options{Commits: commits, Seed: seed, Sources: sources, MergeHeavy: mergeHeavy})
	if err != nil {
		return err
	}
	took := time.Since(start)
	if manifest != "" {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("encode manifest: %w", err)
		}
		if err := os.WriteFile(manifest, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
	}
	fmt.Printf("%d commits (%d on main), %.1f MB added, %d planted, head %s, built in %s\n",
		m.Commits, commits, float64(m.AddedBytes)/1e6, len(m.Planted), m.Head, took.Round(100*time.Millisecond))
	return nil
}

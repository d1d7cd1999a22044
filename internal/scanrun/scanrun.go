// Package scanrun holds what the front ends that run a leak scan share
// (the CLI's passman scan and the GitHub Action's scan command): loading
// the baseline and .gitleaksignore filters, fetching a store's shareable
// fingerprint index. Each is the same call from both, so they cannot drift
// apart. It links no store, policy or rotation code: the passman front
// runs scans through it.
package scanrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/scanner"
)

// Filters are the known findings a scan leaves out.
type Filters struct {
	Baseline *scanner.Baseline
	Ignore   *scanner.Ignore
}

// LoadFilters loads the baseline report at baseline ("" for none) and
// the .gitleaksignore at ignore; with ignore "" it looks for
// .gitleaksignore in root (the scanned directory or repository), as
// gitleaks does, and a missing one there is no error.
func LoadFilters(baseline, ignore, root string) (Filters, error) {
	var f Filters
	if baseline != "" {
		file, err := os.Open(baseline)
		if err != nil {
			return f, fmt.Errorf("baseline: %w", err)
		}
		defer file.Close()
		if f.Baseline, err = scanner.LoadBaseline(file); err != nil {
			return f, fmt.Errorf("baseline %s: %w", baseline, err)
		}
	}
	path, explicit := ignore, ignore != ""
	if !explicit && root != "" {
		path = filepath.Join(root, ".gitleaksignore")
	}
	if path == "" {
		return f, nil
	}
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("gitleaks-ignore: %w", err)
	}
	defer file.Close()
	if f.Ignore, err = scanner.LoadIgnore(file); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Apply drops the ignored findings and splits the rest into new ones and
// those the baseline already knows.
func (f Filters) Apply(findings []scanner.Finding) (fresh, known []scanner.Finding) {
	findings, _ = f.Ignore.Filter(findings)
	fresh, _ = f.Baseline.Filter(findings)
	if len(fresh) == len(findings) {
		return fresh, nil
	}
	isNew := make(map[string]bool, len(fresh))
	for _, x := range fresh {
		isNew[key(x)] = true
	}
	for _, x := range findings {
		if !isNew[key(x)] {
			known = append(known, x)
		}
	}
	return fresh, known
}

func key(f scanner.Finding) string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%d", f.Fingerprint, f.Commit, f.File, f.StartLine, f.StartColumn)
}

// IndexSource shares a store's fingerprint index: passman.Fingerprints
// (client.Client and core.Local implement it).
type IndexSource interface {
	ExportFingerprintPrefixes(ctx context.Context, prefix string, w io.Writer) (fpindex.File, error)
	fpindex.Confirmer
}

// ManagedOptions completes opts to recognise the managed secrets under
// prefix ("" for all) that src shares (those the caller may read),
// confirmed by src. withheld counts the values too weak to export.
func ManagedOptions(ctx context.Context, src IndexSource, prefix string, opts scanner.Options) (_ scanner.Options, withheld int, err error) {
	var buf bytes.Buffer
	if _, err := src.ExportFingerprintPrefixes(ctx, prefix, &buf); err != nil {
		return opts, 0, fmt.Errorf("managed: %w", err)
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		return opts, 0, fmt.Errorf("managed: %w", err)
	}
	opts.Managed, opts.Confirm = ix, src
	return opts, ix.Withheld(), nil
}

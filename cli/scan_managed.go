package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/internal/scanrun"
	"github.com/passman-dev/passman/scanner"
)

// exitScanError is passman scan's exit code for an error (see clibase).
const exitScanError = clibase.ExitScanError

// WithManaged runs scan with opts completed for the index the flags name,
// if any: --index FILE, whose candidates the store confirms (the server
// with an address set, else the local store, open for the scan) unless
// the file is in the local form; --managed, the local store's own index
// in the local form (the store is closed again before the scan) or, with
// an address set, the server's shareable index and its confirmations.
// Either way only secrets the caller may read are recognised. scan's
// errors are returned as they are; the others exit 2.
func (a *app) WithManaged(ctx context.Context, f *clibase.ScanFlags, opts scanner.Options, scan func(scanner.Options) error) error {
	ran := false
	run := func(ix *fpindex.Index, c fpindex.Confirmer) error {
		if n := ix.Withheld(); n > 0 {
			fmt.Fprintf(a.Env.Stderr, "note: %d managed values are too weak to export (fewer than %d bytes or about %d bits) and are not searched for\n", n, fpindex.MinValueLength, fpindex.MinEntropyBits)
		}
		opts.Managed, opts.Confirm = ix, c
		ran = true
		return scan(opts)
	}
	var err error
	switch {
	case f.Index != "":
		var ix *fpindex.Index
		if ix, err = readIndexFile(f.Index); err != nil {
			break
		}
		if ix.Local() {
			return run(ix, nil)
		}
		err = withBackend(ctx, a, func(c *client.Client) passman.Fingerprints { return c },
			func(l *core.Local) passman.Fingerprints { return l }, func(c passman.Fingerprints) error { return run(ix, c) })
	case f.Managed && a.remoteAddr() != "":
		err = a.withFingerprintSource(ctx, func(c passman.Fingerprints) error {
			mopts, _, err := scanrun.ManagedOptions(ctx, c, "", opts)
			if err != nil {
				return fmt.Errorf("--%w", err)
			}
			return run(mopts.Managed.(*fpindex.Index), c)
		})
	case f.Managed:
		var buf bytes.Buffer
		err = a.withLocal(ctx, func(l *core.Local, _ config) error {
			_, err := l.ExportFingerprints(ctx, &buf)
			return err
		})
		var ix *fpindex.Index
		if err == nil {
			ix, err = fpindex.Read(&buf)
		}
		if err != nil {
			err = fmt.Errorf("--managed: %w", err)
			break
		}
		return run(ix, nil)
	default:
		return scan(opts)
	}
	if err != nil && !ran {
		return &clibase.ExitError{Code: exitScanError, Err: err}
	}
	return err
}

func readIndexFile(path string) (*fpindex.Index, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--index: %w", err)
	}
	defer file.Close()
	ix, err := fpindex.Read(file)
	if err != nil {
		return nil, fmt.Errorf("--index %s: %w", path, err)
	}
	return ix, nil
}

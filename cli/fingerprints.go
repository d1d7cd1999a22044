package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/internal/clibase"
)

func newFingerprintsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fingerprints",
		Short: "Export the fingerprint index for leak scanning",
		Args:  clibase.GroupArgs,
		RunE:  clibase.GroupRun,
	}
	cmd.AddCommand(newFingerprintsExportCmd(a))
	return cmd
}

// withFingerprintSource runs fn with the server at remoteAddr when one is
// set, else with the local store.
func (a *app) withFingerprintSource(ctx context.Context, fn func(passman.Fingerprints) error) error {
	return withBackend(ctx, a, func(c *client.Client) passman.Fingerprints { return c },
		func(l *core.Local) passman.Fingerprints { return l }, fn)
}

func newFingerprintsExportCmd(a *app) *cobra.Command {
	var file, prefix string
	cmd := &cobra.Command{
		Use:   "export --file FILE [--prefix PREFIX]",
		Short: "Write the detection key and the fingerprint prefixes of managed values",
		Long: `Write the fingerprint index for a scanner without the store
('passman scan ... --index FILE'): the store's detection key and, for every
live version under --prefix that you may read, the first 24 bits of its
keyed fingerprint — never a value, a full fingerprint or a path, and of
lengths only the set present (which keeps scanning fast).
A scanned token whose prefix is in the file is only a candidate: the scan
has the store confirm it (the server with an address set), which answers
only for secrets the caller may read. Nobody can confirm a guess with the
file alone.

Values too weak to export (fewer than 16 bytes, or an estimated entropy
under 64 bits) are left out and counted. The file still holds the
detection key: treat it like a CI secret. It is written with mode 0600;
"-" writes to standard output. With a server address set, the server's
index is exported, as the token's identity.`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return clibase.UsageErrorf("--file is required (\"-\" for standard output)")
			}
			ctx := cmd.Context()
			return a.withFingerprintSource(ctx, func(src passman.Fingerprints) error {
				if file == "-" {
					_, err := src.ExportFingerprintPrefixes(ctx, prefix, a.Out.W)
					return err
				}
				tmp, err := os.CreateTemp(filepath.Dir(file), ".passman-fingerprints-*")
				if err != nil {
					return fmt.Errorf("export fingerprints: %w", err)
				}
				defer os.Remove(tmp.Name())
				f, err := src.ExportFingerprintPrefixes(ctx, prefix, tmp)
				if cerr := tmp.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = os.Rename(tmp.Name(), file)
				}
				if err != nil {
					return fmt.Errorf("export fingerprints: %w", err)
				}
				return a.Out.Emit(map[string]any{"file": file, "entries": f.Exported, "withheld": f.Withheld}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "exported %d fingerprints to %s\n", f.Exported, file)
					if err == nil && f.Withheld > 0 {
						_, err = fmt.Fprintf(w, "left out %d too weak to export (fewer than %d bytes or about %d bits)\n", f.Withheld, fpindex.MinValueLength, fpindex.MinEntropyBits)
					}
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "file to write (mode 0600), - for standard output")
	cmd.Flags().StringVar(&prefix, "prefix", "", "export only secrets under this path prefix")
	return cmd
}

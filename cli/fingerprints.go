package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
)

func newFingerprintsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fingerprints",
		Short: "Export the fingerprint index for leak scanning",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newFingerprintsExportCmd(a))
	return cmd
}

// fingerprintExporter writes the fingerprint index: core.Local, or a
// passman server (client.Client), where it is an admin action audited as
// the token's identity.
type fingerprintExporter interface {
	ExportFingerprints(ctx context.Context, w io.Writer) (int, error)
}

var (
	_ fingerprintExporter = (*core.Local)(nil)
	_ fingerprintExporter = (*client.Client)(nil)
)

// withFingerprintExporter runs fn with the server at remoteAddr when one
// is set, else with the local store.
func (a *app) withFingerprintExporter(ctx context.Context, fn func(fingerprintExporter) error) error {
	return withBackend(ctx, a, func(c *client.Client) fingerprintExporter { return c },
		func(l *core.Local) fingerprintExporter { return l }, fn)
}

func newFingerprintsExportCmd(a *app) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "export --file FILE",
		Short: "Write the detection key and every managed version's fingerprint",
		Long: `Write the fingerprint index: the store's detection key and, for every live
version, its keyed fingerprint, path, stages and length — never a value — so
a scanner without the store can recognise managed secrets.

Holding the file lets one test guesses against the fingerprints: a
low-entropy secret can be brute-forced offline. Treat it like a CI secret
(see package fpindex). The file is written with mode 0600; "-" writes to
standard output. With a server address set, the server's index is
exported (an admin action on the server).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf("--file is required (\"-\" for standard output)")
			}
			return a.withFingerprintExporter(cmd.Context(), func(l fingerprintExporter) error {
				if file == "-" {
					_, err := l.ExportFingerprints(cmd.Context(), a.out.w)
					return err
				}
				tmp, err := os.CreateTemp(filepath.Dir(file), ".passman-fingerprints-*")
				if err != nil {
					return fmt.Errorf("export fingerprints: %w", err)
				}
				defer os.Remove(tmp.Name())
				n, err := l.ExportFingerprints(cmd.Context(), tmp)
				if cerr := tmp.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = os.Rename(tmp.Name(), file)
				}
				if err != nil {
					return fmt.Errorf("export fingerprints: %w", err)
				}
				return a.out.emit(map[string]any{"file": file, "entries": n}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "exported %d fingerprints to %s\n", n, file)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "file to write (mode 0600), - for standard output")
	return cmd
}

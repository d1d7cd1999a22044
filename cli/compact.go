package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
)

func newStoreCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Maintain the store's database: compact, back up, restore",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newStoreCompactCmd(a), newStoreBackupCmd(a), newStoreRestoreCmd(a))
	return cmd
}

func newStoreCompactCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the database with only its live data",
		Long: `Rewrite the database with only its live data. 'secret destroy' removes a
version's ciphertext from the store, but the database does not clear the
pages it frees, so the bytes stay in the file until a page is reused;
compaction removes them. Nothing else may have the store open meanwhile.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			rep, err := core.Compact(cmd.Context(), c.coreOptions())
			if err != nil {
				return fmt.Errorf("compact store: %w", err)
			}
			return a.out.emit(rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "compacted %s: %d → %d bytes\n", c.dir, rep.Before, rep.After)
				return err
			})
		},
	}
}

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/keyring"
)

func newInitCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a store and its master key",
		Long: `Create a store: its directory, database and audit log, and, unless
PASSMAN_MASTER_KEY is set, a new master key file readable only by you (mode 0600).

Back up the key file: without it no secret in the store can be read. init
refuses to overwrite an existing store or key file.`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			res, err := core.Init(cmd.Context(), c.coreOptions())
			if err != nil {
				return fmt.Errorf("init store %s: %w", c.dir, err)
			}
			return a.Out.Emit(res, func(w io.Writer) error {
				t := newTable(w, "store:", res.Dir)
				t.row("store id:", res.StoreID)
				t.row("key id:", res.KeyID)
				if res.KeyFile != "" {
					t.row("key file:", res.KeyFile)
				} else {
					t.row("key source:", keyring.EnvVar)
				}
				if err := t.flush(); err != nil {
					return err
				}
				if res.KeyFile != "" {
					_, err = fmt.Fprintf(w, "Back up %s: without it no secret in this store can be read.\n", res.KeyFile)
				}
				return err
			})
		},
	}
}

package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/store/etcd"
)

func newStoreCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Maintain the store's database: compact, back up, restore",
		Args:  clibase.GroupArgs,
		RunE:  clibase.GroupRun,
	}
	cmd.AddCommand(newStoreCompactCmd(a), newStoreMigrateCmd(a), newStoreBackupCmd(a), newStoreRestoreCmd(a))
	return cmd
}

func newStoreMigrateCmd(a *app) *cobra.Command {
	var to, serverID string
	cmd := &cobra.Command{
		Use:   "migrate --to etcd://HOST:PORT[,HOST:PORT...]/PREFIX --server-id ID",
		Short: "Move the store into etcd, to be served by several servers",
		Long: `Copy the store into an empty prefix of an etcd cluster, where several
passman servers serve it (storage: etcd in their config). Values stay
sealed under the same master keys, which do not go to etcd. The store's
audit chain becomes the chain of server --server-id: its entries and head go
into etcd, and the server started with this --store directory and that
server_id goes on with it. The database file is then renamed with the
suffix .migrated, so nothing serves the old copy. Nothing else may have the
store open meanwhile. TLS: etcd://...?cacert=FILE&cert=FILE&key=FILE.`,
		Example: `  passman store migrate --to etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/passman/prod --server-id pm-1`,
		Args:    clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" || serverID == "" {
				return clibase.UsageErrorf("--to and --server-id are required")
			}
			ecfg, err := etcd.ParseURL(to)
			if err != nil {
				return err
			}
			c, err := a.config()
			if err != nil {
				return err
			}
			b, err := etcd.Open(cmd.Context(), ecfg)
			if err != nil {
				return err
			}
			defer b.Close()
			rep, err := core.Migrate(cmd.Context(), c.coreOptions(), b, serverID)
			if err != nil {
				return fmt.Errorf("migrate store: %w", err)
			}
			return a.Out.Emit(rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "migrated %s to %s: %d keys, %d audit entries (now the chain of server %s); the old database is %s\n",
					c.dir, strings.Join(ecfg.Endpoints, ","), rep.Keys, rep.AuditEntries, rep.ServerID, rep.MovedDB)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target etcd store: etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
	cmd.Flags().StringVar(&serverID, "server-id", "", "the server that will go on with this store's audit chain")
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
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			rep, err := core.Compact(cmd.Context(), c.coreOptions())
			if err != nil {
				return fmt.Errorf("compact store: %w", err)
			}
			return a.Out.Emit(rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "compacted %s: %d → %d bytes\n", c.dir, rep.Before, rep.After)
				return err
			})
		},
	}
}

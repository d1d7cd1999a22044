package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/store/etcd"
)

// backupReport is what store backup reports.
type backupReport struct {
	File   string        `json:"file"`
	Bytes  int64         `json:"bytes"`
	Header backup.Header `json:"backup"`
}

func newStoreBackupCmd(a *app) *cobra.Command {
	var opts backup.Options
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent backup of the store, online",
		Long: `Write a consistent backup of the store to FILE ("-" for standard output):
the database as one read transaction sees it and the audit log up to it.
With a server address set the server takes it while it serves (an admin
action, audited) and streams it; otherwise the local store is backed up,
which no server may hold open meanwhile.

The backup holds sealed values and wrapped data keys, never the master
key: keep the key (or PASSMAN_MASTER_KEY) safe apart from it; a restore
needs it. --logical writes the keyspace as records instead of the database
file: it carries no freed pages (the bytes of destroyed versions) and
restores into any backend.`,
		Args: clibase.ExactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var h backup.Header
			n, err := writeAtomic(args[0], a.Env.Stdout, func(w io.Writer) error {
				return withBackend(ctx, a, func(c *client.Client) passman.Backups { return c },
					func(l *core.Local) passman.Backups { return l }, func(b passman.Backups) error {
						var err error
						h, err = b.Backup(ctx, w, opts)
						return err
					})
			})
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			rep := backupReport{File: args[0], Bytes: n, Header: h}
			if args[0] == "-" {
				return nil
			}
			return a.Out.Emit(rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "backed up store %s to %s: %d bytes, audit head %d; restore needs master key %v\n", h.StoreID, args[0], n, h.AuditSeq, h.KeyIDs)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&opts.Logical, "logical", false, "write the keyspace as records, not the database file")
	return cmd
}

// writeAtomic runs write into a temporary file beside name, checks that
// what it wrote reads back as a whole backup, then syncs it and renames
// it to name: a failed or cut-off backup never takes the place of a good
// one. "-" writes to stdout unchecked.
func writeAtomic(name string, stdout io.Writer, write func(io.Writer) error) (int64, error) {
	if name == "-" {
		cw := &counter{w: stdout}
		return cw.n, write(cw)
	}
	if _, err := os.Lstat(name); err == nil {
		return 0, clibase.UsageErrorf("%s exists; choose a new file name", name)
	}
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	cw := &counter{w: f}
	err = write(cw)
	if err == nil {
		err = checkBackup(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err == nil {
		err = fsx.SyncDir(dir)
	}
	return cw.n, err
}

// checkBackup reads f from the start to its checksum.
func checkBackup(f *os.File) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r, err := backup.NewReader(f)
	if err != nil {
		return err
	}
	for {
		_, sec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, sec); err != nil {
			return err
		}
	}
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newStoreRestoreCmd(a *app) *cobra.Command {
	var to, configFile, serverID string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup into a new store directory or an etcd prefix",
		Long: `Restore the backup in FILE ("-" for standard input) into the store directory
(--store), which must hold no store yet. The master key is not in the
backup: give the store's key as for any command (--key-file, or
PASSMAN_MASTER_KEY); it is checked before anything is written. The backup
is kept only once its checksum matched, and the restored store's audit
log is checked against the head its database recorded, as on every open;
the restore is audited in it.

With --to etcd://HOST:PORT[,HOST:PORT...]/PREFIX, or --config naming a
server configuration with storage: etcd, the backup (of a bbolt store or of
a cluster) is restored into that etcd prefix instead, which must hold
nothing unless --force, which first removes what it holds (stop its
servers first: it refuses while one runs the scheduler, and refuses a
prefix another deployment's lies below). --store is then the directory of the server --server-id
(default: the server that took a cluster's backup; a bbolt backup's chain
becomes this server's), where its audit log is written; every server's
audit chain in the backup is restored into etcd, so audit verify passes.
With --config, its store, key_file and server_id apply unless flags say
otherwise. TLS: etcd://...?cacert=FILE&cert=FILE&key=FILE.`,
		Example: `  passman store restore /backups/passman.pmb --store /var/lib/passman-new --key-file /safe/master.key
  passman store restore /backups/passman.pmb --config /etc/passman/server.yaml
  passman store restore /backups/passman.pmb --to etcd://10.0.0.1:2379/passman/prod --server-id pm-1 --store /var/lib/passman`,
		Args: clibase.ExactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ecfg, err := a.sharedTarget(to, configFile, &serverID)
			if err != nil {
				return err
			}
			if ecfg == nil && (force || serverID != "") {
				return clibase.UsageErrorf("--force and --server-id are for a restore into etcd (--to, or --config with storage: etcd)")
			}
			c, err := a.config()
			if err != nil {
				return err
			}
			var in io.Reader = a.Env.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				defer f.Close()
				in = f
			}
			if ecfg != nil {
				return a.restoreShared(cmd, c, *ecfg, serverID, force, in)
			}
			rep, err := core.Restore(cmd.Context(), c.coreOptions(), in)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			return a.Out.Emit(rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "restored store %s (backed up %s from %s) into %s\n", rep.Header.StoreID, timeText(rep.Header.CreatedAt), rep.Header.Source, rep.Dir)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "restore into an etcd prefix: etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
	cmd.Flags().StringVar(&configFile, "config", "", "a server configuration `FILE` whose etcd storage to restore into")
	cmd.Flags().StringVar(&serverID, "server-id", "", "the server whose audit log --store gets (etcd)")
	cmd.Flags().BoolVar(&force, "force", false, "remove what the etcd prefix holds before restoring")
	return cmd
}

func (a *app) restoreShared(cmd *cobra.Command, c config, ecfg etcd.Config, serverID string, force bool, in io.Reader) error {
	b, err := etcd.Open(cmd.Context(), ecfg)
	if err != nil {
		return err
	}
	defer b.Close()
	if force {
		if err := refuseLiveServers(cmd.Context(), b); err != nil {
			return err
		}
	}
	opts := c.coreOptions()
	opts.Backend, opts.ServerID = b, serverID
	rep, err := core.RestoreShared(cmd.Context(), opts, in, force)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return a.Out.Emit(rep, func(w io.Writer) error {
		removed := ""
		if force {
			removed = fmt.Sprintf(" (%d keys removed first)", rep.Removed)
		}
		_, err := fmt.Fprintf(w, "restored store %s (backed up %s from %s) into etcd prefix %s%s: %d keys, %d audit entries; the audit log of server %s is in %s\n",
			rep.Header.StoreID, timeText(rep.Header.CreatedAt), rep.Header.Source, b.Prefix(), removed, rep.Keys, rep.AuditEntries, rep.ServerID, rep.Dir)
		return err
	})
}

// sharedTarget resolves the etcd store a command works on: --to, or the
// etcd storage of the server configuration file, whose store and key_file
// (and server_id, for etcd) apply unless flags or the environment say
// otherwise. nil means no etcd store was named.
func (a *app) sharedTarget(to, configFile string, serverID *string) (*etcd.Config, error) {
	switch {
	case to != "" && configFile != "":
		return nil, clibase.UsageErrorf("both an etcd URL and --config name the store: give one")
	case to != "":
		ecfg, err := etcd.ParseURL(to)
		if err != nil {
			return nil, err
		}
		return &ecfg, nil
	case configFile == "":
		return nil, nil
	}
	fc, err := server.LoadFile(configFile)
	if err != nil {
		return nil, err
	}
	ecfg, err := fc.EtcdConfig()
	if err != nil {
		return nil, err
	}
	if a.flags.store == "" && a.Env.Var(envStore) == "" {
		a.flags.store = fc.Store
	}
	if a.flags.keyFile == "" && a.Env.Var(envKeyFile) == "" {
		a.flags.keyFile = fc.KeyFile
	}
	if ecfg != nil && *serverID == "" {
		*serverID = fc.ServerID
	}
	return ecfg, nil
}

// refuseLiveServers refuses a forced restore while servers of the
// deployment are running: they would go on serving (and writing) over the
// prefix it clears. A server whose scheduler runs holds a key of the
// deployment's election on its session's lease while it lives; one
// without the scheduler shows nowhere, hence the docs' "stop its servers".
func refuseLiveServers(ctx context.Context, b *etcd.DB) error {
	pfx := server.ElectionPrefix(b.Prefix()) + "/"
	resp, err := b.Client().Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("restore: look for running servers: %w", err)
	}
	if resp.Count > 0 {
		return fmt.Errorf("%w: %d server(s) of this deployment are running (their scheduler's election keys are under %s): stop them before a forced restore", secret.ErrPrecondition, resp.Count, pfx)
	}
	return nil
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/fsx"
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
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var h backup.Header
			n, err := writeAtomic(args[0], a.env.Stdout, func(w io.Writer) error {
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
			return a.out.emit(rep, func(w io.Writer) error {
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
		return 0, usageErrorf("%s exists; choose a new file name", name)
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
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup into a new store directory",
		Long: `Restore the backup in FILE ("-" for standard input) into the store directory
(--store), which must hold no store yet. The master key is not in the
backup: give the store's key as for any command (--key-file, or
PASSMAN_MASTER_KEY); it is checked before anything is written. The backup
is kept only once its checksum matched, and the restored store's audit
log is checked against the head its database recorded, as on every open;
the restore is audited in it.`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.config()
			if err != nil {
				return err
			}
			var in io.Reader = a.env.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				defer f.Close()
				in = f
			}
			rep, err := core.Restore(cmd.Context(), c.coreOptions(), in)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			return a.out.emit(rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "restored store %s (backed up %s from %s) into %s\n", rep.Header.StoreID, timeText(rep.Header.CreatedAt), rep.Header.Source, rep.Dir)
				return err
			})
		},
	}
}

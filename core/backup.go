package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// Audit actions of backup and restore.
const (
	ActionBackup  = "store.backup"
	ActionRestore = "store.restore"
)

// snapshotter is a backend that copies its whole file under one read
// transaction (store/boltdb's Snapshot).
type snapshotter interface {
	Snapshot(ctx context.Context, fn func(tx store.Tx, size int64, writeTo func(io.Writer) (int64, error)) error) error
}

// Backup writes a consistent backup of the store to w while it serves: the
// database as one read transaction sees it, and the audit log up to at
// least the head that transaction recorded. It holds sealed values and
// wrapped data keys only, never a master key. It is an admin action,
// audited when it starts (so the backup's own log says it was taken) and
// when it ends.
func (l *Local) Backup(ctx context.Context, w io.Writer, opts backup.Options) (backup.Header, error) {
	o := op{action: ActionBackup, perm: policy.ActionAdmin}
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return backup.Header{}, err
	}
	if err := l.record(ctx, audit.Entry{Action: o.action, Details: map[string]string{"phase": "start"}, Decision: dec}, nil); err != nil {
		return backup.Header{}, err
	}
	// The head the snapshot records covers every entry so far, the start
	// included.
	if err := l.checkpoint(ctx); err != nil {
		return backup.Header{}, errors.Join(err, l.record(ctx, audit.Entry{Action: o.action, Decision: dec}, err))
	}
	cw := &countWriter{w: w}
	h, err := writeBackup(ctx, l.db, l.headName, l.opts.ServerID, l.log.Path(), cw, opts.Logical, l.opts.now())
	details := map[string]string{"bytes": strconv.FormatInt(cw.n, 10), "audit_seq": strconv.FormatUint(h.AuditSeq, 10)}
	if opts.Logical {
		details["logical"] = "true"
	}
	return h, l.read(ctx, audit.Entry{Action: o.action, Details: details, Decision: dec}, err)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// revisioner is a transaction reading at one etcd revision
// (store/etcd's).
type revisioner interface{ Revision() int64 }

// BackupBackend writes a backup of the store on b, with the audit log at
// logPath, to w: for a backend without a core.Local of its own in this
// process, such as an etcd cluster's. On etcd it is a logical export of the
// deployment's prefix at one revision (backup.KindKV), which restores into
// a bbolt store (Restore) as well as into etcd. The caller authorizes and
// audits it (Local.Backup does, for its own store).
func BackupBackend(ctx context.Context, b store.Backend, logPath string, w io.Writer, opts backup.Options, now time.Time) (backup.Header, error) {
	return writeBackup(ctx, b, auditHeadMeta, "", logPath, w, opts.Logical, now)
}

// writeBackup writes b's backup, with the audit log at logPath (whose head
// the store records as headName; its server's id on a cluster), to w.
func writeBackup(ctx context.Context, b store.Backend, headName, serverID, logPath string, w io.Writer, logical bool, now time.Time) (backup.Header, error) {
	var h backup.Header
	body := func(tx store.Tx, size int64, writeTo func(io.Writer) (int64, error)) error {
		info, err := store.InfoTx(tx)
		if err != nil {
			return err
		}
		var seq uint64
		if cb, err := store.MetaTx(tx, headName); err != nil {
			return err
		} else if cb != nil {
			cp, err := audit.ParseCheckpoint(cb)
			if err != nil {
				return err
			}
			seq = cp.Head.Seq
		}
		// Taken inside the transaction: every change it sees wrote its
		// entry before it committed, so the log holds at least as much.
		logSize, err := fileSize(logPath)
		if err != nil {
			return err
		}
		h = backup.Header{StoreID: info.ID, CreatedAt: now.UTC(), Source: "bbolt", KeyIDs: info.Keys, AuditSeq: seq, ServerID: serverID}
		if r, ok := tx.(revisioner); ok {
			// etcd: the snapshot's revision, fixed by the reads above; the
			// keyspace follows as records, read at it.
			h.Source, h.Revision, logical = "etcd", r.Revision(), true
		}
		bw, err := backup.NewWriter(w, h)
		if err != nil {
			return err
		}
		if writeTo != nil && !logical {
			sec, err := bw.Section(backup.KindBoltDB)
			if err != nil {
				return err
			}
			if _, err := writeTo(sec); err != nil {
				return fmt.Errorf("copy database: %w", err)
			}
			if err := sec.Close(); err != nil {
				return err
			}
		} else if err := writeKV(ctx, tx, bw); err != nil {
			return err
		}
		if err := writeAuditSection(bw, logPath, logSize); err != nil {
			return err
		}
		return bw.Close()
	}
	if s, ok := b.(snapshotter); ok {
		return h, s.Snapshot(ctx, body)
	}
	return h, b.View(ctx, func(tx store.Tx) error { return body(tx, 0, nil) })
}

func writeKV(ctx context.Context, tx store.Tx, bw *backup.Writer) error {
	sec, err := bw.Section(backup.KindKV)
	if err != nil {
		return err
	}
	kv := backup.NewKVWriter(sec)
	err = tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		return true, kv.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("copy keyspace: %w", err)
	}
	return sec.Close()
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("audit log: %w", err)
	}
	return fi.Size(), nil
}

// writeAuditSection copies the log's first size bytes up to the last whole
// line: an entry being appended meanwhile is either whole or left out.
func writeAuditSection(bw *backup.Writer, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	if size > 0 {
		win := min(size, int64(audit.MaxEntrySize)+8<<10)
		buf := make([]byte, win)
		if _, err := f.ReadAt(buf, size-win); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		size = size - win + int64(bytes.LastIndexByte(buf, '\n')+1)
	}
	sec, err := bw.Section(backup.KindAudit)
	if err != nil {
		return err
	}
	if _, err := io.Copy(sec, io.NewSectionReader(f, 0, size)); err != nil {
		return fmt.Errorf("copy audit log: %w", err)
	}
	return sec.Close()
}

// RestoreReport says what Restore restored.
type RestoreReport struct {
	Dir    string        `json:"dir"`
	Header backup.Header `json:"backup"`
	// Of a restore into a shared store (RestoreShared): the keys written,
	// the keys a forced restore removed first, the audit entries written
	// as a chain's replica, and the server whose log Dir now holds.
	Keys         int    `json:"keys,omitempty"`
	Removed      int    `json:"removed,omitempty"`
	AuditEntries uint64 `json:"audit_entries,omitempty"`
	ServerID     string `json:"server_id,omitempty"`
}

// restoreBatch bounds the records one transaction of a logical restore
// writes.
const restoreBatch = 1000

// Restore makes a new store in opts.Dir from the backup r holds. opts.Dir
// must hold no store or audit log (a master key file may be there). The
// master key is not in the backup: opts names it as for Open, and it must
// be one the backup's store used, checked before anything is written. The
// backup is written to a scratch directory and moved into place only once
// its checksum matched; then the store is opened as Open does (the audit
// log is checked against the head the database recorded) and the restore
// is audited in it, as opts.Actor.
func Restore(ctx context.Context, opts Options, r io.Reader) (RestoreReport, error) {
	rep := RestoreReport{Dir: opts.Dir}
	dbPath, logPath := filepath.Join(opts.Dir, DBFile), filepath.Join(opts.Dir, AuditFile)
	for _, p := range []string{dbPath, logPath} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			return rep, fmt.Errorf("%w: %s already exists: restore into a new store directory", secret.ErrPrecondition, p)
		}
	}
	kr, br, err := openBackup(opts, r)
	if br != nil {
		rep.Header = br.Header
	}
	if err != nil {
		return rep, err
	}
	tmp, err := stageBackup(ctx, br, opts.Dir)
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	if id := br.Header.ServerID; id != "" {
		if err := adoptChain(ctx, filepath.Join(tmp, DBFile), id); err != nil {
			return rep, err
		}
	}
	for _, name := range []string{DBFile, AuditFile} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(opts.Dir, name)); err != nil {
			return rep, fmt.Errorf("restore: %w", err)
		}
	}
	if err := fsx.SyncDir(opts.Dir); err != nil {
		return rep, err
	}
	opts.Keyring = kr
	l, err := Open(ctx, opts)
	if err != nil {
		return rep, fmt.Errorf("open the restored store: %w", err)
	}
	details := map[string]string{"store_id": br.Header.StoreID, "backup_created_at": br.Header.CreatedAt.Format(time.RFC3339),
		"source": br.Header.Source, "audit_seq": strconv.FormatUint(br.Header.AuditSeq, 10)}
	err = l.record(ctx, audit.Entry{Action: ActionRestore, Details: details}, nil)
	return rep, errors.Join(err, l.Close())
}

// openBackup loads the master key opts names and reads the backup's
// header, checking that the key is one the backup's store used before
// anything is written.
func openBackup(opts Options, r io.Reader) (*keyring.Keyring, *backup.Reader, error) {
	kr := opts.Keyring
	if kr == nil {
		var err error
		if kr, err = keyring.LoadFile(opts.keyFile()); err != nil {
			return nil, nil, fmt.Errorf("the backup holds no master key; give the store's key (--key-file or %s): %w", keyring.EnvVar, err)
		}
	}
	br, err := backup.NewReader(r)
	if err != nil {
		return nil, nil, err
	}
	if !slices.ContainsFunc(br.Header.KeyIDs, kr.Has) {
		return kr, br, fmt.Errorf("%w: master key %s does not open this backup (its store uses %v); give the store's key with --key-file or %s", secret.ErrKey, kr.Active(), br.Header.KeyIDs, keyring.EnvVar)
	}
	return kr, br, nil
}

// readSections writes the backup's database and audit log into dir, and
// returns once the backup's checksum matched.
// stageBackup reads the backup's sections into a new directory under dir
// (created if need be), which the caller removes: a restore moves or copies
// from there only once the whole backup has been read and its checksum held.
func stageBackup(ctx context.Context, br *backup.Reader, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create store directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	if err := readSections(ctx, br, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}

func readSections(ctx context.Context, br *backup.Reader, dir string) error {
	seen := map[backup.Kind]bool{}
	for {
		k, sec, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		db := k == backup.KindBoltDB || k == backup.KindKV
		if seen[k] || db && (seen[backup.KindBoltDB] || seen[backup.KindKV]) {
			return fmt.Errorf("%w: backup: a second database or audit section", secret.ErrCorrupt)
		}
		seen[k] = true
		switch k {
		case backup.KindBoltDB:
			err = writeFile(filepath.Join(dir, DBFile), sec)
		case backup.KindAudit:
			err = writeFile(filepath.Join(dir, AuditFile), sec)
		case backup.KindKV:
			err = restoreKV(ctx, filepath.Join(dir, DBFile), sec)
		}
		if err != nil {
			return err
		}
	}
	if !seen[backup.KindAudit] || !seen[backup.KindBoltDB] && !seen[backup.KindKV] {
		return fmt.Errorf("%w: backup: it lacks the database or the audit log", secret.ErrCorrupt)
	}
	return nil
}

// adoptChain makes the audit chain of server id, whose log a cluster's
// backup carries, the restored single store's chain: its recorded head
// becomes the store's, so the restored log is checked against it as any
// store's is on open. The other servers' replicated chains stay in the
// keyspace as they were.
func adoptChain(ctx context.Context, dbPath, id string) error {
	db, err := boltdb.Open(ctx, dbPath, boltdb.Options{})
	if err != nil {
		return err
	}
	err = db.Update(ctx, func(tx store.Tx) error {
		head, err := store.MetaTx(tx, clusterHeadPrefix+id)
		if err != nil || head == nil {
			return err
		}
		return store.PutMeta(tx, auditHeadMeta, bytes.Clone(head))
	})
	return errors.Join(err, db.Close())
}

func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// restoreKV writes a KV section into a new bbolt database at path.
func restoreKV(ctx context.Context, path string, r io.Reader) error {
	db, err := boltdb.Open(ctx, path, boltdb.Options{})
	if err != nil {
		return err
	}
	type kv struct{ k, v []byte }
	var batch []kv
	flush := func() error {
		err := db.Update(ctx, func(tx store.Tx) error {
			for _, e := range batch {
				if err := tx.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	err = backup.ReadKV(r, func(k, v []byte) error {
		batch = append(batch, kv{bytes.Clone(k), bytes.Clone(v)})
		if len(batch) == restoreBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return errors.Join(err, db.Close())
}

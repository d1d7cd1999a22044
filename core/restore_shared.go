package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// RestoreShared restores the backup r holds into the shared store
// opts.Backend (an etcd deployment's prefix), a bbolt backup or a
// cluster's alike, for server opts.ServerID whose directory is opts.Dir.
//
// The target must hold nothing under its prefix unless replace is set,
// which removes what it holds first (its servers must be stopped: a
// restore does not merge two stores). Every key is written as the backup
// holds it, sealed under the same master keys, checked against the backup
// before anything is written.
//
// Audit chains. A cluster's backup carries every server's replicated
// chain and the log of the server that took it (its ServerID), which is
// written to the store too, so that chain holds every entry the log does.
// A bbolt backup's chain becomes the chain of opts.ServerID, as Migrate
// makes it. The log goes into opts.Dir when it is opts.ServerID's chain
// (opts.ServerID empty means the backup's server); a server restoring
// under another id starts a chain of its own, which must be new to the
// backup. The store is then opened as that server (its log checked against
// its recorded head) and the restore audited there as store.restore.
func RestoreShared(ctx context.Context, opts Options, r io.Reader, replace bool) (RestoreReport, error) {
	rep := RestoreReport{Dir: opts.Dir}
	to := opts.Backend
	if to == nil {
		return rep, errors.New("restore into a shared store: no target store")
	}
	logPath := filepath.Join(opts.Dir, AuditFile)
	if _, err := os.Lstat(logPath); !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("%w: %s already exists: restore with a new directory for the server's audit log", secret.ErrPrecondition, logPath)
	}
	kr, br, err := openBackup(opts, r)
	if br != nil {
		rep.Header = br.Header
	}
	if err != nil {
		return rep, err
	}
	owner := br.Header.ServerID
	if owner != "" && !serverIDPattern().MatchString(owner) {
		// It names keys in the target: a backup's header is not trusted
		// with more than a server id.
		return rep, fmt.Errorf("%w: backup header: server id %q is not one a server may have", secret.ErrCorrupt, owner)
	}
	if opts.ServerID == "" {
		opts.ServerID = owner
	}
	if owner == "" {
		owner = opts.ServerID
	}
	rep.ServerID = opts.ServerID
	if err := checkCluster(opts); err != nil {
		return rep, err
	}
	// The whole backup is read, to its checksum, before the target is
	// touched.
	tmp, err := stageBackup(ctx, br, opts.Dir)
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	src, err := boltdb.Open(ctx, filepath.Join(tmp, DBFile), boltdb.Options{ReadOnly: true})
	if err != nil {
		return rep, err
	}
	defer src.Close()
	if opts.ServerID != owner {
		if err := requireNewChain(ctx, src, opts.ServerID); err != nil {
			return rep, err
		}
	}
	held, release, err := exclusive(ctx, to, "restore")
	if err != nil {
		return rep, err
	}
	defer release()
	if replace {
		if rep.Removed, err = clearStore(held, to); err != nil {
			return rep, err
		}
	} else if err := requireEmpty(held, to); err != nil {
		return rep, err
	}
	var marker []byte
	rep.Keys, marker, err = copyKeys(held, src, to, clusterHeadPrefix+owner)
	if err != nil {
		return rep, fmt.Errorf("copy store: %w", err)
	}
	if rep.AuditEntries, err = copyAuditLog(held, filepath.Join(tmp, AuditFile), to, owner); err != nil {
		return rep, fmt.Errorf("copy audit log: %w", err)
	}
	if err := putMarker(held, to, marker); err != nil {
		return rep, err
	}
	// The store is whole: a forced restore may replace it from here on.
	if err := release(); err != nil {
		return rep, err
	}
	rep.Keys++
	if opts.ServerID == owner {
		if err := os.Rename(filepath.Join(tmp, AuditFile), logPath); err != nil {
			return rep, fmt.Errorf("restore: %w", err)
		}
		if err := fsx.SyncDir(opts.Dir); err != nil {
			return rep, err
		}
	}
	opts.Keyring = kr
	l, err := Open(ctx, opts)
	if err != nil {
		return rep, fmt.Errorf("open the restored store: %w", err)
	}
	details := map[string]string{"store_id": br.Header.StoreID, "backup_created_at": br.Header.CreatedAt.Format(time.RFC3339),
		"source": br.Header.Source, "audit_seq": strconv.FormatUint(br.Header.AuditSeq, 10), "keys": strconv.Itoa(rep.Keys)}
	if replace {
		details["removed"] = strconv.Itoa(rep.Removed)
	}
	err = l.record(ctx, audit.Entry{Action: ActionRestore, Details: details}, nil)
	return rep, errors.Join(err, l.Close())
}

// requireNewChain refuses to restore as server id when the backup holds a
// chain of id that its log is not: that server's log is elsewhere (passman
// audit recover writes it from the store once restored).
func requireNewChain(ctx context.Context, b store.Backend, id string) error {
	head, err := store.ReadMeta(ctx, b, clusterHeadPrefix+id)
	if err != nil {
		return err
	}
	found, err := replicaBeyond(ctx, b, id, 0)
	if err != nil {
		return err
	}
	if head != nil || found {
		return fmt.Errorf("%w: the backup holds an audit chain of server %s but not its log: restore as the server that took the backup (or a new id), then recover %s's log with passman audit recover", secret.ErrPrecondition, id, id)
	}
	return nil
}

// clearStore removes every key under the target's prefix, in batches. It
// refuses, removing nothing, a prefix below which another store lives
// (etcd://.../passman over passman/prod/): its keys are under the prefix
// too, and a forced restore must not wipe a second deployment.
func clearStore(ctx context.Context, b store.Backend) (int, error) {
	if err := refuseNestedStore(ctx, b); err != nil {
		return 0, err
	}
	// The marker goes first: a clear that fails half-way leaves no store
	// that a server would open and serve.
	marked := false
	err := b.Update(ctx, func(tx store.Tx) error {
		_, err := tx.Get([]byte(storeMarker))
		if marked = err == nil; errors.Is(err, store.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return tx.Delete([]byte(storeMarker))
	})
	if err != nil {
		return 0, fmt.Errorf("clear the target store: %w", err)
	}
	total := 0
	if marked {
		total = 1
	}
	for {
		var keys [][]byte
		err := b.Update(ctx, func(tx store.Tx) error {
			keys = keys[:0]
			if err := tx.Scan(nil, nil, func(k, _ []byte) (bool, error) {
				keys = append(keys, bytes.Clone(k))
				return len(keys) < migrateBatch, nil
			}); err != nil {
				return err
			}
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("clear the target store: %w", err)
		}
		if len(keys) == 0 {
			return total, nil
		}
		total += len(keys)
	}
}

// storeMarker is the key every store holds (store.Open checks it).
const storeMarker = "m/store"

// refuseNestedStore fails when b's prefix holds another store's marker
// below it: a key ending in "/m/store", which no key of a store's own does
// (secret keys end in a NUL or a version, metadata names are passman's).
func refuseNestedStore(ctx context.Context, b store.Backend) error {
	var nested string
	err := b.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, _ []byte) (bool, error) {
			if len(k) > len(storeMarker) && bytes.HasSuffix(k, []byte("/"+storeMarker)) {
				nested = string(k[:len(k)-len(storeMarker)])
				return false, nil
			}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("check the target store: %w", err)
	}
	if nested != "" {
		return fmt.Errorf("%w: another store lives below the target prefix (at %q under it): a forced restore would remove it too; restore into a prefix that is not a parent of another deployment's", secret.ErrPrecondition, nested)
	}
	return nil
}

package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// ActionMigrate is the audit action of Migrate.
const ActionMigrate = "store.migrate"

// MigratedSuffix is appended to the bbolt file a migration moved out, so
// that no command serves the old copy by mistake.
const MigratedSuffix = ".migrated"

// migrateBatch bounds the keys, and migrateBatchBytes the bytes, one
// transaction of the copy carries: well under etcd's limits.
const (
	migrateBatch      = 512
	migrateBatchBytes = 2 << 20
)

// MigrateReport says what Migrate copied.
type MigrateReport struct {
	Keys         int    `json:"keys"`
	AuditEntries uint64 `json:"audit_entries"`
	ServerID     string `json:"server_id"`
	MovedDB      string `json:"moved_db"`
}

// Migrate copies the bbolt store in opts.Dir into the empty shared store
// to (an etcd cluster) and makes the store's audit chain the chain of
// server serverID there: its head and every entry so far go into the
// store, and a server started with this Dir and that id goes on with it.
// The bbolt file is then renamed with MigratedSuffix. It needs the store to
// itself, is an admin operation, and is audited before (in the old store)
// and after (in the new one). The copy keeps every key as it is: values
// stay sealed under the same master keys, which go nowhere.
func Migrate(ctx context.Context, opts Options, to store.Backend, serverID string) (MigrateReport, error) {
	rep := MigrateReport{ServerID: serverID}
	if opts.Backend != nil {
		return rep, fmt.Errorf("%w: migrate copies a bbolt store; this one is already shared", secret.ErrPrecondition)
	}
	copts := opts
	copts.Backend, copts.ServerID = to, serverID
	if err := checkCluster(copts); err != nil {
		return rep, err
	}
	held, release, err := exclusive(ctx, to, "migrate")
	if err != nil {
		return rep, err
	}
	defer release()
	if err := requireEmpty(held, to); err != nil {
		return rep, err
	}
	l, err := Open(ctx, opts)
	if err != nil {
		return rep, err
	}
	dec, err := l.authorize(ctx, op{action: ActionMigrate, perm: policy.ActionAdmin})
	if err != nil {
		return rep, errors.Join(err, l.Close())
	}
	err = l.record(ctx, audit.Entry{Action: ActionMigrate, Details: map[string]string{"phase": "start", "server_id": serverID}, Decision: dec}, nil)
	// Close records the head, which the copy carries over.
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, err
	}
	dbPath := filepath.Join(opts.Dir, DBFile)
	src, err := boltdb.Open(ctx, dbPath, boltdb.Options{ReadOnly: true})
	if err != nil {
		return rep, err
	}
	var marker []byte
	rep.Keys, marker, err = copyKeys(held, src, to, clusterHeadPrefix+serverID)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, fmt.Errorf("copy store: %w", err)
	}
	if rep.AuditEntries, err = copyAuditLog(held, filepath.Join(opts.Dir, AuditFile), to, serverID); err != nil {
		return rep, fmt.Errorf("copy audit log: %w", err)
	}
	if err := putMarker(held, to, marker); err != nil {
		return rep, err
	}
	if err := release(); err != nil {
		return rep, err
	}
	rep.Keys++
	rep.MovedDB = dbPath + MigratedSuffix
	if err := os.Rename(dbPath, rep.MovedDB); err != nil {
		return rep, fmt.Errorf("move the migrated database aside: %w", err)
	}
	if err := fsx.SyncDir(opts.Dir); err != nil {
		return rep, err
	}
	// The outcome goes into the chain as it now is: in the shared store.
	l2, err := Open(ctx, copts)
	if err != nil {
		return rep, fmt.Errorf("open the migrated store: %w", err)
	}
	details := map[string]string{"phase": "done", "keys": strconv.Itoa(rep.Keys), "server_id": serverID}
	err = l2.record(ctx, audit.Entry{Action: ActionMigrate, Details: details, Decision: dec}, nil)
	return rep, errors.Join(err, l2.Close())
}

// exclusiveStore is a shared store whose prefix one admin job at a time
// may write (store/etcd's DB): two restores or migrations into one prefix
// would interleave their keys into a store neither made.
type exclusiveStore interface {
	Exclusive(ctx context.Context, job string) (held context.Context, release func() error, err error)
}

// exclusive holds b's prefix for job when b is shared, and returns the
// context its writes must be made with (fenced on the hold) and an
// idempotent release. A single-node store's file is its process's alone
// already.
func exclusive(ctx context.Context, b store.Backend, job string) (context.Context, func() error, error) {
	x, ok := b.(exclusiveStore)
	if !ok {
		return ctx, func() error { return nil }, nil
	}
	held, release, err := x.Exclusive(ctx, job)
	if err != nil {
		return nil, nil, err
	}
	return held, sync.OnceValue(release), nil
}

// requireEmpty refuses a target that holds anything under its prefix: a
// migration never merges two stores.
func requireEmpty(ctx context.Context, b store.Backend) error {
	found := false
	err := b.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, _ []byte) (bool, error) {
			found = true
			return false, nil
		})
	})
	if err != nil {
		return fmt.Errorf("check the target store: %w", err)
	}
	if found {
		return fmt.Errorf("%w: the target already holds a store (or other keys under its prefix); migrate only into an empty prefix", secret.ErrPrecondition)
	}
	return nil
}

// copyKeys copies every key of src into to, in batches, the bbolt store's
// audit head going to headName, except the store's marker, which it
// returns for the caller to write once everything else is in: a copy that
// fails half-way leaves no store that a server would open and serve.
func copyKeys(ctx context.Context, src, to store.Backend, headName string) (int, []byte, error) {
	oldHead := string(store.MetaKey(auditHeadMeta))
	var cursor, marker []byte
	total := 0
	for {
		type kv struct{ k, v []byte }
		var batch []kv
		var last []byte
		size := 0
		err := src.View(ctx, func(tx store.Tx) error {
			return tx.Scan(nil, cursor, func(k, v []byte) (bool, error) {
				if cursor != nil && bytes.Equal(k, cursor) {
					return true, nil
				}
				last = bytes.Clone(k)
				if !isStoreKey(k) {
					return false, fmt.Errorf("%w: the source holds a key outside a store's keyspace (%.64q): it would land beside the store, not in it", secret.ErrCorrupt, k)
				}
				if string(k) == storeMarker {
					marker = bytes.Clone(v)
					return true, nil
				}
				batch = append(batch, kv{last, bytes.Clone(v)})
				size += len(k) + len(v)
				return len(batch) < migrateBatch && size < migrateBatchBytes, nil
			})
		})
		if err != nil {
			return total, nil, err
		}
		if last == nil {
			if marker == nil {
				return total, nil, fmt.Errorf("%w: the source holds no store (no %s key)", secret.ErrCorrupt, storeMarker)
			}
			return total, marker, nil
		}
		cursor = last
		if len(batch) == 0 {
			continue
		}
		err = to.Update(ctx, func(tx store.Tx) error {
			for _, e := range batch {
				k := e.k
				if string(k) == oldHead {
					k = store.MetaKey(headName)
				}
				if err := tx.Put(k, e.v); err != nil {
					return fmt.Errorf("%q: %w", k, err)
				}
			}
			return nil
		})
		if err != nil {
			return total, nil, err
		}
		total += len(batch)
	}
}

// isStoreKey says whether k is in a store's keyspace: its secrets (s/),
// fingerprints (f/) and metadata (m/). A key elsewhere, copied under an
// etcd prefix, could land in another deployment's nested below it.
func isStoreKey(k []byte) bool {
	for _, p := range []string{"s/", "f/", "m/"} {
		if bytes.HasPrefix(k, []byte(p)) {
			return true
		}
	}
	return false
}

// putMarker writes the store's marker copyKeys held back: the last write
// of a copy, which makes the target a store.
func putMarker(ctx context.Context, to store.Backend, marker []byte) error {
	if err := to.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte(storeMarker), marker) }); err != nil {
		return fmt.Errorf("write the store marker: %w", err)
	}
	return nil
}

// copyAuditLog writes the log's entries as server id's replicated chain.
func copyAuditLog(ctx context.Context, path string, to store.Backend, id string) (uint64, error) {
	var batch []audit.Entry
	var n uint64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := to.Update(ctx, func(tx store.Tx) error {
			for i := range batch {
				line, err := json.Marshal(&batch[i])
				if err != nil {
					return err
				}
				if err := store.PutMeta(tx, replicaName(id, batch[i].Seq), append(line, '\n')); err != nil {
					return err
				}
			}
			return store.PutMeta(tx, clusterReplicaPrefix+id, []byte(strconv.FormatUint(batch[len(batch)-1].Seq, 10)))
		})
		n += uint64(len(batch))
		batch = batch[:0]
		return err
	}
	err := audit.Read(ctx, path, audit.Filter{}, func(e audit.Entry) error {
		batch = append(batch, e)
		if len(batch) == replicaBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

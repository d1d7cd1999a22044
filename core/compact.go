package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/internal/fsx"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// ActionCompact is the audit action of Compact.
const ActionCompact = "store.compact"

// CompactReport gives the database's size before and after compaction.
type CompactReport struct {
	Before int64 `json:"before_bytes"`
	After  int64 `json:"after_bytes"`
}

// Compact rewrites the store's database with only its live data. Destroy
// removes a version's ciphertext from the keyspace, but the database never
// clears freed pages, so the bytes stay in the file until a page is reused;
// after Compact they are gone from it. It needs the store to itself (no
// server or other command may have it open), is an admin operation, and is
// audited before and after.
func Compact(ctx context.Context, opts Options) (CompactReport, error) {
	var rep CompactReport
	if opts.Backend != nil {
		return rep, fmt.Errorf("%w: a shared (etcd) store is compacted by etcd (its auto-compaction, then etcdctl defrag), not by passman", secret.ErrPrecondition)
	}
	dbPath := filepath.Join(opts.Dir, DBFile)
	tmp := dbPath + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	l, err := Open(ctx, opts)
	if err != nil {
		return rep, err
	}
	if st, err := os.Stat(dbPath); err == nil {
		rep.Before = st.Size()
	}
	dec, err := l.authorize(ctx, op{action: ActionCompact, perm: policy.ActionAdmin})
	if err != nil {
		return rep, errors.Join(err, l.Close())
	}
	// Record the start, and the head, in the database being copied.
	err = l.record(ctx, audit.Entry{Action: ActionCompact, Details: map[string]string{"phase": "start"}, Decision: dec}, nil)
	if err == nil {
		err = l.checkpoint(ctx)
	}
	if err == nil {
		err = l.bolt.CompactTo(ctx, tmp)
	}
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.Rename(tmp, dbPath); err == nil {
			err = fsx.SyncDir(opts.Dir)
		}
	}
	// The outcome goes into the log of the store as it now is.
	l2, oerr := Open(ctx, opts)
	if oerr != nil {
		return rep, errors.Join(err, oerr)
	}
	if st, serr := os.Stat(dbPath); serr == nil {
		rep.After = st.Size()
	}
	details := map[string]string{"before_bytes": strconv.FormatInt(rep.Before, 10), "after_bytes": strconv.FormatInt(rep.After, 10)}
	err = l2.read(ctx, audit.Entry{Action: ActionCompact, Details: details, Decision: dec}, err)
	return rep, errors.Join(err, l2.Close())
}

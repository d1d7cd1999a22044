package core

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// flakyBackend fails every third write transaction, as a cluster that
// loses its leader now and then does.
type flakyBackend struct {
	store.Backend
	n atomic.Int64
}

func (f *flakyBackend) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.n.Add(1)%3 == 0 {
		return errors.New("flaky: no leader")
	}
	return f.Backend.Update(ctx, fn)
}

// Concurrent appends over a backend whose writes fail now and then: every
// entry ends up replicated, in a gap-free chain, and nobody waits for ever.
func TestReplicationSurvivesFailedWrites(t *testing.T) {
	ctx := context.Background()
	db, alog := replicaStore(t)
	b := &flakyBackend{Backend: db}
	r := newReplicatedLog(alog, b, "s1", false)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				e := audit.Entry{Action: "secret.get", Actor: "t", Outcome: audit.OutcomeSuccess, RequestID: "r", Path: fmt.Sprintf("p/%d/%d", g, i)}
				var err error
				if i%2 == 0 {
					_, err = r.Append(ctx, e)
				} else if _, err = r.AppendDeferred(ctx, e); err == nil {
					err = r.Sync()
				}
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if alog.Head().Seq != 320 {
		t.Fatalf("local log holds %d entries, want 320", alog.Head().Seq)
	}
	// What failed is still pending or due again; a last Sync (with the
	// backend healthy) writes it.
	b.n.Store(1 << 40)
	for range 3 {
		if err := r.Sync(); err == nil {
			break
		}
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if r.done != alog.Head().Seq {
		t.Fatalf("replicated up to %d of %d", r.done, alog.Head().Seq)
	}
	rep, err := audit.VerifyReader(ctx, replicaReader(ctx, db, "s1"), alog.Head())
	if err != nil || !rep.OK || rep.Entries != 320 {
		t.Fatalf("replica: %+v, %v", rep, err)
	}
	if failed.Load() == 0 {
		t.Fatal("no append saw a failed write: the test tested nothing")
	}
	t.Logf("%d appends failed (and were retried by later ones)", failed.Load())
}

// uncertainTx is a transaction whose failed commit may or may not have
// been applied.
type uncertainTx struct {
	store.Tx
	uncertain bool
}

func (u *uncertainTx) MayHaveCommitted() bool { return u.uncertain }

// A change's reserved entries are dropped when its commit surely failed,
// and kept (and replicated) when its outcome is unknown: the audit never
// loses the record of a change that may have happened.
func TestResolveKeepsEntriesOfUncertainCommit(t *testing.T) {
	ctx := context.Background()
	db, alog := replicaStore(t)
	r := newReplicatedLog(alog, db, "s1", false)
	attempt := func(uncertain bool) {
		t.Helper()
		res, err := alog.Reserve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := res.Seal(audit.Entry{Action: "secret.put", Actor: "t", Outcome: audit.OutcomeSuccess, RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
		r.resolve(&uncertainTx{uncertain: uncertain}, res, false)
	}
	attempt(false)
	if h := alog.Head().Seq; h != 0 {
		t.Fatalf("a failed commit left %d entries", h)
	}
	attempt(true)
	if h := alog.Head().Seq; h != 1 {
		t.Fatalf("after a commit of unknown outcome the log holds %d entries, want 1", h)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if v, err := store.ReadMeta(ctx, db, replicaName("s1", 1)); err != nil || v == nil {
		t.Fatalf("the kept entry was not replicated: %q, %v", v, err)
	}
}

// replicaStore opens a bbolt store and an audit log in a new directory,
// both closed (the log first) when the test ends.
func replicaStore(t *testing.T) (*boltdb.DB, *audit.Log) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := boltdb.Open(ctx, filepath.Join(dir, "db"), boltdb.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	alog, err := audit.Open(ctx, filepath.Join(dir, "audit.log"), audit.Options{Sync: audit.SyncWrite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	return db, alog
}

package boltdb

import (
	"context"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/internal/groupcommit"
)

// maxBatch bounds one group commit so that a burst of callers cannot build a
// transaction of unbounded size; it matches bbolt's DefaultMaxBatchSize.
const maxBatch = 1000

// Batch is like Update but may run fn in one transaction together with
// concurrent Batch callers, so that they share one commit and one fsync.
// This is worth it only with several concurrent writers.
//
// fn may be called more than once: when any fn in a shared transaction fails
// (returns an error or panics), the whole transaction is rolled back, the
// others are re-run together, and the failed one is re-run alone as with
// Update, whose result Batch then returns. So fn must keep all its effects
// inside the transaction, and it sees the writes of the calls batched before
// it. A commit error is returned to every caller in the batch.
//
// Batch groups commits itself instead of using bbolt's DB.Batch, which runs
// the transaction (including its commit) on a goroutine of its own where a
// panic on a damaged page would kill the process, and which waits up to 10ms
// to fill a batch. Here a commit starts at once when none is running, and
// callers arriving meanwhile share the next one. ctx is checked before
// queueing and before a solo re-run, but a queued fn may commit whatever ctx
// does meanwhile, as bbolt is not cancellable.
func (d *DB) Batch(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.readOnly {
		return d.boltError(berrors.ErrDatabaseReadOnly)
	}
	c := groupcommit.NewCall(fn)
	if !d.batch.Add(c) {
		return d.errClosed()
	}
	if err := <-c.Done; err != groupcommit.ErrSolo {
		return err
	}
	return d.Update(ctx, fn)
}

// commit runs calls in one transaction, dropping failed calls (to be re-run
// by their callers) and retrying the rest until one commit is attempted. It
// goes through run, so a bbolt panic here is an error, not a crash.
func (d *DB) commit(calls []*groupcommit.Call) {
	for len(calls) > 0 {
		failed := -1
		err := d.run(context.Background(), true, func(t store.Tx) error {
			if failed = groupcommit.RunAll(calls, t); failed >= 0 {
				return groupcommit.ErrSolo
			}
			return nil
		})
		if failed >= 0 {
			calls = groupcommit.Drop(calls, failed)
			continue
		}
		groupcommit.Finish(calls, err)
		return
	}
}

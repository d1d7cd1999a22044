package boltdb

import (
	"context"
	"errors"
	"slices"
	"sync"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/passman-dev/passman/store"
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
	c := &call{fn: fn, done: make(chan error, 1)}
	if !d.batch.add(d, c) {
		return d.errClosed()
	}
	if err := <-c.done; err != errSolo {
		return err
	}
	return d.Update(ctx, fn)
}

// errSolo tells a Batch caller that its fn failed in a shared transaction and
// must be re-run alone; callers never see it.
var errSolo = errors.New("boltdb: re-run batch call alone")

type call struct {
	fn   func(store.Tx) error
	done chan error // buffered, so the committer never blocks
}

// batcher queues Batch calls for a single committer goroutine, which exists
// only while there is work.
type batcher struct {
	mu      sync.Mutex
	pending []*call
	running bool
	closed  bool
	wg      sync.WaitGroup // the committer, for close
}

func (b *batcher) add(d *DB, c *call) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.pending = append(b.pending, c)
	if !b.running {
		b.running = true
		b.wg.Add(1)
		go d.commitLoop()
	}
	return true
}

// take removes up to maxBatch calls from the queue, or marks the committer
// stopped and returns nil when the queue is empty.
func (b *batcher) take() []*call {
	b.mu.Lock()
	defer b.mu.Unlock()
	calls := b.pending
	switch {
	case len(calls) == 0:
		b.running = false
		return nil
	case len(calls) > maxBatch:
		b.pending = slices.Clone(calls[maxBatch:])
		return calls[:maxBatch]
	}
	b.pending = nil
	return calls
}

// close refuses new calls and waits until the queued ones are committed.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

func (d *DB) commitLoop() {
	defer d.batch.wg.Done()
	for calls := d.batch.take(); calls != nil; calls = d.batch.take() {
		d.commit(calls)
	}
}

// commit runs calls in one transaction, dropping failed calls (to be re-run
// by their callers) and retrying the rest until one commit is attempted. It
// goes through run, so a bbolt panic here is an error, not a crash.
func (d *DB) commit(calls []*call) {
	for len(calls) > 0 {
		failed := -1
		err := d.run(context.Background(), true, func(t store.Tx) error {
			for i, c := range calls {
				if err := callSafely(c.fn, t); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].done <- errSolo
			calls = slices.Delete(calls, failed, failed+1)
			continue
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

// callSafely runs one Batch fn, turning its panic into a failure so that it
// is re-raised in the caller's own goroutine by the solo re-run, instead of
// killing the process from the committer goroutine.
func callSafely(fn func(store.Tx) error, t store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errSolo
		}
	}()
	return fn(t)
}

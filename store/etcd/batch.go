package etcd

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/passman-dev/passman/store"
)

// maxBatch bounds one group commit, as the bbolt backend's does.
const maxBatch = 256

// commitTimeout bounds one commit attempt of a batch, whose callers may
// have stopped waiting: a cluster without quorum must not pile up batches.
const commitTimeout = 30 * time.Second

// Batch is like Update but runs fn in one transaction together with
// concurrent Batch callers, which then share one etcd Txn: one round trip
// and one raft entry for all of them, and no conflicts among them over keys
// they all write (a server's audit chain head). fn may run more than once:
// when the shared Txn conflicts all functions run again on a new snapshot;
// when one fails (error or panic) it is re-run alone as with Update, whose
// result Batch returns, and the others go on together. A commit error goes
// to every caller of the batch. A caller whose ctx ends stops waiting, but
// its fn may still commit.
func (d *DB) Batch(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{fn: fn, done: make(chan error, 1)}
	if !d.batch.add(d, c) {
		return ErrClosed
	}
	select {
	case err := <-c.done:
		if err != errSolo {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return d.Update(ctx, fn)
}

var errSolo = errors.New("etcd store: re-run batch call alone")

type call struct {
	fn   func(store.Tx) error
	done chan error // buffered: the committer never blocks
}

type batcher struct {
	mu      sync.Mutex
	pending []*call
	running bool
	closed  bool
	wg      sync.WaitGroup
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

func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

func (d *DB) commitLoop() {
	defer d.batch.wg.Done()
	for calls := d.batch.take(); calls != nil; calls = d.batch.take() {
		d.commitBatch(calls)
	}
}

// commitBatch runs calls in one transaction until it commits, dropping
// failed calls (their callers re-run them alone).
func (d *DB) commitBatch(calls []*call) {
	backoff := time.Millisecond
	for len(calls) > 0 {
		ok, failed, err := d.attemptBatch(calls)
		switch {
		case failed >= 0:
			calls[failed].done <- errSolo
			calls = slices.Delete(calls, failed, failed+1)
			continue
		case err == nil && !ok, errors.Is(err, ErrCompacted):
			conflicts.Add(1)
			time.Sleep(backoff/2 + rand.N(backoff))
			backoff = min(2*backoff, 50*time.Millisecond)
			continue
		}
		if fe, isFn := err.(*fnError); isFn {
			err = fe.err
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

func (d *DB) attemptBatch(calls []*call) (ok bool, failed int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	t := d.newTx(ctx, true)
	defer t.end()
	for i, c := range calls {
		if err := callSafely(c.fn, t); err != nil {
			return false, i, nil
		}
	}
	ok, err = d.commit(ctx, t)
	return ok, -1, err
}

// callSafely turns a panic of fn into a failure, so that it is raised again
// in the caller's goroutine by the solo re-run rather than killing the
// process from the committer's.
func callSafely(fn func(store.Tx) error, t store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errSolo
		}
	}()
	return fn(t)
}

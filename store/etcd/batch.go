package etcd

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/internal/groupcommit"
)

// maxBatch bounds one group commit, as the bbolt backend's does.
const maxBatch = 256

// gatherWait bounds how long a group waits for the callers of the last
// one to come back (groupcommit's Gather): under a steady load a Txn costs
// the cluster far more CPU than this wait costs a caller.
const gatherWait = 2 * time.Millisecond

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
// its fn may still commit. A call under a store.Fence runs alone, as
// Update.
func (d *DB) Batch(ctx context.Context, fn func(store.Tx) error) error {
	return d.group(ctx, &d.batch, fn)
}

// ReadBatch is Batch for transactions that mostly read and write only
// their own records (store.GetRecorded's: a read and its audit entry). Its
// group's snapshot, as Batch's, is the read cache's revision (cachedRev),
// so the reads are answered from memory without a barrier: the commit's
// compares check every key read, so the group commits only if what it
// read is still current, and its commit, a write through the leader, is
// the reads' linearization point. A group that loses runs again
// at once at a linearizable revision, and then commits without comparing
// what it read (groupKind.reads): fn must write only keys that no other
// transaction writes, its caller's own records.
func (d *DB) ReadBatch(ctx context.Context, fn func(store.Tx) error) error {
	readCalls.Add(1)
	return d.group(ctx, &d.reads, fn)
}

// readCalls counts ReadBatch calls, for tests and benchmarks.
var readCalls atomic.Int64

// ReadBatchCalls returns how many reads in this process went through
// ReadBatch.
func ReadBatchCalls() int64 { return readCalls.Load() }

func (d *DB) group(ctx context.Context, q *groupcommit.Queue, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if store.FenceOf(ctx) != nil {
		return d.Update(ctx, fn)
	}
	c := groupcommit.NewCall(fn)
	if !q.Add(c) {
		return ErrClosed
	}
	select {
	case err := <-c.Done:
		if err != groupcommit.ErrSolo {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return d.update(ctx, fn, q == &d.reads)
}

// groupKind is how a group's transaction runs: Batch's or ReadBatch's.
type groupKind struct {
	// snapshot is the first attempt's revision.
	snapshot func() int64
	// concurrent runs the calls' functions beside each other, for reads
	// that are round trips to etcd. ReadBatch's read the cache, in
	// memory, where a goroutine per call costs more than it saves.
	concurrent bool
	// reads: ReadBatch's. A group that lost runs again at once, and at
	// a barrier's revision commits without comparing what it read: its
	// reads are linearizable there by themselves, and its writes are its
	// callers' own records, which no other transaction writes. So a key
	// rewritten without pause delays a read group by one attempt, never
	// starves it.
	reads bool
}

// commitBatch runs calls in one transaction until it commits, dropping
// failed calls (their callers re-run them alone).
func (d *DB) commitBatch(calls []*groupcommit.Call, k groupKind) {
	backoff := time.Millisecond
	fresh := false
	for len(calls) > 0 {
		ok, failed, err := d.attemptBatch(calls, fresh, k)
		switch {
		case failed >= 0:
			calls = groupcommit.Drop(calls, failed)
			continue
		case err == nil && !ok, errors.Is(err, ErrCompacted):
			fresh = true
			conflicts.Add(1)
			if !k.reads {
				time.Sleep(backoff/2 + rand.N(backoff))
				backoff = min(2*backoff, 50*time.Millisecond)
			}
			continue
		}
		if fe, isFn := err.(*fnError); isFn {
			err = fe.err
		}
		groupcommit.Finish(calls, err)
		return
	}
}

// attemptBatch runs calls in one transaction and commits it. Its snapshot
// costs no round trip: the revision the read caches reached (cachedRev),
// which holds this server's own writes to them. A write it does not hold
// yet fails the commit's compares and the batch runs again (fresh) at a
// linearizable revision. A call whose function
// fails is dropped and re-run alone (update), at a linearizable revision,
// so no caller is answered from a stale snapshot; and a batch that writes
// nothing still has its reads checked (commit).
func (d *DB) attemptBatch(calls []*groupcommit.Call, fresh bool, k groupKind) (ok bool, failed int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	t := d.newTx(ctx, true)
	defer t.end()
	rev := k.snapshot()
	if fresh || rev == 0 {
		if rev, err = d.barrier.wait(ctx, d.issueBarrier); err != nil {
			return false, -1, d.etcdError("read barrier", err)
		}
		t.blind = k.reads
	} else {
		t.unverified = true
	}
	t.rev = rev
	if len(calls) == 1 || !k.concurrent {
		failed = groupcommit.RunAll(calls, t)
	} else {
		failed = d.runConcurrently(calls, t)
	}
	if failed >= 0 {
		return false, failed, nil
	}
	ok, err = d.commit(ctx, t)
	return ok, -1, err
}

package etcd

import (
	"slices"
	"sync"

	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/internal/groupcommit"
)

// A batch's functions run concurrently, each in a transaction of its own
// (a callTx) at the batch's snapshot revision, because each read is a round
// trip to etcd: one after another, a batch of sixteen writes spent most of
// its time waiting for their reads. They are then merged into the batch's
// transaction in call order, which is the outcome of running them one
// after another unless a function read a key (or scanned a range) that an
// earlier one wrote, or failed: that one runs again, on the merged
// transaction, as it would have in order. Callbacks a function registered (BeforeCommit,
// AfterCommit) move to the batch's transaction, and from the merge on the
// callTx forwards everything to it, so that callbacks see and write the
// merged state.

// callTx is one call's transaction in a concurrent batch.
type callTx struct {
	own  *tx
	root *tx
	// merged: the call's work is in root; every method goes there.
	merged bool
}

var _ store.Tx = (*callTx)(nil)

func (c *callTx) cur() *tx {
	if c.merged {
		return c.root
	}
	return c.own
}

func (c *callTx) Get(key []byte) ([]byte, error) { return c.cur().Get(key) }
func (c *callTx) Put(key, value []byte) error    { return c.cur().Put(key, value) }
func (c *callTx) Create(key, value []byte) error { return c.cur().Create(key, value) }
func (c *callTx) Delete(key []byte) error        { return c.cur().Delete(key) }
func (c *callTx) Scan(prefix, start []byte, fn func(key, value []byte) (bool, error)) error {
	return c.cur().Scan(prefix, start, fn)
}
func (c *callTx) BeforeCommit(key string, fn func() error) { c.cur().BeforeCommit(key, fn) }
func (c *callTx) AfterCommit(fn func(committed bool))      { c.cur().AfterCommit(fn) }
func (c *callTx) Revision() int64                          { return c.root.rev }

// Root is the batch's transaction, which commits every call's work: what a
// callback keyed by transaction must be keyed by.
func (c *callTx) Root() store.Tx { return c.root }

// runConcurrently runs calls' functions beside each other on t's snapshot
// (t.rev is fixed) and merges them into t. It returns the index of the
// first call that failed, or -1.
func (d *DB) runConcurrently(calls []*groupcommit.Call, t *tx) int {
	cts := make([]*callTx, len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		own := d.newTx(t.ctx, true)
		own.rev = t.rev
		cts[i] = &callTx{own: own, root: t}
		wg.Go(func() { errs[i] = groupcommit.Run(c.Fn, cts[i]) })
	}
	wg.Wait()
	for i, ct := range cts {
		if errs[i] != nil || t.overlaps(ct.own) {
			// It read what an earlier call wrote, or failed, perhaps for
			// not seeing it: run it again in order.
			ct.own.end()
			if err := groupcommit.Run(calls[i].Fn, &callTx{root: t, merged: true}); err != nil {
				return i
			}
			continue
		}
		t.absorb(ct.own)
		ct.merged = true
	}
	return -1
}

// overlaps reports whether o read a key, or scanned a range, that t wrote.
func (t *tx) overlaps(o *tx) bool {
	for k := range o.reads {
		if _, ok := t.writes[k]; ok {
			return true
		}
	}
	for _, r := range o.ranges {
		i, _ := slices.BinarySearch(t.order, r[0])
		if i < len(t.order) && t.order[i] < r[1] {
			return true
		}
	}
	return false
}

// absorb merges o, a transaction at t's revision that ran beside it, into
// t, as if o's function had run in t.
func (t *tx) absorb(o *tx) {
	for k, e := range o.reads {
		if _, ok := t.reads[k]; !ok {
			t.reads[k] = e
		}
	}
	t.ranges = append(t.ranges, o.ranges...)
	for _, k := range o.order {
		t.buffer(k, o.writes[k])
	}
	for k := range o.creates {
		t.markCreate(k)
	}
	for _, h := range o.beforeCommit {
		t.BeforeCommit(h.key, h.fn)
	}
	t.afterCommit = append(t.afterCommit, o.afterCommit...)
	if o.err != nil {
		t.fail(o.err)
	}
	o.end()
}

// Package groupcommit queues the functions of concurrent Batch callers for
// one committer goroutine, which runs them together in a transaction of the
// backend's own making. The queue and its failure protocol are shared by the
// store backends; how a group is committed (and retried) is theirs.
package groupcommit

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/passman-dev/passman/store"
)

// ErrSolo tells a Batch caller that its fn failed in a shared transaction
// and must be re-run alone; callers of Batch never see it.
var ErrSolo = errors.New("store: re-run batch call alone")

// Call is one Batch caller's function waiting for a group commit.
type Call struct {
	Fn   func(store.Tx) error
	Done chan error // buffered, so the committer never blocks
	q    *Queue     // the queue it was added to
}

// NewCall returns a Call for fn, ready to be added to a Queue.
func NewCall(fn func(store.Tx) error) *Call {
	return &Call{Fn: fn, Done: make(chan error, 1)}
}

// Queue holds Batch calls for a single committer goroutine, which exists
// only while there is work. Init it before the first Add.
type Queue struct {
	max    int
	commit func([]*Call)
	// gather bounds how long the committer waits for expect calls (see
	// Gather); expect is the last group's size plus the calls that queued
	// while it committed, counted when its callers were answered (queued,
	// -1 before): a caller quick to come back is not counted twice.
	gather time.Duration
	expect int
	queued int
	// arrived, when set, is closed by the next Add.
	arrived chan struct{}

	mu      sync.Mutex
	pending []*Call
	running bool
	closed  bool
	wg      sync.WaitGroup // the committer, for Close
}

// Init sets the most calls one group may hold, which bounds the size of its
// transaction, and the function that commits a group. commit must send one
// result to every call's Done.
func (q *Queue) Init(max int, commit func([]*Call)) {
	q.max, q.commit = max, commit
}

// Gather makes the committer wait, up to max, before it takes a group
// smaller than the previous one together with the calls that queued while
// it committed. Without it, a steady set of callers that each wait for
// their commit splits into two groups that take turns: one commits while
// the other queues, and each comes back just after the other was taken.
// When a commit costs more than the wait (an etcd Txn: a raft round and a
// WAL fsync on every member), one group of all of them halves the commits
// per call. The wait ends as soon as they are all back, and a caller that
// left costs the next group max once: the expectation follows the group
// actually taken.
func (q *Queue) Gather(max time.Duration) { q.gather = max }

// Add queues c, starting the committer if none runs. It reports false once
// the queue is closed.
func (q *Queue) Add(c *Call) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	c.q = q
	q.pending = append(q.pending, c)
	if q.arrived != nil && len(q.pending) >= q.expect {
		close(q.arrived)
		q.arrived = nil
	}
	if !q.running {
		q.running = true
		q.wg.Add(1)
		go q.commitLoop()
	}
	return true
}

// take removes up to max calls from the queue, or marks the committer
// stopped and returns nil when the queue is empty.
func (q *Queue) take() []*Call {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.gatherLocked()
	calls := q.pending
	switch {
	case len(calls) == 0:
		q.running = false
		return nil
	case len(calls) > q.max:
		q.pending = slices.Clone(calls[q.max:])
		return calls[:q.max]
	}
	q.pending = nil
	return calls
}

// Close refuses new calls and waits until the queued ones are committed.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wg.Wait()
}

func (q *Queue) commitLoop() {
	defer q.wg.Done()
	for calls := q.take(); calls != nil; calls = q.take() {
		n := len(calls)
		q.mu.Lock()
		q.queued = -1
		q.mu.Unlock()
		q.commit(calls)
		q.mu.Lock()
		if q.queued < 0 {
			q.queued = len(q.pending)
		}
		q.expect = min(n+q.queued, q.max)
		q.mu.Unlock()
	}
}

// gatherLocked waits, with q.mu held (and released meanwhile), until
// expect calls are queued or the gather time is over; an empty queue is
// not waited for: the committer stops.
func (q *Queue) gatherLocked() {
	if q.gather <= 0 || len(q.pending) == 0 || len(q.pending) >= q.expect || q.closed {
		return
	}
	timer := time.NewTimer(q.gather)
	defer timer.Stop()
	for len(q.pending) < q.expect {
		arrived := make(chan struct{})
		q.arrived = arrived
		q.mu.Unlock()
		select {
		case <-arrived:
			q.mu.Lock()
		case <-timer.C:
			q.mu.Lock()
			q.arrived = nil
			return
		}
	}
}

// RunAll runs each call's Fn in t, in order, and returns the index of the
// first that fails (error or panic), or -1. The failed call is to be
// dropped from the group with ErrSolo and the transaction rolled back.
func RunAll(calls []*Call, t store.Tx) int {
	for i, c := range calls {
		if err := callSafely(c.Fn, t); err != nil {
			return i
		}
	}
	return -1
}

// Run runs one call's Fn in t as RunAll does: a panic is a failure, to be
// raised again by the call's solo re-run.
func Run(fn func(store.Tx) error, t store.Tx) error { return callSafely(fn, t) }

// callSafely turns a panic of fn into a failure, so that it is raised again
// in the caller's own goroutine by the solo re-run rather than killing the
// process from the committer's.
func callSafely(fn func(store.Tx) error, t store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = ErrSolo
		}
	}()
	return fn(t)
}

// Drop tells the call at i to re-run alone and removes it from calls.
func Drop(calls []*Call, i int) []*Call {
	calls[i].Done <- ErrSolo
	return slices.Delete(calls, i, i+1)
}

// Finish sends err to every call of a group.
func Finish(calls []*Call, err error) {
	if len(calls) > 0 && calls[0].q != nil {
		q := calls[0].q
		q.mu.Lock()
		q.queued = len(q.pending)
		q.mu.Unlock()
	}
	for _, c := range calls {
		c.Done <- err
	}
}

package etcd

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A read that arrives while a round is in flight never gets that round's
// revision (issued before it began), but the next one; reads that arrive
// together share one round.
func TestBarrierRoundsStartAfterTheirReads(t *testing.T) {
	ctx := context.Background()
	var b barrier
	issue, issued, started, release := gatedIssue()
	first := make(chan int64)
	go func() {
		rev, _ := b.wait(ctx, issue)
		first <- rev
	}()
	<-started // round 1 is in flight
	const late = 8
	revs := make(chan int64, late)
	var wg sync.WaitGroup
	for range late {
		wg.Go(func() {
			rev, err := b.wait(ctx, issue)
			if err != nil {
				t.Error(err)
			}
			revs <- rev
		})
	}
	// Let the late readers join before round 1 ends.
	time.Sleep(50 * time.Millisecond)
	release <- struct{}{}
	if rev := <-first; rev != 1 {
		t.Fatalf("first read got round %d, want 1", rev)
	}
	<-started
	release <- struct{}{}
	wg.Wait()
	close(revs)
	for rev := range revs {
		if rev != 2 {
			t.Fatalf("a read that arrived during round 1 got round %d, want 2", rev)
		}
	}
	if n := issued.Load(); n != 2 {
		t.Fatalf("%d rounds for 1+%d reads, want 2", n, late)
	}
	// The runner stops when nobody waits and starts again for the next.
	go func() { <-started; release <- struct{}{} }()
	if rev, err := b.wait(ctx, issue); err != nil || rev != 3 {
		t.Fatalf("read after a pause: round %d, %v", rev, err)
	}
}

// A reader whose context ends stops waiting.
func TestBarrierWaitHonoursContext(t *testing.T) {
	var b barrier
	block := make(chan struct{})
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.wait(ctx, func() (int64, error) { <-block; return 1, nil }); err == nil {
		t.Fatal("wait outlived its context")
	}
}

// A commit sent while reads wait for the next round serves that round with
// its own revision: the round's request is never issued.
func TestCommitServesWaitingRound(t *testing.T) {
	ctx := context.Background()
	var b barrier
	issue, issued, started, release := gatedIssue()
	go b.wait(ctx, issue)
	<-started // round 1 is in flight
	late := make(chan int64)
	go func() {
		rev, _ := b.wait(ctx, issue)
		late <- rev
	}()
	var r *round
	for r == nil {
		time.Sleep(time.Millisecond)
		if r = b.claim(); r == nil {
			b.committed()
		}
	}
	var d DB
	d.finish(r, 42, nil)
	b.committed()
	if rev := <-late; rev != 42 {
		t.Fatalf("the waiting read got revision %d, want the commit's 42", rev)
	}
	close(release)
	time.Sleep(20 * time.Millisecond)
	if n := issued.Load(); n != 1 {
		t.Fatalf("%d rounds issued, want 1: the claimed round went out too", n)
	}
	if r := b.claim(); r != nil {
		t.Fatal("a round waits with no reader")
	}
}

// A round that finds a commit in flight waits for it to end and lets the
// next commit serve it; one that waits on a commit that never ends goes
// out after maxDefer.
func TestRoundWaitsForNextCommit(t *testing.T) {
	ctx := context.Background()
	var b barrier
	var issued atomic.Int64
	issue := func() (int64, error) { return 1000 + issued.Add(1), nil }
	var d DB
	first := b.claim() // a commit in flight
	if first != nil {
		t.Fatal("claimed a round nobody waits for")
	}
	got := make(chan int64)
	go func() {
		rev, _ := b.wait(ctx, issue)
		got <- rev
	}()
	time.Sleep(2 * time.Millisecond)
	b.committed()
	// The next commit, right after.
	r := b.claim()
	for r == nil && issued.Load() == 0 {
		b.committed()
		r = b.claim()
	}
	if r == nil {
		t.Fatal("the round went out instead of waiting for the next commit")
	}
	d.finish(r, 7, nil)
	b.committed()
	if rev := <-got; rev != 7 {
		t.Fatalf("read got %d, want the commit's 7", rev)
	}
	if n := issued.Load(); n != 0 {
		t.Fatalf("%d rounds issued, want 0", n)
	}

	b.claim() // a commit that does not end
	start := time.Now()
	if rev, _ := b.wait(ctx, issue); rev != 1001 {
		t.Fatalf("read got %d, want its own round's 1001", rev)
	}
	if d := time.Since(start); d < maxDefer {
		t.Fatalf("round issued after %v, before maxDefer", d)
	}
}

// A round claimed by a commit that does not end (a large Txn, a caller's
// context without deadline) goes out on its own after maxDefer: its
// readers wait no longer than they would for a round of their own.
func TestClaimedRoundIsBounded(t *testing.T) {
	ctx := context.Background()
	var b barrier
	release := make(chan struct{})
	var calls atomic.Int64
	issue := func() (int64, error) {
		if calls.Add(1) == 1 {
			<-release
		}
		return 99, nil
	}
	go b.wait(ctx, issue) // round 1 goes out and hangs
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	got := make(chan int64, 1)
	go func() {
		rev, _ := b.wait(ctx, issue)
		got <- rev
	}()
	// Round 2 waits behind round 1; a commit claims it and never ends.
	var r *round
	for r == nil {
		time.Sleep(time.Millisecond)
		b.mu.Lock()
		waiting := b.next != nil
		b.mu.Unlock()
		if waiting {
			r = b.claim()
		}
	}
	close(release)
	select {
	case rev := <-got:
		if rev != 99 {
			t.Fatalf("read got %d, want its own round's 99", rev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a claimed round waited for its commit without bound")
	}
	var d DB
	d.finish(r, 0, errors.New("abandoned"))
	b.committed()
}

// gatedIssue is a barrier's issue function whose rounds return 1, 2, …:
// each says on started that it is in flight, and waits for release.
func gatedIssue() (issue func() (int64, error), issued *atomic.Int64, started, release chan struct{}) {
	issued = new(atomic.Int64)
	started, release = make(chan struct{}, 10), make(chan struct{})
	issue = func() (int64, error) {
		n := issued.Add(1)
		started <- struct{}{}
		<-release
		return n, nil
	}
	return issue, issued, started, release
}

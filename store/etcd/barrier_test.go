package etcd

import (
	"context"
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
	var issued atomic.Int64
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	issue := func() (int64, error) {
		n := issued.Add(1)
		started <- struct{}{}
		<-release
		return n, nil
	}
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
	var issued atomic.Int64
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	issue := func() (int64, error) {
		n := issued.Add(1)
		started <- struct{}{}
		<-release
		return n, nil
	}
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
		r = b.claim()
	}
	var d DB
	d.finish(r, 42, nil)
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

package etcd

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/store"
)

// What must be linearizable fails on a member cut off from the quorum
// (here: the two others killed) instead of answering from its own state:
// the verification of a batch that writes nothing (a compare-and-set that
// found the wrong value decides on it), a fence check, and a read whose
// barrier round such a batch's Txn would otherwise serve. Each waits for
// its deadline.
func TestWithoutQuorum(t *testing.T) {
	c := etcdtest.New(t, etcdtest.Options{})
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Member(0).ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(ctx, Config{Client: cli, Prefix: "q/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	// Closed first: it ends the requests still waiting for a quorum.
	t.Cleanup(func() { cli.Close() })
	put(t, d, "s/a", "1")
	lead, err := cli.Put(ctx, "fence/q/lead", "a")
	if err != nil {
		t.Fatal(err)
	}
	fence := KeyFence{Key: "fence/q/lead", CreateRev: lead.Header.Revision}
	getA := func(tx store.Tx) error { _, err := tx.Get([]byte("s/a")); return err }
	// The batch's snapshot is the latest revision the server saw, not read
	// linearizably: its commit must verify it.
	if err := d.View(ctx, getA); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := func(d time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, d)
	}
	noQuorum := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s completed on one member of three", what)
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want a deadline", what, err)
		}
	}

	bctx, cancel := deadline(3 * time.Second)
	noQuorum("a batch that writes nothing", d.Batch(bctx, getA))
	cancel()

	fctx, cancel := deadline(3 * time.Second)
	noQuorum("a fence check", d.CheckFence(store.WithFence(fctx, fence), fence))
	cancel()

	// A read's round goes out and waits for the quorum; a second read
	// joins the next round, which waits behind it; a batch that writes
	// nothing commits meanwhile and must not serve that round.
	first, cancel1 := deadline(6 * time.Second)
	defer cancel1()
	go d.View(first, getA)
	time.Sleep(200 * time.Millisecond)
	res := make(chan error, 1)
	go func() {
		rctx, cancel := deadline(4 * time.Second)
		defer cancel()
		res <- d.View(rctx, getA)
	}()
	time.Sleep(200 * time.Millisecond)
	bctx, cancel = deadline(3 * time.Second)
	_ = d.Batch(bctx, getA)
	cancel()
	noQuorum("a read whose round waited behind a batch that writes nothing", <-res)
}

package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/store"
)

// KeyFence is the etcd store's store.Fence: a write under it commits only
// while Key exists with the create revision CreateRev. An election key
// held on a session lease is one (concurrency.Election's Key and Rev): it
// is deleted when the lease ends, and a new lead creates a new key, so a
// write fenced on it fails once its node's lead is over, even if the node
// has not noticed yet (a process paused past its lease's TTL). Key is a
// full etcd key, outside the store's prefix.
type KeyFence struct {
	Key       string
	CreateRev int64
}

func (f KeyFence) String() string {
	return fmt.Sprintf("etcd key %q created at revision %d", f.Key, f.CreateRev)
}

// fencedTxn commits ops under cmps and the fence, in one Txn whose outer
// compare is the fence, so a lost fence is told apart from a conflict:
// the first fails the write, the second runs it again. A write that needs
// a fence is never batched with others (Batch sends it alone), as one
// caller's lost fence must not fail the others'.
func (d *DB) fencedTxn(ctx context.Context, f store.Fence, cmps []clientv3.Cmp, ops []clientv3.Op) (bool, error) {
	kf, err := keyFence(f)
	if err != nil {
		return false, &fnError{err}
	}
	resp, err := d.cli.Txn(ctx).
		If(kf.compare()).
		Then(clientv3.OpTxn(cmps, ops, nil)).
		Commit()
	if err != nil {
		return false, d.etcdError("commit", err)
	}
	d.observe(resp.Header.Revision)
	if !resp.Succeeded {
		return false, &fnError{kf.lost("nothing was written")}
	}
	return resp.Responses[0].GetResponseTxn().Succeeded, nil
}

// CheckFence implements store.FenceChecker: one linearizable Txn that
// compares the fence's key and writes nothing (linearRead makes it
// linearizable: a member cut off from the quorum must not pass a fence
// whose lease the others already ended).
func (d *DB) CheckFence(ctx context.Context, f store.Fence) error {
	kf, err := keyFence(f)
	if err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.inflight.Done()
	resp, err := d.cli.Txn(ctx).If(kf.compare()).Then(d.linearRead()).Commit()
	if err != nil {
		return d.etcdError("check fence", err)
	}
	if !resp.Succeeded {
		return kf.lost("nothing may be done under it")
	}
	return nil
}

func keyFence(f store.Fence) (KeyFence, error) {
	kf, ok := f.(KeyFence)
	if !ok || kf.Key == "" || kf.CreateRev <= 0 {
		return KeyFence{}, fmt.Errorf("%w: the etcd store cannot check the fence %s", store.ErrFenced, f)
	}
	return kf, nil
}

func (f KeyFence) compare() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.CreateRev)
}

func (f KeyFence) lost(what string) error {
	return fmt.Errorf("%w: %s no longer exists, so the role it stood for is lost; %s", store.ErrFenced, f, what)
}

// Package etcdelect is the scheduler's leadership in a cluster: an etcd
// election (go.etcd.io/etcd/client/v3/concurrency) whose candidates hold
// their key on a session lease with a TTL.
//
// Failover. A leader renews its lease every TTL/3. If it dies (or is cut
// off from etcd), the lease expires at most TTL after its last renewal,
// etcd deletes its key, and the next candidate, which watches that key,
// leads at once. The new leader's first run is due one interval after the
// last recorded run started, so the schedule resumes at most TTL +
// interval (+ jitter) after the leader died.
//
// Overlap. A leader cut off from etcd sees its session end when its lease
// would have expired on its side (the keepalive stream's deadline), and
// its lead context is cancelled then; the work in flight stops at its
// next store call. A leader that did not see it (a process paused past
// its TTL) is fenced: the lead context carries a store.Fence on its
// election key (etcd.KeyFence), so each store write of its work commits
// only while that key exists with its create revision, and fails with
// store.ErrFenced, writing nothing, once the lead has passed on; each
// connector call (core's RotationConnector) checks the fence first. A
// rotation it was in the middle of is in the store with its recorded
// step, and the next leader resumes it rather than starting another
// (rotation.Runner; the create step is a check-and-set on the current
// version).
package etcdelect

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

// DefaultTTL is the session lease's TTL: how long a dead leader keeps the
// lead. etcd grants no lease shorter than 1.5 election timeouts (1.5 s
// with its defaults), so TTLs are whole seconds of at least 2.
const DefaultTTL = 10 * time.Second

// Election is a scheduler.Leadership over etcd.
type Election struct {
	cli    *clientv3.Client
	prefix string
	node   string
	ttl    int
}

var _ scheduler.Leadership = (*Election)(nil)

// New is node's candidacy in the election under prefix (a deployment's
// etcd prefix plus a name: every server of one store uses the same), with
// sessions of ttl (0 means DefaultTTL; rounded up to whole seconds, at
// least 2).
func New(cli *clientv3.Client, prefix, node string, ttl time.Duration) (*Election, error) {
	switch {
	case cli == nil:
		return nil, errors.New("etcd election: no client")
	case prefix == "" || node == "":
		return nil, errors.New("etcd election: a prefix and a node name are required")
	case ttl < 0:
		return nil, errors.New("etcd election: the TTL must not be negative")
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	secs := max(int((ttl+time.Second-1)/time.Second), 2)
	return &Election{cli: cli, prefix: prefix, node: node, ttl: secs}, nil
}

// TTL is the session TTL in use.
func (e *Election) TTL() time.Duration { return time.Duration(e.ttl) * time.Second }

// Campaign implements scheduler.Leadership: it opens a session, waits to
// lead, and returns a context cancelled when the session ends.
func (e *Election) Campaign(ctx context.Context) (context.Context, func(), error) {
	// The session outlives ctx until it is closed: Close revokes its lease
	// with the session's context, so a cancelled one would leave the lease
	// to run out and the other servers waiting a TTL.
	sess, err := concurrency.NewSession(e.cli, concurrency.WithTTL(e.ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, nil, fmt.Errorf("etcd election: open session: %w", err)
	}
	el := concurrency.NewElection(sess, e.prefix)
	if err := el.Campaign(ctx, e.node); err != nil {
		// Close revokes the lease, withdrawing a candidacy Campaign may
		// have left behind.
		return nil, nil, errors.Join(fmt.Errorf("etcd election: campaign: %w", err), sess.Close())
	}
	lead, cancel := context.WithCancel(ctx)
	// Every store write of the lead's work is fenced on the election key:
	// a leader paused past its TTL may wake with lead not yet cancelled,
	// but its writes then fail in etcd, ordered after the key's deletion.
	lead = store.WithFence(lead, etcd.KeyFence{Key: el.Key(), CreateRev: el.Rev()})
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-lead.Done():
		}
	}()
	resign := func() {
		cancel()
		// Resigning lets the next candidate lead at once instead of after
		// the TTL; if etcd cannot be reached the lease runs out anyway.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = el.Resign(rctx)
		_ = sess.Close()
	}
	return lead, resign, nil
}

// Leader implements scheduler.Leadership: the candidate whose key is the
// oldest under the prefix leads.
func (e *Election) Leader(ctx context.Context) (string, error) {
	resp, err := e.cli.Get(ctx, e.prefix+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("etcd election: leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// exclusiveTTL is how long, in seconds, a job's hold on the prefix outlives
// its process: a restore killed half-way frees the prefix after it.
const exclusiveTTL = 10

// LockPrefix is where the admin jobs writing a whole deployment's prefix
// (restore, migrate) take turns. It is outside the prefix, so the job's
// own check that the prefix is empty does not see it. The job's key is
// below it, after a slash.
func LockPrefix(prefix string) string { return "passman-lock/" + strings.TrimSuffix(prefix, "/") }

// Exclusive gives the caller the deployment's prefix to itself for job (a
// restore or a migration, which both write a whole store and must never
// interleave) until release. It refuses, at once, while another job holds
// it. Every write made with the returned context is fenced on the hold, so
// a job that loses it (paused or cut off past the TTL) writes nothing
// more: its writes fail with store.ErrFenced instead of mixing with the
// next job's.
func (d *DB) Exclusive(ctx context.Context, job string) (context.Context, func() error, error) {
	// The session outlives ctx until release, which revokes its lease.
	sess, err := concurrency.NewSession(d.cli, concurrency.WithTTL(exclusiveTTL), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, nil, d.etcdError("open a session for "+job, err)
	}
	m := concurrency.NewMutex(sess, LockPrefix(d.prefix))
	if err := m.TryLock(ctx); err != nil {
		cerr := sess.Close()
		if errors.Is(err, concurrency.ErrLocked) {
			return nil, nil, fmt.Errorf("%w: another restore or migration is writing etcd prefix %q; wait for it to end (a killed one frees the prefix within %d s)", secret.ErrConflict, d.prefix, exclusiveTTL)
		}
		return nil, nil, errors.Join(d.etcdError(job+": take the prefix", err), cerr)
	}
	held, cancel := context.WithCancel(store.WithFence(ctx, KeyFence{Key: m.Key(), CreateRev: m.Header().Revision}))
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-held.Done():
		}
	}()
	release := func() error {
		cancel()
		// Closing the session revokes its lease, which deletes the hold's
		// key: no Unlock round trip is needed.
		if err := sess.Close(); err != nil {
			return d.etcdError(job+": release the prefix", err)
		}
		return nil
	}
	return held, release, nil
}

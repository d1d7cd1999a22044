package etcd

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/passman-dev/passman/store"
)

// A commit that creates a key, sent just after the etcd leader was
// SIGKILLed, is answered once the cluster has a new leader, well within
// etcd's own request timeout, and applies once: the counter it increments
// moves by exactly one per acknowledged commit.
func TestCommitSurvivesLeaderLoss(t *testing.T) {
	ec, d := ownCluster(t)
	ctx := context.Background()
	increment := func(n int) error {
		// Batch, as a server's writes: it reads at the revision the server
		// saw, so no barrier waits out the election before the commit.
		return d.Batch(ctx, func(stx store.Tx) error {
			tx := stx.(interface {
				store.Tx
				Create(k, v []byte) error
			})
			v, err := tx.Get([]byte("s/counter"))
			if err != nil && err != store.ErrKeyNotFound {
				return err
			}
			c, _ := strconv.Atoi(string(v))
			if err := tx.Put([]byte("s/counter"), []byte(strconv.Itoa(c+1))); err != nil {
				return err
			}
			return tx.Create(fmt.Appendf(nil, "m/entry/%d", n), []byte("entry"))
		})
	}
	if err := increment(0); err != nil {
		t.Fatal(err)
	}
	resentBefore := resent.Load()
	for round := 1; round <= 2; round++ {
		leader, err := ec.WaitLeader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ec.Kill(leader); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := increment(round); err != nil {
			t.Fatalf("round %d: commit after the leader's loss: %v", round, err)
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Errorf("round %d: the commit took %v, etcd's own timeout is 7 s", round, d)
		}
		if err := ec.Restart(ctx, leader); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, d, "s/counter"); got != "3" {
		t.Fatalf("counter = %s after 3 acknowledged increments", got)
	}
	if resent.Load() == resentBefore {
		t.Error("no commit was sent again: the test did not meet a lost answer")
	}
}

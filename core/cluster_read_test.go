package core_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

// A read on a cluster commits with its audit entry. Reads on one server
// of secrets the other keeps rewriting (so some reads run again on a fresher
// snapshot) each leave exactly one entry, naming the version the caller
// got; a refused read and a read of a missing secret are recorded as such,
// and every chain verifies.
func TestClusterReadsRecordedOnce(t *testing.T) {
	a, b, _, optsB := twoServers(t)
	ctx := context.Background()
	for i := range 2 {
		if _, err := a.Put(ctx, fmt.Sprintf("prod/hot%d", i), secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[string]int{} // request id -> version read
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 30 {
				if _, err := a.Put(ctx, fmt.Sprintf("prod/hot%d", i%2), secret.NewValue(fmt.Appendf(nil, "w%d-%d", g, i)), secret.PutOptions{}); err != nil {
					t.Errorf("put: %v", err)
				}
			}
		})
		wg.Go(func() {
			for i := range 30 {
				id := fmt.Sprintf("read-%d-%d", g, i)
				v, err := b.Get(audit.WithRequestID(ctx, id), fmt.Sprintf("prod/hot%d", i%2), secret.Selector{})
				if err != nil {
					t.Errorf("get %s: %v", id, err)
					continue
				}
				mu.Lock()
				got[id] = v.Info.Version
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if _, err := b.Get(audit.WithRequestID(ctx, "missing"), "prod/none", secret.Selector{}); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("get of a missing secret: %v", err)
	}
	mallory := core.WithSubject(audit.WithRequestID(ctx, "refused"), policy.Subject{ID: "mallory", Kind: policy.KindUser})
	if _, err := b.Get(mallory, "prod/hot0", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("get by mallory: %v, want a denial", err)
	}

	entries := map[string][]audit.Entry{}
	err := audit.Read(ctx, filepath.Join(optsB.Dir, core.AuditFile), audit.Filter{Action: core.ActionGet}, func(e audit.Entry) error {
		entries[e.RequestID] = append(entries[e.RequestID], e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range got {
		es := entries[id]
		if len(es) != 1 || es[0].Outcome != audit.OutcomeSuccess || es[0].Version != v {
			t.Errorf("read %s got v%d; its entries: %+v", id, v, es)
		}
	}
	if es := entries["missing"]; len(es) != 1 || es[0].Outcome != audit.OutcomeFailure || es[0].ErrorClass != secret.Class(secret.ErrNotFound) {
		t.Errorf("missing secret's entries: %+v", es)
	}
	if es := entries["refused"]; len(es) != 1 || es[0].Outcome != audit.OutcomeDenied || es[0].Decision == nil || es[0].Version != 0 {
		t.Errorf("refused read's entries: %+v", es)
	}
	if len(entries) != len(got)+2 {
		t.Errorf("%d requests audited, %d made", len(entries), len(got)+2)
	}
	for _, l := range []*core.Local{a, b} {
		if rep, err := l.VerifyAudit(ctx); err != nil || !rep.OK {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	}
}

// A deployment that chose stale reads keeps them: its reads are answered
// by the member at hand, without the commit a recorded read needs (so
// without quorum), their entries replicated after (audit sync write).
func TestClusterStaleReadsAreNotRecordedReads(t *testing.T) {
	a, _, optsA, _ := twoServers(t)
	ctx := context.Background()
	if _, err := a.Put(ctx, "prod/db", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []bool{false, true} {
		cfg := etcd.Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: optsA.Backend.(*etcd.DB).Prefix(), ReadCache: store.ReadPrefixes(), StaleReads: stale}
		b, err := etcd.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		opts := optsA
		opts.Backend, opts.ServerID, opts.Dir = b, fmt.Sprintf("stale-%v", stale), filepath.Join(t.TempDir(), "s")
		l := open(t, opts)
		before := etcd.ReadBatchCalls()
		for range 5 {
			if v, err := l.Get(ctx, "prod/db", secret.Selector{}); err != nil || string(v.Value.Reveal()) != "v" {
				t.Fatalf("stale %v: get = %q, %v", stale, v.Value.Reveal(), err)
			}
		}
		recorded := etcd.ReadBatchCalls() - before
		if stale && recorded != 0 || !stale && recorded != 5 {
			t.Errorf("stale reads %v: %d of 5 reads recorded in their commit", stale, recorded)
		}
		l.Close()
	}
}

// A caller that gave up before its read was decided is not recorded as
// refused by the policy: the read group decides without the caller.
func TestClusterReadOfCallerThatLeftIsNotADenial(t *testing.T) {
	a, b, _, optsB := twoServers(t)
	ctx := context.Background()
	if _, err := a.Put(ctx, "prod/x", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The policy engine notices a cancelled context only now and then:
	// enough callers make one refused for it all but certain, if any is.
	for i := range 30 {
		cctx, cancel := context.WithCancel(audit.WithRequestID(ctx, fmt.Sprintf("gave-up-%d", i)))
		cancel()
		// A path of its own: no decision cached for it.
		if _, err := b.Get(cctx, fmt.Sprintf("prod/x%d", i), secret.Selector{}); errors.Is(err, secret.ErrPermissionDenied) {
			t.Fatalf("a caller that left was refused: %v", err)
		}
	}
	err := audit.Read(ctx, filepath.Join(optsB.Dir, core.AuditFile), audit.Filter{Action: core.ActionGet}, func(e audit.Entry) error {
		if strings.HasPrefix(e.RequestID, "gave-up") && e.Outcome == audit.OutcomeDenied {
			t.Errorf("the read of a caller that left is audited as denied: %+v", e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package core_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

// TestRefusedWriteLearnsNothing: a caller the policy refuses gets the same
// denial whether the secret exists or not and whether or not the store
// would have refused the value (empty, too large), on both backends; each
// refusal is audited with the policy's decision. An allowed caller gets
// the store's own error.
func TestRefusedWriteLearnsNothing(t *testing.T) {
	backends := map[string]func(t *testing.T) core.Options{
		"bbolt": func(t *testing.T) core.Options { return initStore(t, audit.SyncWrite) },
		"etcd":  func(t *testing.T) core.Options { opts, _, _ := initCluster(t); return opts },
	}
	cases := []struct {
		name    string
		path    string
		value   []byte
		allowed error // the error an allowed caller gets, nil: success
	}{
		{"missing", "app/missing", []byte("v"), nil},
		{"existing", "app/key", []byte("v"), nil},
		{"empty value", "app/key", nil, secret.ErrInvalidArgument},
		{"empty value, missing", "app/missing", nil, secret.ErrInvalidArgument},
		{"oversized value", "app/key", bytes.Repeat([]byte("x"), secret.MaxValueSize+1), secret.ErrTooLarge},
		{"oversized value, missing", "app/missing", bytes.Repeat([]byte("x"), secret.MaxValueSize+1), secret.ErrTooLarge},
	}
	for name, setup := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			opts := setup(t)
			// The creator, whom the bundled policy makes admin.
			allowing := open(t, opts)
			if _, err := allowing.Put(ctx, "app/key", secret.NewValue([]byte("old")), secret.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := allowing.Close(); err != nil {
				t.Fatal(err)
			}
			refusing := reopen(t, opts, name)
			refusing.Authorizer = denyAll{}
			l := open(t, refusing)
			var first string
			for _, c := range cases {
				_, err := l.Put(ctx, c.path, secret.NewValue(c.value), secret.PutOptions{})
				if !errors.Is(err, secret.ErrPermissionDenied) {
					t.Fatalf("%s: refused put: %v, want a denial", c.name, err)
				}
				if first == "" {
					first = err.Error()
				} else if err.Error() != first {
					t.Errorf("%s: refused put: %q, unlike %q", c.name, err, first)
				}
				for _, op := range []struct {
					name string
					do   func() error
				}{
					{"delete", func() error { return l.Delete(ctx, c.path, nil) }},
					{"destroy nothing", func() error { return l.Destroy(ctx, c.path, nil) }},
					{"stage", func() error { return l.SetStage(ctx, c.path, secret.StageCurrent, 7) }},
					{"rollback", func() error { _, err := l.Rollback(ctx, c.path, 7); return err }},
				} {
					if err := op.do(); !errors.Is(err, secret.ErrPermissionDenied) {
						t.Errorf("%s: refused %s: %v, want a denial", c.name, op.name, err)
					}
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			allowing = open(t, reopen(t, opts, name))
			for _, c := range cases {
				_, err := allowing.Put(ctx, c.path, secret.NewValue(c.value), secret.PutOptions{})
				if !errors.Is(err, c.allowed) || c.allowed == nil && err != nil {
					t.Errorf("%s: allowed put: %v, want %v", c.name, err, c.allowed)
				}
			}
			if err := allowing.Close(); err != nil {
				t.Fatal(err)
			}
			denied := 0
			for _, e := range entries(t, opts) {
				if e.Outcome != audit.OutcomeDenied {
					continue
				}
				if e.Decision == nil || e.Decision.Revision != "sha256:test" || len(e.Decision.Reasons) == 0 {
					t.Errorf("denied %s of %s audited without the policy's decision: %+v", e.Action, e.Path, e.Decision)
				}
				denied++
			}
			if want := 5 * len(cases); denied != want {
				t.Errorf("%d denials audited, want %d", denied, want)
			}
		})
	}
}

// reopen returns opts for another Local over the same store: on etcd with
// a backend of its own, since a Local closes its backend.
func reopen(t *testing.T, opts core.Options, backend string) core.Options {
	t.Helper()
	if backend != "etcd" {
		return opts
	}
	b, err := etcd.Open(context.Background(), etcd.Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: opts.Backend.(*etcd.DB).Prefix(), ReadCache: store.ReadPrefixes()})
	if err != nil {
		t.Fatal(err)
	}
	opts.Backend = b
	return opts
}

// teamA lets bob write a secret tagged team=a, and alice do anything. Its
// hook, if set, runs on bob's first write decision, after the decision.
type teamA struct {
	mu    sync.Mutex
	seen  []string // team tag of each of bob's write decisions
	hook  func()
	fired bool
}

func (p *teamA) Authorize(_ context.Context, in policy.AuthzInput) (policy.Decision, error) {
	if in.Subject.ID == "alice" {
		return policy.Decision{Allow: true, Reasons: []string{"alice"}, Revision: "sha256:team"}, nil
	}
	team := ""
	if in.Secret != nil {
		team = in.Secret.Tags["team"]
	}
	allow := in.Action == policy.ActionWrite && team == "a"
	p.mu.Lock()
	p.seen = append(p.seen, team)
	hook := p.hook
	if p.fired {
		hook = nil
	}
	p.fired = true
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	if !allow {
		return policy.Decision{Reasons: []string{"bob writes team a's secrets only"}, Revision: "sha256:team"}, nil
	}
	return policy.Decision{Allow: true, Reasons: []string{"team a"}, Revision: "sha256:team"}, nil
}

// TestWriteDecidedOnMetadataItCommitsOver: on a cluster, bob may write a
// secret tagged team=a. Server b retags it team=b just after server a's
// policy allowed bob's write and before that write commits. The write's
// decision is part of its transaction, so its commit fails on the changed
// record, the transaction runs again, and the policy, now seeing team=b,
// refuses: bob's value is never written. Deciding first and writing after
// (as before) would have written it.
func TestWriteDecidedOnMetadataItCommitsOver(t *testing.T) {
	kr, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	prefix := etcdtest.Prefix(t.Name())
	optsA := clusterOpts(t, prefix, "a", kr)
	if _, err := core.Init(context.Background(), optsA); err != nil {
		t.Fatal(err)
	}
	dir := optsA.Dir
	optsA = clusterOpts(t, prefix, "a", kr)
	optsA.Dir = dir
	optsB := clusterOpts(t, prefix, "b", kr)
	pa, pb := &teamA{}, &teamA{}
	optsA.Authorizer, optsB.Authorizer = pa, pb
	a, b := open(t, optsA), open(t, optsB)
	t.Cleanup(func() { a.Close(); b.Close() })

	ctx := context.Background()
	alice := core.WithSubject(ctx, policy.Subject{ID: "alice", Kind: policy.KindUser})
	bob := core.WithSubject(ctx, policy.Subject{ID: "bob", Kind: policy.KindUser})
	if _, err := a.Put(alice, "prod/db", secret.NewValue([]byte("alice's")), secret.PutOptions{Metadata: &secret.MetadataUpdate{Tags: map[string]string{"team": "a"}}}); err != nil {
		t.Fatal(err)
	}
	// Allowed while the tag holds.
	if _, err := a.Put(bob, "prod/db", secret.NewValue([]byte("bob's first")), secret.PutOptions{}); err != nil {
		t.Fatalf("bob writing team a's secret: %v", err)
	}

	var retagged atomic.Bool
	pa.mu.Lock()
	pa.fired = false
	pa.hook = func() {
		if _, err := b.UpdateMetadata(alice, "prod/db", secret.MetadataUpdate{Tags: map[string]string{"team": "b"}}); err != nil {
			t.Errorf("retag on b: %v", err)
			return
		}
		retagged.Store(true)
	}
	pa.seen = nil
	pa.mu.Unlock()
	_, err = a.Put(bob, "prod/db", secret.NewValue([]byte("bob's second")), secret.PutOptions{})
	if !retagged.Load() {
		t.Fatal("the hook did not retag the secret")
	}
	if !errors.Is(err, secret.ErrPermissionDenied) || !strings.Contains(err.Error(), "team a's secrets only") {
		t.Fatalf("bob's write over the retagged secret: %v, want a denial", err)
	}
	pa.mu.Lock()
	seen := pa.seen
	pa.mu.Unlock()
	if len(seen) < 2 || seen[0] != "a" || seen[len(seen)-1] != "b" {
		t.Errorf("bob's write was decided on tags %q, want team a, then (re-decided) team b", seen)
	}
	got, err := b.Get(alice, "prod/db", secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value.Reveal()) != "bob's first" || got.Info.Version != 2 {
		t.Errorf("current value %q v%d, want bob's first v2", got.Value.Reveal(), got.Info.Version)
	}

	// A server that has not seen the retag decides on it too: b retags
	// back and forth, a's next write of bob is refused, then allowed.
	if _, err := b.UpdateMetadata(alice, "prod/db", secret.MetadataUpdate{Tags: map[string]string{"team": "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(bob, "prod/db", secret.NewValue([]byte("bob's third")), secret.PutOptions{}); err != nil {
		t.Fatalf("bob writing after the tag came back: %v", err)
	}
	if _, err := b.UpdateMetadata(alice, "prod/db", secret.MetadataUpdate{Tags: map[string]string{"team": "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(bob, "prod/db", secret.NewValue([]byte("bob's fourth")), secret.PutOptions{}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("bob writing after b retagged: %v, want a denial", err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var denied, allowed int
	for _, e := range entries(t, optsA) {
		if e.Action != core.ActionPut || e.Actor != "bob" {
			continue
		}
		if e.Decision == nil || e.Decision.Revision != "sha256:team" {
			t.Errorf("bob's put audited without the decision: %+v", e)
		}
		switch e.Outcome {
		case audit.OutcomeDenied:
			denied++
		case audit.OutcomeSuccess:
			allowed++
		}
	}
	if denied != 2 || allowed != 2 {
		t.Errorf("bob's puts audited: %d denied, %d allowed; want 2 and 2", denied, allowed)
	}
}

// TestWritesWaitForNoBarrier: a write's authorization reads the secret's
// metadata in the write's own transaction, a batch at the revision the
// server last saw, instead of a linearizable read (a barrier round) of its
// own before it. Sequential writes to one server wait for no barrier.
func TestWritesWaitForNoBarrier(t *testing.T) {
	opts, _, _ := initCluster(t)
	l := open(t, opts)
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Put(ctx, "prod/warm", secret.NewValue([]byte("warm")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	before := etcd.BarrierWaits()
	for i := range n {
		if _, err := l.Put(ctx, "prod/db", secret.NewValue([]byte{'v', byte('a' + i)}), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Other tests of the package may run beside this one and wait too:
	// allow a few, far fewer than one per write.
	waits := etcd.BarrierWaits() - before
	t.Logf("%d sequential writes waited for %d barrier rounds", n, waits)
	if waits > n/4 {
		t.Errorf("%d sequential writes waited for %d barrier rounds, want almost none", n, waits)
	}
}

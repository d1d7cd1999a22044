package etcdelect_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/scheduler/etcdelect"
	"github.com/passman-dev/passman/secret"
)

func client(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// target counts the values each secret's rotations set on it.
type target struct {
	mu   sync.Mutex
	sets map[string]int
}

func (tg *target) Set(_ context.Context, t rotation.Target) error {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.sets[t.Path]++
	return nil
}
func (tg *target) Test(context.Context, rotation.Target) error   { return nil }
func (tg *target) Revoke(context.Context, rotation.Target) error { return nil }

func (tg *target) count(path string) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.sets[path]
}

// node is one scheduling server: its own etcd client and election, its
// own metrics, and the shared store.
type node struct {
	name   string
	cli    *clientv3.Client
	el     *etcdelect.Election
	m      *metrics.Metrics
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *node) leads(t *testing.T) bool {
	t.Helper()
	mfs, err := n.m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == metrics.NameSchedulerIsLeader {
			return mf.GetMetric()[0].GetGauge().GetValue() == 1
		}
	}
	return false
}

// TestElectionFailover: two schedulers over one store, each in an etcd
// election on a real three-member cluster. Exactly one leads and rotates
// what is due, once; when the leader dies without resigning (its etcd
// client gone, its lease left to expire, as a SIGKILLed server leaves it),
// the other leads within the bound (TTL + interval) and carries on, and no
// secret is rotated twice.
//
// The store is shared in this process: the etcd-backed store that lets
// two processes share one is the cluster's; what is under test here is
// the election and the schedule's exactly-once across leaders.
func TestElectionFailover(t *testing.T) {
	t.Parallel()
	c := etcdtest.Shared(t)
	prefix := etcdtest.Prefix(t.Name()) + "scheduler"
	const ttl = 2 * time.Second
	const interval = 300 * time.Millisecond

	ctx := context.Background()
	tg := &target{sets: map[string]int{}}
	clock := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	reg := rotation.Connectors(rotation.ConnectorOptions{})
	reg["mem"] = rotation.Kind{New: func(map[string]string, rotation.Resolver) (rotation.Connector, error) { return tg, nil }}
	opts := core.Options{Dir: filepath.Join(t.TempDir(), "store"), Actor: "admin", AuditSync: audit.SyncWrite, Now: clock.Now, Connectors: reg}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.PutConnection(ctx, secret.Connection{Name: "mem", Connector: "mem", AllowedPaths: []string{"app/*"}}); err != nil {
		t.Fatal(err)
	}
	put := func(path string, period time.Duration) {
		p := secret.Duration(period)
		md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "mem", Length: 24}, RotationPeriod: &p}
		if _, err := l.Put(ctx, path, secret.NewValue([]byte("initial")), secret.PutOptions{Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}

	start := func(name string) *node {
		n := &node{name: name, cli: client(t, c), m: metrics.New(), done: make(chan struct{})}
		if n.el, err = etcdelect.New(n.cli, prefix, name, ttl); err != nil {
			t.Fatal(err)
		}
		s, err := scheduler.New(l.Scheduled(), n.el, scheduler.Config{Node: name, Interval: interval, Metrics: metrics.NewScheduler(n.m)})
		if err != nil {
			t.Fatal(err)
		}
		var rctx context.Context
		rctx, n.cancel = context.WithCancel(ctx)
		go func() { defer close(n.done); s.Run(rctx) }()
		t.Cleanup(func() { n.cancel(); <-n.done })
		return n
	}
	a, b := start("node-a"), start("node-b")

	var leader, follower *node
	waitFor(t, 20*time.Second, "a leader", func() bool {
		switch {
		case a.leads(t) && b.leads(t):
			t.Fatal("both schedulers lead")
		case a.leads(t):
			leader, follower = a, b
		case b.leads(t):
			leader, follower = b, a
		}
		return leader != nil
	})
	if name, err := a.el.Leader(ctx); err != nil || name != leader.name {
		t.Fatalf("election names %q (%v), the leading scheduler is %s", name, err, leader.name)
	}

	for i := range 3 {
		put(fmt.Sprintf("app/first-%d", i), 10*time.Hour)
	}
	clock.Advance(11 * time.Hour)
	waitFor(t, 20*time.Second, "the first batch to rotate", func() bool {
		return tg.count("app/first-0") == 1 && tg.count("app/first-1") == 1 && tg.count("app/first-2") == 1
	})
	time.Sleep(3 * interval)
	if follower.leads(t) {
		t.Fatal("the follower leads too")
	}

	// The leader dies: its client is gone, nobody resigns, the lease runs
	// out on etcd's clock.
	died := time.Now()
	if err := leader.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("close leader client: %v", err)
	}
	for i := range 3 {
		put(fmt.Sprintf("app/second-%d", i), time.Hour)
	}
	clock.Advance(2 * time.Hour)
	bound := ttl + interval
	waitFor(t, bound+5*time.Second, "the follower to lead", func() bool { return follower.leads(t) })
	t.Logf("the follower leads %s after the leader died", time.Since(died).Round(time.Millisecond))
	waitFor(t, bound+5*time.Second, "the second batch to rotate", func() bool {
		return tg.count("app/second-0") == 1 && tg.count("app/second-1") == 1 && tg.count("app/second-2") == 1
	})
	took := time.Since(died)
	t.Logf("failover: the second batch rotated %s after the leader died (bound %s = TTL %s + interval %s)", took.Round(time.Millisecond), bound, ttl, interval)
	// The bound, with room for etcd's lease checkpointing and this
	// machine's load: a follower that waited for a second TTL would fail.
	if slack := time.Second; took > bound+slack {
		t.Errorf("failover took %s, more than the bound %s (+%s)", took, bound, slack)
	}
	if name, err := follower.el.Leader(ctx); err != nil || name != follower.name {
		t.Errorf("election names %q (%v), want %s", name, err, follower.name)
	}

	// Nothing ran twice: every secret went through one rotation.
	time.Sleep(3 * interval)
	for _, p := range []string{"app/first-0", "app/first-1", "app/first-2", "app/second-0", "app/second-1", "app/second-2"} {
		s, err := l.Describe(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if tg.count(p) != 1 || s.CurrentVersion != 2 || len(s.Versions) != 2 {
			t.Errorf("%s: set %d times, at v%d of %d versions; want one rotation", p, tg.count(p), s.CurrentVersion, len(s.Versions))
		}
	}
	st, err := l.SchedulerStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != follower.name {
		t.Errorf("recorded leader %q, want %s", st.Leader, follower.name)
	}
}

// TestResignHandsOver: a leader that stops cleanly resigns, and the other
// candidate leads at once rather than after the TTL.
func TestResignHandsOver(t *testing.T) {
	t.Parallel()
	c := etcdtest.Shared(t)
	prefix := etcdtest.Prefix(t.Name()) + "scheduler"
	ctx := context.Background()
	a, err := etcdelect.New(client(t, c), prefix, "a", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := etcdelect.New(client(t, c), prefix, "b", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leadA, resignA, err := a.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	var resignB func()
	go func() {
		var err error
		_, resignB, err = b.Campaign(ctx)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("b leads while a does: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if name, _ := b.Leader(ctx); name != "a" {
		t.Fatalf("leader = %q, want a", name)
	}
	resigned := time.Now()
	resignA()
	if leadA.Err() == nil {
		t.Error("a's lead context is live after resigning")
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not lead after a resigned")
	}
	if d := time.Since(resigned); d > 3*time.Second {
		t.Errorf("hand-over took %s: b waited for the lease instead of the resignation", d)
	}
	resignB()
	if _, err := etcdelect.New(nil, prefix, "x", 0); err == nil {
		t.Error("New without a client")
	}
	if _, err := etcdelect.New(client(t, c), "", "x", 0); err == nil {
		t.Error("New without a prefix")
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

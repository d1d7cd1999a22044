package etcdelect_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/scheduler/etcdelect"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

// call is one connector call a target saw.
type call struct{ method, path, value string }

// pausingTarget records every call; call number pauseAt of method pause
// ("bind": the connector's binding to a secret) blocks until released
// (the leader making it is paused) and then fails with failAfter, as a
// connection broken during a pause would.
type pausingTarget struct {
	pause     string
	pauseAt   int
	failAfter error
	entered   chan struct{}
	release   chan struct{}
	mu        sync.Mutex
	n         int
	calls     []call
}

func newPausingTarget(pause string, pauseAt int, failAfter error) *pausingTarget {
	return &pausingTarget{pause: pause, pauseAt: pauseAt, failAfter: failAfter, entered: make(chan struct{}), release: make(chan struct{})}
}

func (p *pausingTarget) do(method string, t rotation.Target) error {
	p.mu.Lock()
	if method != "bind" {
		p.calls = append(p.calls, call{method, t.Path, string(t.Value.Reveal())})
	}
	if method == p.pause {
		p.n++
	}
	gated := method == p.pause && p.n == p.pauseAt
	p.mu.Unlock()
	if !gated {
		return nil
	}
	close(p.entered)
	<-p.release
	return p.failAfter
}

func (p *pausingTarget) Set(_ context.Context, t rotation.Target) error  { return p.do("set", t) }
func (p *pausingTarget) Test(_ context.Context, t rotation.Target) error { return p.do("test", t) }
func (p *pausingTarget) Revoke(_ context.Context, t rotation.Target) error {
	return p.do("revoke", t)
}

func (p *pausingTarget) seen() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// deposal is two servers over one etcd store, each with its election and
// scheduler, sharing one clock and one target.
type deposal struct {
	t          *testing.T
	c          *etcdtest.Cluster
	elPrefix   string
	clock      *testclock.Clock
	a, b       *core.Local
	elA, elB   *etcdelect.Election
	schA, schB *scheduler.Scheduler
}

func newDeposal(t *testing.T, tg *pausingTarget) *deposal {
	c := etcdtest.Shared(t)
	ctx := context.Background()
	prefix := etcdtest.Prefix(t.Name())
	kr, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := &deposal{t: t, c: c, elPrefix: "passman-election/" + prefix,
		clock: testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	reg := rotation.Connectors(rotation.ConnectorOptions{})
	reg["mem"] = rotation.Kind{New: func(map[string]string, rotation.Resolver) (rotation.Connector, error) {
		return tg, tg.do("bind", rotation.Target{})
	}}
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	server := func(id, dir string) core.Options {
		be, err := etcd.Open(ctx, etcd.Config{Endpoints: c.Endpoints(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return core.Options{Dir: dir, Keyring: kr, Actor: "admin", AuditSync: audit.SyncWrite,
			Backend: be, ServerID: id, Now: d.clock.Now, Connectors: reg}
	}
	if _, err := core.Init(ctx, server("a", dirA)); err != nil {
		t.Fatal(err)
	}
	open := func(o core.Options) *core.Local {
		l, err := core.Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	d.a, d.b = open(server("a", dirA)), open(server("b", dirB))
	if _, err := d.a.PutConnection(ctx, secret.Connection{Name: "mem", Connector: "mem", AllowedPaths: []string{"app/*"}}); err != nil {
		t.Fatal(err)
	}
	elect := func(id string, l *core.Local) (*etcdelect.Election, *scheduler.Scheduler) {
		el, err := etcdelect.New(client(t, c), d.elPrefix, id, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s, err := scheduler.New(l.Scheduled(), el, scheduler.Config{Node: id, Now: d.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return el, s
	}
	d.elA, d.schA = elect("a", d.a)
	d.elB, d.schB = elect("b", d.b)
	return d
}

// pauseA has A lead and run the schedule until the target holds it, then
// ends A's lease (as its expiry would while A is paused) and has B lead
// and run. It returns A's run, waited for once released.
func (d *deposal) pauseA(entered chan struct{}) func() (scheduler.Run, error) {
	t, ctx := d.t, context.Background()
	leadA, resignA, err := d.elA.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(resignA)
	// A paused process does not see its lead end.
	paused := context.WithoutCancel(leadA)
	type result struct {
		run scheduler.Run
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := d.schA.RunOnce(paused, d.clock.Now())
		done <- result{run, err}
	}()
	select {
	case <-entered:
	case r := <-done:
		t.Fatalf("A's run ended before it reached the target: %+v, %v", r.run, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("A's run never reached the target")
	}
	cli := client(t, d.c)
	resp, err := cli.Get(ctx, d.elPrefix+"/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("election keys: %v (%v)", resp, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	leadB, resignB, err := d.elB.Campaign(cctx)
	if err != nil {
		t.Fatalf("B did not lead after A's lease ended: %v", err)
	}
	t.Cleanup(resignB)
	if run, err := d.schB.RunOnce(leadB, d.clock.Now()); err != nil || !run.OK() {
		t.Fatalf("B's run: %+v, %v", run, err)
	}
	return func() (scheduler.Run, error) {
		select {
		case r := <-done:
			return r.run, r.err
		case <-time.After(20 * time.Second):
			t.Fatal("A's run did not end after it woke")
			return scheduler.Run{}, nil
		}
	}
}

// TestFencedLeaderRollback: leader A is paused in its rotation's Set,
// which fails once A wakes. Meanwhile B led and finished the rotation.
// A's rollback would set the old value on the target again, under the
// value B made current: it is fenced, so the target keeps B's value.
func TestFencedLeaderRollback(t *testing.T) {
	t.Parallel()
	tg := newPausingTarget("set", 1, errors.New("connection reset"))
	d := newDeposal(t, tg)
	ctx := context.Background()
	const path = "app/db"
	period := secret.Duration(time.Hour)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "mem", Length: 24}, RotationPeriod: &period}
	if _, err := d.a.Put(ctx, path, secret.NewValue([]byte("initial")), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	d.clock.Advance(2 * time.Hour)
	waitA := d.pauseA(tg.entered)
	before, err := d.b.Get(ctx, path, secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	close(tg.release)
	if _, err := waitA(); !errors.Is(err, store.ErrFenced) {
		t.Errorf("A's run record: %v, want a fenced write", err)
	}
	calls := tg.seen()
	if last := calls[len(calls)-1]; last.method != "test" || last.value != string(before.Value.Reveal()) {
		t.Errorf("target calls %d, the last %s of %q; want B's test of the current value last (A's rollback fenced)",
			len(calls), last.method, last.value)
	}
	for _, c := range calls {
		if c.value == "initial" {
			t.Errorf("the old value was set on the target again after the rotation: %s", c.method)
		}
	}
	after, err := d.b.Get(ctx, path, secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Info.Version != before.Info.Version {
		t.Errorf("current version %d after A woke, want %d", after.Info.Version, before.Info.Version)
	}
}

// TestFencedLeaderRevoke: leader A revokes app/a's previous version and is
// paused while it binds app/b's connector, having read that app/b's is
// due too. B leads and revokes app/b's. When A wakes, that revocation is
// no longer its to make (under a two-user strategy a later rotation may
// have given the role a password again): the target sees it once, from
// B.
func TestFencedLeaderRevoke(t *testing.T) {
	t.Parallel()
	tg := newPausingTarget("bind", 0, nil)
	d := newDeposal(t, tg)
	ctx := context.Background()
	grace := secret.Duration(time.Hour)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "mem", Length: 24, GracePeriod: grace}}
	for _, p := range []string{"app/a", "app/b"} {
		if _, err := d.a.Put(ctx, p, secret.NewValue([]byte("v1-"+p)), secret.PutOptions{Metadata: md}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.a.Rotate(ctx, p, "manual"); err != nil {
			t.Fatal(err)
		}
	}
	d.clock.Advance(2 * time.Hour)
	// A's second binding is app/b's.
	tg.mu.Lock()
	tg.pauseAt = tg.n + 2
	tg.mu.Unlock()
	waitA := d.pauseA(tg.entered)
	close(tg.release)
	if _, err := waitA(); !errors.Is(err, store.ErrFenced) {
		t.Errorf("A's run record: %v, want a fenced write", err)
	}
	revokes := map[string]int{}
	for _, c := range tg.seen() {
		if c.method == "revoke" {
			revokes[c.path]++
		}
	}
	if revokes["app/a"] != 1 || revokes["app/b"] != 1 {
		t.Errorf("revocations %v, want each once (app/a A's, app/b B's)", revokes)
	}
	for _, p := range []string{"app/a", "app/b"} {
		s, err := d.b.Describe(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Metadata.RotationStatus; st == nil || st.RevokeVersion != 0 {
			t.Errorf("%s: status %+v, want the revocation recorded", p, st)
		}
	}
}

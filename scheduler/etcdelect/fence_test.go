package etcdelect_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
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

// gatedTarget holds the first Set until released, as a leader paused in
// the middle of a rotation (a GC pause, SIGSTOP) holds it; every value set
// is kept.
type gatedTarget struct {
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	values           []string
}

func (g *gatedTarget) Set(_ context.Context, t rotation.Target) error {
	g.mu.Lock()
	g.values = append(g.values, string(t.Value.Reveal()))
	g.mu.Unlock()
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return nil
}
func (g *gatedTarget) Test(context.Context, rotation.Target) error   { return nil }
func (g *gatedTarget) Revoke(context.Context, rotation.Target) error { return nil }

// TestFencedLeader: leader A of two servers over one store in etcd is
// paused in the middle of a rotation (its connector's Set blocks) long
// enough for its lease to end (revoked here, as its expiry would). B
// leads and resumes the rotation. When A wakes, still believing it leads
// (its lead context not cancelled, as a paused process's is not), each of
// its store writes is refused by etcd with store.ErrFenced: the secret,
// its rotation record and the scheduler's record are as B left them, and
// the rotation happened once, under B.
func TestFencedLeader(t *testing.T) {
	t.Parallel()
	c := etcdtest.Shared(t)
	ctx := context.Background()
	prefix := etcdtest.Prefix(t.Name())
	elPrefix := "passman-election/" + prefix
	kr, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	tg := &gatedTarget{entered: make(chan struct{}), release: make(chan struct{})}
	reg := rotation.Connectors(rotation.ConnectorOptions{})
	reg["mem"] = rotation.Kind{New: func(map[string]string, rotation.Resolver) (rotation.Connector, error) { return tg, nil }}
	server := func(id string) core.Options {
		b, err := etcd.Open(ctx, etcd.Config{Endpoints: c.Endpoints(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return core.Options{Dir: filepath.Join(t.TempDir(), id), Keyring: kr, Actor: "admin", AuditSync: audit.SyncWrite,
			Backend: b, ServerID: id, Now: clock.Now, Connectors: reg}
	}
	optsA := server("a")
	if _, err := core.Init(ctx, optsA); err != nil {
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
	dirA := optsA.Dir
	optsA = server("a")
	optsA.Dir = dirA
	a, b := open(optsA), open(server("b"))

	if _, err := a.PutConnection(ctx, secret.Connection{Name: "mem", Connector: "mem", AllowedPaths: []string{"app/*"}}); err != nil {
		t.Fatal(err)
	}
	const path = "app/db"
	period := secret.Duration(time.Hour)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "mem", Length: 24}, RotationPeriod: &period}
	if _, err := a.Put(ctx, path, secret.NewValue([]byte("initial")), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)

	elA, err := etcdelect.New(client(t, c), elPrefix, "a", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	elB, err := etcdelect.New(client(t, c), elPrefix, "b", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	schedA, err := scheduler.New(a.Scheduled(), elA, scheduler.Config{Node: "a", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	schedB, err := scheduler.New(b.Scheduled(), elB, scheduler.Config{Node: "b", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}

	leadA, resignA, err := elA.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer resignA()
	if store.FenceOf(leadA) == nil {
		t.Fatal("the lead context carries no fence")
	}
	// A paused process does not see its lead end: its work goes on under a
	// context that is never cancelled, but keeps the lead's fence.
	paused := context.WithoutCancel(leadA)
	type result struct {
		run scheduler.Run
		err error
	}
	doneA := make(chan result, 1)
	go func() {
		run, err := schedA.RunOnce(paused, clock.Now())
		doneA <- result{run, err}
	}()
	select {
	case <-tg.entered:
	case r := <-doneA:
		t.Fatalf("A's run ended before its Set: %+v, %v", r.run, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("A's rotation never reached its Set")
	}

	// A's lease ends while it is paused.
	cli := client(t, c)
	resp, err := cli.Get(ctx, elPrefix+"/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("election keys: %v (%v)", resp, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	leadB, resignB, err := elB.Campaign(cctx)
	if err != nil {
		t.Fatalf("B did not lead after A's lease ended: %v", err)
	}
	defer resignB()
	if err := b.Scheduled().RecordLead(leadB, "b", clock.Now()); err != nil {
		t.Fatal(err)
	}
	runB, err := schedB.RunOnce(leadB, clock.Now())
	if err != nil || !runB.OK() || !reflect.DeepEqual(runB.Resumed, []string{path}) {
		t.Fatalf("B's run: %+v, %v; want %s resumed", runB, err, path)
	}
	before, err := b.Describe(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	stBefore, err := b.SchedulerStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A wakes: its rotation's next step record and its run record are
	// refused, and say why.
	clock.Advance(time.Minute)
	close(tg.release)
	var r result
	select {
	case r = <-doneA:
	case <-time.After(20 * time.Second):
		t.Fatal("A's run did not end after it woke")
	}
	if !errors.Is(r.err, store.ErrFenced) {
		t.Errorf("A's run record: %v, want a fenced write", r.err)
	}
	if len(r.run.Failed) != 1 || !strings.Contains(r.run.Failed[0].Error, store.ErrFenced.Error()) {
		t.Errorf("A's run: %+v, want its rotation failed as fenced", r.run)
	}
	if err := a.Scheduled().RecordLead(paused, "a", clock.Now()); !errors.Is(err, store.ErrFenced) {
		t.Errorf("A's lead record: %v, want a fenced write", err)
	}

	after, err := b.Describe(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("A changed the secret after its lead ended:\nbefore %+v\nafter  %+v", before, after)
	}
	stAfter, err := b.SchedulerStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stBefore, stAfter) || len(stAfter.Runs) != 1 || stAfter.Runs[0].Node != "b" || stAfter.Leader != "b" {
		t.Errorf("scheduler record changed or not B's alone:\nbefore %+v\nafter  %+v", stBefore, stAfter)
	}
	// One rotation: one new version, current, the value both Sets carried.
	if after.CurrentVersion != 2 || len(after.Versions) != 2 || after.Metadata.RotationStatus == nil ||
		after.Metadata.RotationStatus.State != secret.RotationSucceeded {
		t.Fatalf("after the rotation: v%d of %d versions, status %+v", after.CurrentVersion, len(after.Versions), after.Metadata.RotationStatus)
	}
	got, err := b.Get(ctx, path, secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	tg.mu.Lock()
	values := tg.values
	tg.mu.Unlock()
	if len(values) != 2 || values[0] != values[1] || values[0] != string(got.Value.Reveal()) {
		t.Errorf("the target got %d values, want the current value twice (A's paused Set, B's resumed one)", len(values))
	}
	for _, l := range []*core.Local{a, b} {
		if _, err := l.VerifyAudit(ctx); err != nil {
			t.Errorf("audit verify: %v", err)
		}
	}
}

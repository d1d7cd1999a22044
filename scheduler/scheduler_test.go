package scheduler_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// target is a connector's target system in memory: it records the values
// set on it and can be made to refuse them.
type target struct {
	mu   sync.Mutex
	sets map[string][]string
	fail bool
}

func (t *target) Set(_ context.Context, tg rotation.Target) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail {
		return errors.New("target refuses the new value")
	}
	if t.sets == nil {
		t.sets = map[string][]string{}
	}
	t.sets[tg.Path] = append(t.sets[tg.Path], string(tg.Value.Reveal()))
	return nil
}

func (t *target) Test(context.Context, rotation.Target) error   { return nil }
func (t *target) Revoke(context.Context, rotation.Target) error { return nil }

// newStore is a store whose creator is "admin", with a connection "mem" on
// tg for app/*, and a clock the test moves.
func newStore(t *testing.T, tg *target) (*core.Local, *testclock.Clock, core.Options) {
	t.Helper()
	ctx := context.Background()
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
	return l, clock, opts
}

func putRotated(t *testing.T, l *core.Local, path, conn string, period time.Duration) {
	t.Helper()
	p := secret.Duration(period)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: conn, Length: 24}, RotationPeriod: &p}
	if _, err := l.Put(context.Background(), path, secret.NewValue([]byte("initial "+path)), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

func currentVersion(t *testing.T, l *core.Local, path string) int {
	t.Helper()
	s, err := l.Describe(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s.CurrentVersion
}

// runScheduler runs s until the test ends.
func runScheduler(t *testing.T, s *scheduler.Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestScheduledRotation: a due secret rotates without anyone calling
// rotate --due; a secret that is not due, and one without a rotation spec,
// are left alone; the run is recorded in the store and on the audit log
// under the scheduler's own subject.
func TestScheduledRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tg := &target{}
	l, clock, opts := newStore(t, tg)
	putRotated(t, l, "app/due", "mem", time.Hour)
	putRotated(t, l, "app/later", "mem", 30*24*time.Hour)
	if _, err := l.Put(ctx, "app/plain", secret.NewValue([]byte("no rotation")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)

	m := metrics.New()
	s, err := scheduler.New(l.Scheduled(), scheduler.Single{Node: "node-1"}, scheduler.Config{Node: "node-1", Interval: 50 * time.Millisecond, Metrics: metrics.NewScheduler(m)})
	if err != nil {
		t.Fatal(err)
	}
	runScheduler(t, s)
	waitFor(t, "app/due to rotate", func() bool { return currentVersion(t, l, "app/due") == 2 })

	var st scheduler.Status
	waitFor(t, "a recorded run", func() bool {
		st, err = l.SchedulerStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(st.Runs) > 0
	})
	if st.Leader != "node-1" || st.LeaderSince.IsZero() {
		t.Errorf("leader = %q since %v, want node-1", st.Leader, st.LeaderSince)
	}
	first := st.Runs[len(st.Runs)-1]
	if first.Due != 1 || !slices.Equal(first.Rotated, []string{"app/due"}) || !first.OK() || first.Node != "node-1" {
		t.Errorf("first run = %+v, want app/due rotated", first)
	}
	// Later runs find nothing due: the rotation ran once.
	time.Sleep(200 * time.Millisecond)
	if v := currentVersion(t, l, "app/due"); v != 2 {
		t.Errorf("app/due at v%d after later runs, want v2", v)
	}
	if got := len(tg.sets["app/due"]); got != 1 {
		t.Errorf("the target was set %d times, want once", got)
	}
	for _, p := range []string{"app/later", "app/plain"} {
		if v := currentVersion(t, l, p); v != 1 {
			t.Errorf("%s at v%d, want untouched v1", p, v)
		}
	}

	// Every step is on the audit log as the scheduler; none as anyone else.
	entries := auditEntries(t, opts.Dir)
	var stage, run bool
	for _, e := range entries {
		if e.Path == "app/due" && e.Action == core.ActionStage {
			stage = true
			if e.Actor != "scheduler" || e.Details["subject_kind"] != "scheduler" {
				t.Errorf("promotion audited as %s (%s), want the scheduler", e.Actor, e.Details["subject_kind"])
			}
		}
		if e.Action == core.ActionSchedulerRun && e.Actor == "scheduler" && e.Outcome == audit.OutcomeSuccess {
			run = true
		}
		if e.Actor == "scheduler" && (e.Path == "app/plain" || e.Path == "app/later") {
			t.Errorf("the scheduler touched %s: %+v", e.Path, e)
		}
	}
	if !stage || !run {
		t.Errorf("audit log: promotion found %v, run found %v", stage, run)
	}
	if got := gaugeValue(t, m, metrics.NameSchedulerIsLeader); got != 1 {
		t.Errorf("%s = %v, want 1", metrics.NameSchedulerIsLeader, got)
	}
}

// TestScheduledCanaryStops: a failing canary stops the run; the rest of
// the due secrets are not attempted, and the run says so.
func TestScheduledCanaryStops(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tg := &target{fail: true}
	l, clock, _ := newStore(t, tg)
	for _, p := range []string{"app/a", "app/b", "app/c", "app/d"} {
		putRotated(t, l, p, "mem", time.Hour)
	}
	clock.Advance(2 * time.Hour)
	s, err := scheduler.New(l.Scheduled(), scheduler.Single{Node: "n"}, scheduler.Config{Node: "n", Interval: time.Hour, Due: rotation.DueOptions{Canary: 1}})
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.RunOnce(ctx, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if run.Due != 4 || len(run.Failed) != 1 || run.Skipped != 3 || len(run.Rotated) != 0 || !strings.Contains(run.Stopped, "canary") || run.OK() {
		t.Fatalf("run = %+v, want the canary failed and 3 skipped", run)
	}
	if !strings.Contains(run.Failed[0].Error, "target refuses") {
		t.Errorf("failure = %q", run.Failed[0].Error)
	}
	for _, p := range []string{"app/a", "app/b", "app/c", "app/d"} {
		if v := currentVersion(t, l, p); v != 1 {
			t.Errorf("%s at v%d, want v1", p, v)
		}
	}
	st, err := l.SchedulerStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 1 || st.Runs[0].Stopped == "" {
		t.Errorf("recorded runs = %+v", st.Runs)
	}
}

// TestSchedulerSubjectBounds: the scheduler's subject reads or changes
// nothing without a configured rotation, and configures nothing, even
// when a tenant would like it to.
func TestSchedulerSubjectBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _, _ := newStore(t, &target{})
	putRotated(t, l, "app/rot", "mem", time.Hour)
	if _, err := l.Put(ctx, "app/plain", secret.NewValue([]byte("plain-canary-value")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	as := core.WithSubject(ctx, core.SchedulerSubject)
	if _, err := l.Get(as, "app/plain", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) && !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("scheduler read of a secret without rotation: %v, want refused", err)
	}
	if _, err := l.Rotate(as, "app/plain", "due"); err == nil {
		t.Error("scheduler rotated a secret without a rotation spec")
	}
	spec := &secret.Rotation{Connection: "mem", Length: 24}
	if _, err := l.UpdateMetadata(as, "app/plain", secret.MetadataUpdate{Rotation: spec}); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Errorf("scheduler configured a rotation: %v", err)
	}
	if _, err := l.Rotate(as, "app/rot", "due"); err != nil {
		t.Errorf("scheduler rotation of a configured secret: %v", err)
	}
}

func auditEntries(t *testing.T, dir string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := audit.Read(context.Background(), filepath.Join(dir, core.AuditFile), audit.Filter{}, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gaugeValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestNewLeaderKeepsTheSchedule: a node that starts leading plans its
// first run one interval after the last recorded run started, by whoever
// made it: it neither repeats a run just made nor waits a whole interval
// after an overdue one; the lag it reports is how late the run started.
func TestNewLeaderKeepsTheSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _, _ := newStore(t, &target{})
	const interval = 1500 * time.Millisecond
	svc := l.Scheduled()
	if err := svc.RecordRun(ctx, scheduler.Run{Node: "old", StartedAt: time.Now().UTC(), DueAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.New(svc, scheduler.Single{Node: "new"}, scheduler.Config{Node: "new", Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	runScheduler(t, s)
	runs := func() []scheduler.Run {
		st, err := l.SchedulerStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Runs
	}
	time.Sleep(interval / 2)
	if n := len(runs()); n != 1 {
		t.Fatalf("%d runs half an interval after the last one, want the old one alone", n)
	}
	waitFor(t, "the new leader's run", func() bool { return len(runs()) == 2 })
	first := runs()[0]
	if first.Node != "new" || time.Since(started) < interval*3/4 {
		t.Errorf("run by %s after %s", first.Node, time.Since(started))
	}
	if first.Lag() > time.Second {
		t.Errorf("lag %s for a run on time", first.Lag())
	}

	// An overdue schedule (the old leader died long ago) runs at once and
	// reports how late.
	l2, _, _ := newStore(t, &target{})
	old := time.Now().Add(-time.Hour).UTC()
	if err := l2.Scheduled().RecordRun(ctx, scheduler.Run{Node: "dead", StartedAt: old, DueAt: old}); err != nil {
		t.Fatal(err)
	}
	s2, err := scheduler.New(l2.Scheduled(), scheduler.Single{Node: "new"}, scheduler.Config{Node: "new", Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	runScheduler(t, s2)
	var st scheduler.Status
	waitFor(t, "the overdue run", func() bool {
		st, err = l2.SchedulerStatus(ctx)
		return err == nil && len(st.Runs) == 2
	})
	if lag := st.Runs[0].Lag(); lag < 58*time.Minute || lag > 60*time.Minute {
		t.Errorf("lag of the overdue run = %s, want ~59m", lag)
	}
	if _, err := scheduler.New(svc, scheduler.Single{Node: "x"}, scheduler.Config{}); err == nil {
		t.Error("New without a node name")
	}
	if _, err := scheduler.New(svc, scheduler.Single{Node: "x"}, scheduler.Config{Node: "x", Interval: -time.Second}); err == nil {
		t.Error("New with a negative interval")
	}
}

package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// fakeTargets holds, per store, the target its "fake" connector acts on
// (engine sets it), so that the store's connections bind to a fake target
// through the real path: authorization, connection, allow-list.
var fakeTargets sync.Map // *core.Local -> *atomic.Pointer[target]

// openStore opens a real embedded store in a temporary directory, with the
// built-in connectors and a "fake" one.
func openStore(t testing.TB, now func() time.Time) *core.Local {
	t.Helper()
	slot := new(atomic.Pointer[target])
	reg := rotation.Connectors(rotation.ConnectorOptions{})
	reg["fake"] = rotation.Kind{New: func(map[string]string, rotation.Resolver) (rotation.Connector, error) {
		return slotTarget{slot}, nil
	}}
	opts := core.Options{Dir: filepath.Join(t.TempDir(), "store"), Actor: "test", NoSync: true, Now: now, Connectors: reg}
	if _, err := core.Init(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fakeTargets.Store(l, slot)
	return l
}

// target is a fake target system for the "fake" connector: it holds the
// credential it accepts, and fails the steps a test tells it to.
type target struct {
	mu       sync.Mutex
	accepts  string
	revoked  []string
	failSet  int // fail the n-th Set call (1-based); 0 never
	failTest bool
	calls    []string
	sets     int
	leakInto bool // put the value in its error text (a careless connector)
}

func (f *target) Set(_ context.Context, t rotation.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	f.calls = append(f.calls, fmt.Sprintf("set v%d", t.Version))
	if f.sets == f.failSet {
		if f.leakInto {
			return fmt.Errorf("target refused %s", t.Value.Reveal())
		}
		return errors.New("target refused the new credential")
	}
	f.accepts = string(t.Value.Reveal())
	return nil
}

func (f *target) Test(_ context.Context, t rotation.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("test v%d", t.Version))
	if f.failTest {
		if f.leakInto {
			return fmt.Errorf("login with %s failed", t.Value.Reveal())
		}
		return errors.New("login failed")
	}
	if f.accepts != string(t.Value.Reveal()) {
		return errors.New("target does not accept the value")
	}
	return nil
}

func (f *target) Revoke(_ context.Context, t rotation.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("revoke v%d", t.Version))
	f.revoked = append(f.revoked, string(t.Value.Reveal()))
	return nil
}

// slotTarget is the fake connector: the target engine last set.
type slotTarget struct{ slot *atomic.Pointer[target] }

func (s slotTarget) Set(ctx context.Context, t rotation.Target) error {
	return s.slot.Load().Set(ctx, t)
}
func (s slotTarget) Test(ctx context.Context, t rotation.Target) error {
	return s.slot.Load().Test(ctx, t)
}
func (s slotTarget) Revoke(ctx context.Context, t rotation.Target) error {
	return s.slot.Load().Revoke(ctx, t)
}

// engine is the engine over st (a store from openStore, or a wrapper of
// one) whose fake connector acts on tgt.
func engine(st rotation.Store, tgt *target, now func() time.Time) *rotation.Runner {
	l, ok := st.(*core.Local)
	if cs, isCrash := st.(*crashStore); isCrash {
		l, ok = cs.Local, true
	}
	if !ok {
		panic("engine: not a store from openStore")
	}
	slot, _ := fakeTargets.Load(l)
	slot.(*atomic.Pointer[target]).Store(tgt)
	return &rotation.Runner{Store: st, Connectors: l, Now: now}
}

// seed creates path with a first value and a rotation spec through
// connection; "fake" is created on first use (any path, the fake connector).
func seed(t *testing.T, l *core.Local, path, value, connection string, grace time.Duration) {
	t.Helper()
	ctx := context.Background()
	if connection == "fake" {
		if _, err := l.PutConnection(ctx, secret.Connection{Name: "fake", Connector: "fake", AllowedPaths: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
	}
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: connection, Length: 24, GracePeriod: secret.Duration(grace)}}
	if _, err := l.Put(ctx, path, secret.NewValue([]byte(value)), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

func current(t *testing.T, l *core.Local, path string) (int, string) {
	t.Helper()
	v, err := l.Get(context.Background(), path, secret.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	return v.Info.Version, string(v.Value.Reveal())
}

func TestRotateHappyPath(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := openStore(t, clock)
	tgt := &target{accepts: "initial-value-1"}
	e := engine(l, tgt, clock)
	seed(t, l, "prod/db/password", "initial-value-1", "fake", time.Hour)

	res, err := e.Rotate(context.Background(), "prod/db/password", "manual")
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 1 || res.To != 2 || res.State != secret.RotationSucceeded {
		t.Fatalf("result = %+v", res)
	}
	v, val := current(t, l, "prod/db/password")
	if v != 2 || val != tgt.accepts || len(val) != 24 {
		t.Fatalf("current v%d (%d bytes), target accepts the new value: %v", v, len(val), val == tgt.accepts)
	}
	prev, err := l.Get(context.Background(), "prod/db/password", secret.Selector{Stage: secret.StagePrevious})
	if err != nil || prev.Info.Version != 1 {
		t.Fatalf("previous = v%d, %v", prev.Info.Version, err)
	}
	if got := strings.Join(tgt.calls, ","); got != "set v2,test v2" {
		t.Fatalf("calls = %s", got)
	}
	s, _ := l.Describe(context.Background(), "prod/db/password")
	st := s.Metadata.RotationStatus
	if st == nil || st.State != secret.RotationSucceeded || st.RevokeVersion != 1 || !st.RevokeAfter.Equal(now.Add(time.Hour)) || !st.LastSuccess.Equal(now) {
		t.Fatalf("status = %+v", st)
	}

	// The grace period: not revoked before it ends, revoked after.
	if ok, err := e.Revoke(context.Background(), "prod/db/password", false); err != nil || ok {
		t.Fatalf("revoke during grace: %v %v", ok, err)
	}
	now = now.Add(time.Hour + time.Second)
	if ok, err := e.Revoke(context.Background(), "prod/db/password", false); err != nil || !ok {
		t.Fatalf("revoke after grace: %v %v", ok, err)
	}
	if len(tgt.revoked) != 1 || tgt.revoked[0] != "initial-value-1" {
		t.Fatalf("revoked %d values", len(tgt.revoked))
	}
	if ok, _ := e.Revoke(context.Background(), "prod/db/password", false); ok {
		t.Fatal("revoked twice")
	}
}

func TestRotateRollsBackOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tgt      *target
		wantStep string
	}{
		{"set fails", &target{failSet: 1}, "set failed"},
		{"test fails", &target{failTest: true}, "test failed"},
		{"careless connector leaks the value into its error", &target{failTest: true, leakInto: true}, "test failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openStore(t, nil)
			tc.tgt.accepts = "initial-value-1"
			e := engine(l, tc.tgt, nil)
			seed(t, l, "app/key", "initial-value-1", "fake", 0)
			res, err := e.Rotate(context.Background(), "app/key", "manual")
			if err == nil || !strings.Contains(err.Error(), tc.wantStep) || !strings.Contains(err.Error(), "rolled back") {
				t.Fatalf("err = %v", err)
			}
			if res.State != secret.RotationRolledBack {
				t.Fatalf("state = %s", res.State)
			}
			// The target holds the current value again; the store's current
			// is unchanged; the pending version is gone for good.
			if tc.tgt.accepts != "initial-value-1" {
				t.Fatal("target was not rolled back")
			}
			if v, val := current(t, l, "app/key"); v != 1 || val != "initial-value-1" {
				t.Fatalf("current = v%d", v)
			}
			s, _ := l.Describe(context.Background(), "app/key")
			for _, v := range s.Versions {
				if v.Version == 2 && v.State != secret.StateDestroyed {
					t.Fatalf("pending v2 is %s, want destroyed", v.State)
				}
				if v.HasStage(secret.StagePending) {
					t.Fatal("a pending label is left")
				}
			}
			st := s.Metadata.RotationStatus
			if st == nil || st.State != secret.RotationRolledBack || !strings.Contains(st.Error, tc.wantStep) {
				t.Fatalf("status = %+v", st)
			}
			assertNoValueLeaks(t, l, "initial-value-1", err.Error(), st.Error)
		})
	}
}

func TestRollbackFailureKeepsPending(t *testing.T) {
	l := openStore(t, nil)
	tgt := &target{failTest: true, failSet: 2, accepts: "initial-value-1"} // the rollback's Set fails
	e := engine(l, tgt, nil)
	seed(t, l, "app/key", "initial-value-1", "fake", 0)
	res, err := e.Rotate(context.Background(), "app/key", "manual")
	if err == nil || res.State != secret.RotationFailed || !strings.Contains(err.Error(), "rollback failed") {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
	s, _ := l.Describe(context.Background(), "app/key")
	if !hasPending(s, 2) {
		t.Fatal("the pending version the target may hold was discarded")
	}
}

func hasPending(s secret.Secret, v int) bool {
	for _, info := range s.Versions {
		if info.Version == v && info.HasStage(secret.StagePending) && info.State == secret.StateActive {
			return true
		}
	}
	return false
}

// failingSource binds every spec to a target whose test fails.
type failingSource struct{}

func (failingSource) RotationConnector(context.Context, string, *secret.Rotation) (rotation.Connector, string, error) {
	return &target{failTest: true}, "fake", nil
}

// crashStore lets a test stop a rotation right after a given call, as a
// killed process would, by failing every call from then on.
type crashStore struct {
	*core.Local
	after   string // e.g. "UpdateMetadata:set"
	crashed bool
}

var errCrash = errors.New("process killed")

func (c *crashStore) UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error) {
	if c.crashed {
		return secret.Metadata{}, errCrash
	}
	m, err := c.Local.UpdateMetadata(ctx, path, u)
	if u.RotationStatus != nil && c.after == "status:"+string(u.RotationStatus.Step) {
		c.crashed = true
	}
	return m, err
}

func (c *crashStore) SetStage(ctx context.Context, path string, stage secret.Stage, version int) error {
	if c.crashed {
		return errCrash
	}
	err := c.Local.SetStage(ctx, path, stage, version)
	if c.after == "promote" && stage == secret.StageCurrent {
		c.crashed = true
	}
	return err
}

// TestResumeAfterCrash interrupts a rotation after each durable step and
// checks that the next run finishes it: one new current version, the
// target accepting it, nothing pending, the status succeeded.
func TestResumeAfterCrash(t *testing.T) {
	for _, after := range []string{"status:create", "status:set", "status:test", "status:finish", "promote"} {
		t.Run(after, func(t *testing.T) {
			l := openStore(t, nil)
			tgt := &target{accepts: "initial-value-1"}
			seed(t, l, "app/key", "initial-value-1", "fake", 0)
			cs := &crashStore{Local: l, after: after}
			if _, err := engine(cs, tgt, nil).Rotate(context.Background(), "app/key", "manual"); !errors.Is(err, errCrash) {
				t.Fatalf("first run: %v", err)
			}
			res, err := engine(l, tgt, nil).Rotate(context.Background(), "app/key", "manual")
			if err != nil {
				t.Fatal(err)
			}
			if !res.Resumed || res.To != 2 || res.State != secret.RotationSucceeded {
				t.Fatalf("result = %+v", res)
			}
			v, val := current(t, l, "app/key")
			if v != 2 || val != tgt.accepts {
				t.Fatalf("current v%d; target accepts it: %v", v, val == tgt.accepts)
			}
			s, _ := l.Describe(context.Background(), "app/key")
			if versionCount(s) != 2 || hasPending(s, 2) || s.Metadata.RotationStatus.State != secret.RotationSucceeded {
				t.Fatalf("versions %d, status %+v", versionCount(s), s.Metadata.RotationStatus)
			}
		})
	}
}

func versionCount(s secret.Secret) int { return len(s.Versions) }

// TestLeftoverPendingIsResolved: a pending version with no rotation in
// progress (a crash between its write and the first status record) does
// not block the next rotation.
func TestLeftoverPendingIsResolved(t *testing.T) {
	l := openStore(t, nil)
	tgt := &target{accepts: "initial-value-1"}
	seed(t, l, "app/key", "initial-value-1", "fake", 0)
	if _, err := l.Put(context.Background(), "app/key", secret.NewValue([]byte("stray-pending")), secret.PutOptions{Stage: secret.StagePending}); err != nil {
		t.Fatal(err)
	}
	res, err := engine(l, tgt, nil).Rotate(context.Background(), "app/key", "manual")
	if err != nil || res.To != 3 {
		t.Fatalf("res %+v, err %v", res, err)
	}
	s, _ := l.Describe(context.Background(), "app/key")
	for _, v := range s.Versions {
		if v.Version == 2 && v.State != secret.StateDestroyed {
			t.Fatalf("stray pending v2 is %s", v.State)
		}
	}
}

func TestRotateErrors(t *testing.T) {
	l := openStore(t, nil)
	e := engine(l, &target{}, nil)
	if _, err := l.Put(context.Background(), "plain/secret", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// A spec naming a connection that does not exist is refused when set;
	// one whose connection is deleted later fails when it runs.
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "nosuch"}}
	if _, err := l.Put(context.Background(), "odd/none", secret.NewValue([]byte("v")), secret.PutOptions{Metadata: md}); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("spec naming a missing connection: %v", err)
	}
	seed(t, l, "odd/one", "value-1", "fake", 0)
	if err := l.DeleteConnection(context.Background(), "fake"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"plain/secret", "no rotation configured"},
		{"odd/one", "no connection fake"},
		{"missing/one", "not found"},
	} {
		_, err := e.Rotate(context.Background(), tc.path, "manual")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.path, err, tc.want)
		}
	}
}

func TestRotateDueCanary(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := openStore(t, clock)
	ctx := context.Background()
	period := secret.Duration(24 * time.Hour)
	for i := range 30 {
		md := &secret.MetadataUpdate{RotationPeriod: &period, Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}
		if _, err := l.Put(ctx, fmt.Sprintf("svc/s%02d", i), secret.NewValue([]byte("first")), secret.PutOptions{Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	e := engine(l, &target{}, clock)
	rep, err := e.RotateDue(ctx, rotation.DueOptions{})
	if err != nil || rep.Due != 0 {
		t.Fatalf("nothing is due yet: %+v %v", rep, err)
	}
	now = now.Add(25 * time.Hour)
	rep, err = e.RotateDue(ctx, rotation.DueOptions{})
	if err != nil || rep.Due != 30 || len(rep.Rotated) != 30 || len(rep.Failed) != 0 || rep.CanarySize != 1 {
		t.Fatalf("rep = %+v, err = %v", rep, err)
	}
	if rep, _ = e.RotateDue(ctx, rotation.DueOptions{}); rep.Due != 0 {
		t.Fatalf("due again right after rotating: %d", rep.Due)
	}

	// A failing canary stops the run before the rest.
	now = now.Add(25 * time.Hour)
	bad := &rotation.Runner{Store: l, Now: clock, Connectors: failingSource{}}
	rep, err = bad.RotateDue(ctx, rotation.DueOptions{Canary: 3})
	if err != nil || len(rep.Failed) != 3 || len(rep.Rotated) != 0 || len(rep.Skipped) != 27 || !strings.Contains(rep.Stopped, "canary") {
		t.Fatalf("rep = %+v, err = %v", rep, err)
	}
}

func TestRespondToLeak(t *testing.T) {
	l := openStore(t, nil)
	tgt := &target{accepts: "leaked-value-1"}
	e := engine(l, tgt, nil)
	seed(t, l, "prod/db/password", "leaked-value-1", "fake", 24*time.Hour)
	pe, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leak := rotation.Leak{Path: "prod/db/password", Version: 1, Where: "app.env:1 in commit abc1234",
		Finding: map[string]any{"rule": "passman-managed", "file": "app.env", "line": 1, "commit": "abc1234"}}
	res, err := e.Respond(context.Background(), leak, pe.Respond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rotation == nil || res.Rotation.To != 2 || !res.Revoked {
		t.Fatalf("res = %+v", res)
	}
	if len(tgt.revoked) != 1 || tgt.revoked[0] != "leaked-value-1" {
		t.Fatal("the leaked value was not revoked at once")
	}
	// A second scan finding the same leak rotates nothing.
	res, err = e.Respond(context.Background(), leak, pe.Respond)
	if err != nil || res.Rotation != nil {
		t.Fatalf("second response rotated again: %+v %v", res, err)
	}
	if v, _ := current(t, l, "prod/db/password"); v != 2 {
		t.Fatalf("current v%d after two responses", v)
	}
	entries, err := l.QueryAudit(context.Background(), audit.Filter{Path: "prod/db/password"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The audit log reads finding -> decision -> rotation, step by step.
	var trail []string
	for _, en := range entries {
		if st := en.Details["rotation_state"]; st != "" {
			trail = append(trail, st+":"+en.Details["rotation_step"])
			if tr := en.Details["rotation_trigger"]; !strings.HasPrefix(tr, "leak: app.env:1 in commit abc1234; policy: v1 is the current value") {
				t.Fatalf("trigger %q", tr)
			}
		}
	}
	if got := strings.Join(trail, ","); got != "in_progress:create,in_progress:set,in_progress:test,in_progress:finish,succeeded:,succeeded:" {
		t.Fatalf("audit trail %s", got)
	}
	assertNoValueLeaks(t, l, "leaked-value-1", fmt.Sprintf("%+v", res))
}

// assertNoValueLeaks checks texts and the audit log for a value.
func assertNoValueLeaks(t *testing.T, l *core.Local, value string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, value) {
			t.Fatalf("value leaked into %q", s)
		}
	}
	entries, err := l.QueryAudit(context.Background(), audit.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%+v", entries); strings.Contains(s, value) {
		t.Fatal("value leaked into the audit log")
	}
}

// TestRotationMetrics: each finished rotation counts one attempt and its
// outcome, by connector.
func TestRotationMetrics(t *testing.T) {
	l := openStore(t, nil)
	m := metrics.New()
	tgt := &target{accepts: "initial-value-1"}
	e := engine(l, tgt, nil)
	e.Metrics = m
	seed(t, l, "app/key", "initial-value-1", "fake", 0)
	if _, err := e.Rotate(context.Background(), "app/key", "manual"); err != nil {
		t.Fatal(err)
	}
	tgt.failTest = true
	if _, err := e.Rotate(context.Background(), "app/key", "manual"); err == nil {
		t.Fatal("a failing test step did not fail the rotation")
	}
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range mt.GetLabel() {
				key += "," + lp.GetName() + "=" + lp.GetValue()
			}
			got[key] = mt.GetCounter().GetValue()
		}
	}
	for k, want := range map[string]float64{
		"passman_rotation_attempts_total,connector=fake":                     2,
		"passman_rotation_outcomes_total,connector=fake,outcome=succeeded":   1,
		"passman_rotation_outcomes_total,connector=fake,outcome=rolled_back": 1,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/crashtest"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// leaderCrashEnv carries "DIR STOP" to the child: the directory of the
// store and target, and where the scheduler's rotation stops ("set:after":
// the target holds the new value, the step after set is not recorded;
// "set:before": the set step is recorded, the target not yet changed).
const leaderCrashEnv = "PASSMAN_SCHEDULER_CRASH_CHILD"

// fileTarget is a target system outside the process: its credential is a
// file's content. Every set is appended to DIR/sets, so the test counts
// what reached the target across processes.
type fileTarget struct {
	dir  string
	stop string
}

func (f fileTarget) Set(_ context.Context, t rotation.Target) error {
	if f.stop == "set:before" {
		fmt.Println("stopped")
		select {}
	}
	if err := appendLine(filepath.Join(f.dir, "sets"), fmt.Sprintf("v%d %s", t.Version, t.Value.Reveal())); err != nil {
		return err
	}
	tmp := filepath.Join(f.dir, "target.tmp")
	if err := os.WriteFile(tmp, t.Value.Reveal(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "target")); err != nil {
		return err
	}
	if f.stop == "set:after" {
		fmt.Println("stopped")
		select {}
	}
	return nil
}

func (f fileTarget) Test(_ context.Context, t rotation.Target) error {
	b, err := os.ReadFile(filepath.Join(f.dir, "target"))
	if err != nil {
		return err
	}
	if string(b) != string(t.Value.Reveal()) {
		return errors.New("target does not accept the value")
	}
	return nil
}

func (f fileTarget) Revoke(context.Context, rotation.Target) error { return nil }

func appendLine(name, line string) error {
	w, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, line)
	if err == nil {
		err = w.Sync()
	}
	return errors.Join(err, w.Close())
}

// openCrashStore opens the store in dir, its clock two hours past its
// creation so that app/key is due.
func openCrashStore(ctx context.Context, dir, stop string, now func() time.Time) (*core.Local, error) {
	reg := rotation.Connectors(rotation.ConnectorOptions{})
	reg["file"] = rotation.Kind{New: func(map[string]string, rotation.Resolver) (rotation.Connector, error) {
		return fileTarget{dir: dir, stop: stop}, nil
	}}
	return core.Open(ctx, core.Options{Dir: filepath.Join(dir, "store"), Actor: "admin", AuditSync: audit.SyncFsync, Connectors: reg, Now: now})
}

func later() time.Time { return time.Now().Add(2 * time.Hour) }

// TestSchedulerCrashChild is the child half of TestLeaderKilledMidRotation:
// a leading scheduler whose rotation stops at the given point, to be
// killed there. It does nothing in a normal test run.
func TestSchedulerCrashChild(t *testing.T) {
	env := os.Getenv(leaderCrashEnv)
	if env == "" {
		t.Skip("child process of TestLeaderKilledMidRotation")
	}
	dir, stop, _ := strings.Cut(env, " ")
	ctx := context.Background()
	l, err := openCrashStore(ctx, dir, stop, later)
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(1)
	}
	s, err := scheduler.New(l.Scheduled(), scheduler.Single{Node: "dying"}, scheduler.Config{Node: "dying", Interval: time.Hour})
	if err != nil {
		fmt.Printf("scheduler: %v\n", err)
		os.Exit(1)
	}
	run, err := s.RunOnce(ctx, time.Now())
	fmt.Printf("run ended: %+v %v\n", run, err)
	os.Exit(1)
}

// TestLeaderKilledMidRotation kills the leading scheduler's process
// (SIGKILL) in the middle of a due rotation, at the two points where the
// store and the target disagree, then lets the next leader run: it
// resumes the recorded rotation instead of starting another, so the secret
// gets one new version, the target ends up holding it, and no second new
// value ever reaches the target.
func TestLeaderKilledMidRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	for _, stop := range []string{"set:before", "set:after"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "target"), []byte("initial"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := core.Init(ctx, core.Options{Dir: filepath.Join(dir, "store"), Actor: "admin"}); err != nil {
				t.Fatal(err)
			}
			l, err := openCrashStore(ctx, dir, "", time.Now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.PutConnection(ctx, secret.Connection{Name: "file", Connector: "file", AllowedPaths: []string{"app/*"}}); err != nil {
				t.Fatal(err)
			}
			period := secret.Duration(time.Hour)
			md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "file", Length: 24}, RotationPeriod: &period}
			if _, err := l.Put(ctx, "app/key", secret.NewValue([]byte("initial")), secret.PutOptions{Metadata: md}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			child := crashtest.Start(t, "TestSchedulerCrashChild", leaderCrashEnv+"="+dir+" "+stop)
			child.Await(t, "stopped", 60*time.Second, func(line string) { t.Logf("child: %s", line) })
			child.Kill(t)

			// The next leader, in this process.
			l, err = openCrashStore(ctx, dir, "", later)
			if err != nil {
				t.Fatalf("open after SIGKILL: %v", err)
			}
			defer l.Close()
			s, err := l.Describe(ctx, "app/key")
			if err != nil {
				t.Fatal(err)
			}
			if st := s.Metadata.RotationStatus; st == nil || st.State != secret.RotationInProgress || st.Pending != 2 {
				t.Fatalf("after the kill: status %+v, want a rotation in progress with v2 pending", st)
			}
			sc, err := scheduler.New(l.Scheduled(), scheduler.Single{Node: "next"}, scheduler.Config{Node: "next", Interval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			run, err := sc.RunOnce(ctx, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Resumed) != 1 || run.Resumed[0] != "app/key" || len(run.Rotated) != 0 || !run.OK() {
				t.Fatalf("next leader's run = %+v, want app/key resumed", run)
			}
			s, err = l.Describe(ctx, "app/key")
			if err != nil {
				t.Fatal(err)
			}
			cur, err := l.Get(ctx, "app/key", secret.Selector{})
			if err != nil {
				t.Fatal(err)
			}
			target, err := os.ReadFile(filepath.Join(dir, "target"))
			if err != nil {
				t.Fatal(err)
			}
			if s.CurrentVersion != 2 || len(s.Versions) != 2 || string(target) != string(cur.Value.Reveal()) {
				t.Fatalf("after resuming: v%d current of %d versions; target holds the current value: %v", s.CurrentVersion, len(s.Versions), string(target) == string(cur.Value.Reveal()))
			}
			// Every value that reached the target is v2's: set again on
			// resumption (the same value), never a second new one.
			sets, err := os.ReadFile(filepath.Join(dir, "sets"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(sets)), "\n") {
				if line != "v2 "+string(cur.Value.Reveal()) {
					t.Errorf("the target was set to %q, not v2's value", line)
				}
			}
			// Another run finds nothing due: the rotation is done, once.
			run, err = sc.RunOnce(ctx, time.Now())
			if err != nil || run.Due != 0 {
				t.Fatalf("a later run: %+v %v", run, err)
			}
		})
	}
}

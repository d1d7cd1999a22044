package rotation_test

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
	"github.com/passman-dev/passman/secret"
)

// rotationCrashEnv carries "DIR STOP" to the child: the directory holding
// the store and the target, and where to stop ("set:before" = the set
// step is recorded and its connector call has not acted; "set:after" = the
// call returned; likewise for test).
const rotationCrashEnv = "PASSMAN_ROTATION_CRASH_CHILD"

// fileTarget is a target system that outlives the process acting on it:
// the credential it accepts is the content of a file, replaced atomically
// and synced like a database would commit a password change. In the child
// (stop set) each call prints "call STEP vN" first; at the stop point it
// prints "stopped" and waits to be killed.
type fileTarget struct {
	file string
	stop string
}

func (f fileTarget) announce(step string, version int) {
	if f.stop != "" {
		fmt.Printf("call %s v%d\n", step, version)
	}
}

func (f fileTarget) pause(point string) {
	if f.stop == point {
		fmt.Println("stopped")
		select {}
	}
}

func (f fileTarget) Set(_ context.Context, t rotation.Target) error {
	f.announce("set", t.Version)
	f.pause("set:before")
	tmp := f.file + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	_, err = w.Write(t.Value.Reveal())
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.file)
	}
	if err != nil {
		return fmt.Errorf("target: set: %w", err)
	}
	f.pause("set:after")
	return nil
}

func (f fileTarget) Test(_ context.Context, t rotation.Target) error {
	f.announce("test", t.Version)
	f.pause("test:before")
	b, err := os.ReadFile(f.file)
	if err != nil {
		return fmt.Errorf("target: test: %w", err)
	}
	if string(b) != string(t.Value.Reveal()) {
		return errors.New("target does not accept the value")
	}
	f.pause("test:after")
	return nil
}

func (f fileTarget) Revoke(context.Context, rotation.Target) error { return nil }

// openFileTargetStore opens the store in dir whose "file" connector acts on
// dir/target, stopping at stop.
func openFileTargetStore(ctx context.Context, dir, stop string) (*core.Local, error) {
	reg := rotation.Connectors(rotation.ConnectorOptions{})
	reg["file"] = rotation.Kind{New: func(map[string]string, rotation.Resolver) (rotation.Connector, error) {
		return fileTarget{file: filepath.Join(dir, "target"), stop: stop}, nil
	}}
	return core.Open(ctx, core.Options{Dir: filepath.Join(dir, "store"), Actor: "rotator", AuditSync: audit.SyncFsync, Connectors: reg})
}

// TestRotationCrashChild is the child half of TestRotationKilled: it
// rotates app/key with a rotation.Runner over the store until its
// connector stops and it is killed. It does nothing in a normal test run.
func TestRotationCrashChild(t *testing.T) {
	env := os.Getenv(rotationCrashEnv)
	if env == "" {
		t.Skip("child process of TestRotationKilled")
	}
	dir, stop, _ := strings.Cut(env, " ")
	ctx := context.Background()
	l, err := openFileTargetStore(ctx, dir, stop)
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(1)
	}
	res, err := rotation.NewRunner(l, l).Rotate(ctx, "app/key", "manual")
	// Reaching here means the stop point was never met.
	fmt.Printf("rotation ended: %+v %v\n", res, err)
	os.Exit(1)
}

// TestRotationKilled kills a real rotating process (SIGKILL) at each point
// where the store and the target system can disagree: a step recorded but
// its connector call not yet acting, and a connector call done but the
// next step not recorded. The next run must resume and leave the target
// accepting exactly the store's current value, with nothing pending.
func TestRotationKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	cases := []struct {
		stop string
		// step is the step the killed run recorded; targetNew whether the
		// target held the new value when it died.
		step      secret.RotationStep
		targetNew bool
	}{
		{"set:before", secret.StepSet, false},
		{"set:after", secret.StepSet, true},
		{"test:before", secret.StepTest, true},
		{"test:after", secret.StepTest, true},
	}
	for _, c := range cases {
		t.Run(c.stop, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			const initial = "initial-value-1"
			if err := os.WriteFile(filepath.Join(dir, "target"), []byte(initial), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := core.Init(ctx, core.Options{Dir: filepath.Join(dir, "store"), Actor: "rotator"}); err != nil {
				t.Fatal(err)
			}
			l, err := openFileTargetStore(ctx, dir, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.PutConnection(ctx, secret.Connection{Name: "file", Connector: "file", AllowedPaths: []string{"app/*"}}); err != nil {
				t.Fatal(err)
			}
			md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "file", Length: 24}}
			if _, err := l.Put(ctx, "app/key", secret.NewValue([]byte(initial)), secret.PutOptions{Metadata: md}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			child := crashtest.Start(t, "TestRotationCrashChild", rotationCrashEnv+"="+dir+" "+c.stop)
			child.Await(t, "stopped", 60*time.Second, func(line string) { t.Logf("child: %s", line) })
			child.Kill(t)

			l, err = openFileTargetStore(ctx, dir, "")
			if err != nil {
				t.Fatalf("open after SIGKILL: %v", err)
			}
			defer l.Close()
			// Where the kill landed, as the next run finds it.
			s, err := l.Describe(ctx, "app/key")
			if err != nil {
				t.Fatal(err)
			}
			st := s.Metadata.RotationStatus
			if st == nil || st.State != secret.RotationInProgress || st.Step != c.step || st.Pending != 2 || !hasPending(s, 2) {
				t.Fatalf("after the kill: status %+v, want step %s in progress with v2 pending", st, c.step)
			}
			pending, err := l.Get(ctx, "app/key", secret.Selector{Version: 2})
			if err != nil {
				t.Fatal(err)
			}
			if got := readTarget(t, dir); (got == string(pending.Value.Reveal())) != c.targetNew || (got == initial) == c.targetNew {
				t.Fatalf("after the kill the target holds the new value: %v, want %v", got == string(pending.Value.Reveal()), c.targetNew)
			}

			res, err := rotation.NewRunner(l, l).Rotate(ctx, "app/key", "manual")
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if !res.Resumed || res.From != 1 || res.To != 2 || res.State != secret.RotationSucceeded {
				t.Fatalf("resume result = %+v", res)
			}
			v, val := current(t, l, "app/key")
			if v != 2 || readTarget(t, dir) != val {
				t.Fatalf("store current v%d; the target accepts it: %v", v, readTarget(t, dir) == val)
			}
			s, err = l.Describe(ctx, "app/key")
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Versions) != 2 || versionWithStage(s, secret.StagePending) != 0 || s.Metadata.RotationStatus.State != secret.RotationSucceeded {
				t.Fatalf("after resume: %d versions, pending v%d, status %+v", len(s.Versions), versionWithStage(s, secret.StagePending), s.Metadata.RotationStatus)
			}
		})
	}
}

func readTarget(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "target"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func versionWithStage(s secret.Secret, stage secret.Stage) int {
	for _, v := range s.Versions {
		if v.HasStage(stage) {
			return v.Version
		}
	}
	return 0
}

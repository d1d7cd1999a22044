package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/passman-dev/passman/internal/synctrace"
)

const durabilityModeEnv = "PASSMAN_DURABILITY_AUDIT_SYNC"

// TestDurabilityChild is the traced half of TestAppendDurable: it appends
// entries, alone and in deferred groups, and acknowledges each after Append
// or Sync returns. It does nothing in a normal test run.
func TestDurabilityChild(t *testing.T) {
	dir := synctrace.ChildDir()
	if dir == "" {
		t.Skip("child process of TestAppendDurable")
	}
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(dir, "audit.log"), Options{Sync: SyncMode(os.Getenv(durabilityModeEnv))})
	if err != nil {
		t.Fatal(err)
	}
	synctrace.Start()
	n := 0
	for i := range 8 {
		if _, err := l.Append(ctx, sample(i)); err != nil {
			t.Fatal(err)
		}
		n++
		synctrace.Ack(n)
	}
	for i := range 4 {
		for j := range 3 {
			if _, err := l.AppendDeferred(ctx, sample(10*i+j)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		n++
		synctrace.Ack(n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAppendDurable checks the default sync mode's promise, that an entry
// survives power loss once Append (or Sync after AppendDeferred) returns, at
// the system call level: every write to the log is followed by a completed
// fsync before the entry is acknowledged. SyncWrite makes no such promise,
// and the same check must see that, or it could not see a lost fsync either.
func TestAppendDurable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    SyncMode
		durable bool
	}{{"default", "", true}, {"fsync", SyncFsync, true}, {"write", SyncWrite, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			tr := synctrace.Run(t, "TestDurabilityChild", dir, durabilityModeEnv+"="+string(tc.mode))
			err = tr.Check(filepath.Join(dir, "audit.log"))
			switch {
			case tc.durable && err != nil:
				t.Fatalf("acknowledged entries not durable: %v\ntrace:\n%s", err, tr)
			case !tc.durable && err == nil:
				t.Fatalf("the check passed without fsync\ntrace:\n%s", tr)
			case !tc.durable:
				t.Logf("as expected without fsync: %.200v", err)
			}
		})
	}
}

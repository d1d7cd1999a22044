package boltdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/internal/synctrace"
	"github.com/passman-dev/passman/store"
)

const durabilityNoSyncEnv = "PASSMAN_DURABILITY_NOSYNC"

// TestDurabilityChild is the traced half of TestCommitDurable: it commits
// with Update and with Batch, values large enough to grow the file, and
// acknowledges each commit after it returns. It does nothing in a normal
// test run.
func TestDurabilityChild(t *testing.T) {
	dir := synctrace.ChildDir()
	if dir == "" {
		t.Skip("child process of TestCommitDurable")
	}
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(dir, "store.db"), Options{NoSync: os.Getenv(durabilityNoSyncEnv) == "1"})
	if err != nil {
		t.Fatal(err)
	}
	synctrace.Start()
	value := []byte(strings.Repeat("v", 64<<10))
	for i := range 12 {
		put := d.Update
		if i%2 == 1 {
			put = d.Batch
		}
		if err := put(ctx, func(tx store.Tx) error {
			return tx.Put(fmt.Appendf(nil, "k%02d", i), value)
		}); err != nil {
			t.Fatal(err)
		}
		synctrace.Ack(i + 1)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCommitDurable checks, at the system call level, that a commit is on
// disk when Update or Batch returns: every write to the file is followed by
// a completed fdatasync before the commit is acknowledged. With NoSync it is
// not, and the same check must see that.
func TestCommitDurable(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoSync=%v", noSync), func(t *testing.T) {
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			env := durabilityNoSyncEnv + "=0"
			if noSync {
				env = durabilityNoSyncEnv + "=1"
			}
			tr := synctrace.Run(t, "TestDurabilityChild", dir, env)
			err = tr.Check(filepath.Join(dir, "store.db"))
			switch {
			case !noSync && err != nil:
				t.Fatalf("acknowledged commits not durable: %v\ntrace:\n%s", err, tr)
			case noSync && err == nil:
				t.Fatalf("the check passed with NoSync\ntrace:\n%s", tr)
			case noSync:
				t.Logf("as expected with NoSync: %.200v", err)
			}
		})
	}
}

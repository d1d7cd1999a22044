package core_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/synctrace"
	"github.com/passman-dev/passman/secret"
)

// TestDurabilityChild is the traced half of TestPutDurable: it opens the
// store with the default options, as passman does, and acknowledges each
// Put after it returns. It does nothing in a normal test run.
func TestDurabilityChild(t *testing.T) {
	dir := synctrace.ChildDir()
	if dir == "" {
		t.Skip("child process of TestPutDurable")
	}
	ctx := context.Background()
	// No background checkpoint, so every write traced is a Put's.
	l, err := core.Open(ctx, core.Options{Dir: dir, Actor: "alice", CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	synctrace.Start()
	for i := range 8 {
		if _, err := l.Put(ctx, fmt.Sprintf("dur/k%d", i%3), secret.NewValue(fmt.Appendf(nil, "value-%d", i)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		synctrace.Ack(i + 1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPutDurable checks the default configuration's promise that an
// acknowledged change survives power loss, at the system call level: when
// Put returns, every write to the audit log and to the database has been
// followed by a completed fsync, and the change's audit entry was durable
// before the database wrote anything of the change, so the store never
// records a change whose entry a power cut could lose.
func TestPutDurable(t *testing.T) {
	opts := initStore(t, "")
	dir, err := filepath.EvalSymlinks(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := synctrace.Run(t, "TestDurabilityChild", dir)
	log, db := filepath.Join(dir, core.AuditFile), filepath.Join(dir, core.DBFile)
	if err := tr.Check(log, db); err != nil {
		t.Fatalf("acknowledged Put not durable: %v\ntrace:\n%s", err, tr)
	}
	if err := tr.CheckOrder(log, db); err != nil {
		t.Fatalf("database written before the audit entry was durable: %v\ntrace:\n%s", err, tr)
	}
	// What the child wrote is there.
	l := open(t, opts)
	defer l.Close()
	for i := range 3 {
		if _, err := l.Get(context.Background(), fmt.Sprintf("dur/k%d", i), secret.Selector{}); err != nil {
			t.Fatal(err)
		}
	}
}

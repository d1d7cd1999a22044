package core_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

func populate(t *testing.T, opts core.Options, n int) {
	t.Helper()
	l := open(t, opts)
	ctx := context.Background()
	for i := range n {
		if _, err := l.Put(ctx, "app/key", secret.NewValue([]byte{byte('a' + i)}), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Get(ctx, "app/key", secret.Selector{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTruncatedAuditLogIsDetected(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 3)
	logPath := filepath.Join(opts.Dir, core.AuditFile)
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	// Drop the last entry (the get): the chain itself stays valid, only the
	// head the store recorded can tell.
	if err := os.WriteFile(logPath, bytes.Join(lines[:len(lines)-1], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := core.VerifyDir(context.Background(), opts.Dir)
	if !errors.Is(err, secret.ErrTampered) || rep.OK || rep.Broken == nil || !strings.Contains(rep.Broken.Reason, "truncated") {
		t.Fatalf("verify of a truncated log: %+v %v", rep, err)
	}
	if _, err := core.Open(context.Background(), opts); !errors.Is(err, secret.ErrTampered) {
		t.Fatalf("open with a truncated log: %v", err)
	}
	after, _ := os.ReadFile(logPath)
	if len(after) != len(bytes.Join(lines[:len(lines)-1], nil)) {
		t.Fatal("a refused open wrote to the audit log")
	}
}

func TestEditedAuditLogIsDetected(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 3)
	logPath := filepath.Join(opts.Dir, core.AuditFile)
	b, _ := os.ReadFile(logPath)
	edited := bytes.Replace(b, []byte(`"actor":"alice"`), []byte(`"actor":"mallory"`), 1)
	if bytes.Equal(b, edited) {
		t.Fatal("edit did not apply")
	}
	if err := os.WriteFile(logPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := core.VerifyDir(context.Background(), opts.Dir)
	if !errors.Is(err, secret.ErrTampered) || rep.Broken == nil || rep.Broken.Seq != 1 {
		t.Fatalf("verify of an edited log: %+v %v", rep, err)
	}
}

// TestUnrecordedEntriesAreReconciled simulates a crash between writing an
// audit entry and recording the head: the next open says so in the log and
// the chain verifies.
func TestUnrecordedEntriesAreReconciled(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 1)
	ctx := context.Background()
	lg, err := audit.Open(ctx, filepath.Join(opts.Dir, core.AuditFile), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := lg.Append(ctx, audit.Entry{Action: "secret.get", Actor: "alice", RequestID: "r", Outcome: audit.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	seq := lg.Head().Seq
	lg.Close()
	if rep, err := core.VerifyDir(ctx, opts.Dir); err != nil || !rep.OK || rep.Unconfirmed != 2 {
		t.Fatalf("before reconcile: %+v %v", rep, err)
	}
	l := open(t, opts)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := entries(t, opts)
	rec := got[seq] // the entry right after the unrecorded ones
	if rec.Action != "audit.recover" || rec.Details["unconfirmed_to"] != "5" {
		t.Fatalf("entry after the unrecorded ones: %+v", rec)
	}
	if rep, err := core.VerifyDir(ctx, opts.Dir); err != nil || !rep.OK || rep.Unconfirmed != 0 {
		t.Fatalf("after reconcile: %+v %v", rep, err)
	}
}

func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestWrongOrUnsafeKeyChangesNothing(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 2)
	before := snapshot(t, opts.Dir)
	ctx := context.Background()
	other, _ := keyring.New(time.Now())
	wrong := opts
	wrong.Keyring = other
	if _, err := core.Open(ctx, wrong); !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("open with the wrong key: %v", err)
	}
	missing := opts
	missing.KeyFile = filepath.Join(t.TempDir(), "nope.key")
	if _, err := core.Open(ctx, missing); !errors.Is(err, secret.ErrKey) {
		t.Fatalf("open with a missing key file: %v", err)
	}
	kf := filepath.Join(opts.Dir, core.KeyFile)
	if err := os.Chmod(kf, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Open(ctx, opts); !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("open with a world-readable key file: %v", err)
	}
	if err := os.Chmod(kf, 0o600); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, opts.Dir)
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Errorf("%s changed after refused opens", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("files before %d, after %d", len(before), len(after))
	}
}

func TestRotateKeys(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 3)
	ctx := context.Background()
	l := open(t, opts)
	keys, err := l.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := keys[0].ID
	rep, err := l.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rewrapped != 4 || rep.Active == old { // 3 versions + the detection seed
		t.Fatalf("rotate report %+v", rep)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.LoadFile(filepath.Join(opts.Dir, core.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if kr.Active() != rep.Active || len(kr.Keys()) != 2 || kr.Keys()[0].Retired.IsZero() {
		t.Fatalf("key file after rotation: %+v", kr.Keys())
	}
	// Only the new key is needed from now on.
	if err := kr.Remove(old); err != nil {
		t.Fatal(err)
	}
	fresh := opts
	fresh.Keyring = kr
	l = open(t, fresh)
	defer l.Close()
	for v := 1; v <= 3; v++ {
		got, err := l.Get(ctx, "app/key", secret.Selector{Version: v})
		if err != nil || string(got.Value.Reveal()) != string(rune('a'+v-1)) {
			t.Fatalf("v%d after rotation: %v", v, err)
		}
	}
	if _, err := l.RotateKeys(ctx); !errors.Is(err, secret.ErrPrecondition) {
		t.Fatalf("rotating keys from the environment: %v", err)
	}
}

func TestCorruptDatabaseIsReported(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 2)
	db := filepath.Join(opts.Dir, core.DBFile)
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite both meta pages: bbolt can no longer find its root.
	for i := range 64 {
		b[16+i] ^= 0xff
		b[4096+16+i] ^= 0xff
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = core.Open(context.Background(), opts)
	if !errors.Is(err, secret.ErrCorrupt) || secret.Class(err) != "corrupt" {
		t.Fatalf("open of a corrupt database: %v (class %q)", err, secret.Class(err))
	}
	if _, err := core.VerifyDir(context.Background(), opts.Dir); !errors.Is(err, secret.ErrCorrupt) {
		t.Fatalf("verify with a corrupt database: %v", err)
	}
}

// TestRechainedLogIsNotAdopted forges a log that drops an entry and rebuilds
// the chain after it (the chain hash is unkeyed, so this is possible) with
// more entries than the store recorded: opening must refuse it rather than
// adopt it as a crash's unconfirmed tail.
func TestRechainedLogIsNotAdopted(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 3)
	ctx := context.Background()
	logPath := filepath.Join(opts.Dir, core.AuditFile)
	orig := entries(t, opts)
	forged := filepath.Join(t.TempDir(), "forged.log")
	lg, err := audit.Open(ctx, forged, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range append(orig, orig[len(orig)-1], orig[len(orig)-1]) {
		if i == 2 { // drop the second put
			continue
		}
		e.Seq, e.PrevHash, e.Hash = 0, "", ""
		if _, err := lg.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	lg.Close()
	b, err := os.ReadFile(forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Open(ctx, opts); !errors.Is(err, secret.ErrTampered) {
		t.Fatalf("open adopted a re-chained log: %v", err)
	}
	if rep, _ := core.VerifyDir(ctx, opts.Dir); rep.OK {
		t.Fatal("verify accepted a re-chained log")
	}
}

func TestMissingAuditLogIsNotRecreated(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 1)
	logPath := filepath.Join(opts.Dir, core.AuditFile)
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Open(context.Background(), opts); !errors.Is(err, secret.ErrTampered) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("open without the audit log: %v", err)
	}
	if _, err := os.Stat(logPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused open recreated the audit log")
	}
}

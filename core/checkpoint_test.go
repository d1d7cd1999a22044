package core_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

func loadKeyring(t testing.TB, opts core.Options) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.LoadFile(filepath.Join(opts.Dir, core.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// recorded reads the checkpoint the closed store in dir recorded.
func recorded(t testing.TB, dir string) audit.Checkpoint {
	t.Helper()
	ctx := context.Background()
	db, err := boltdb.Open(ctx, filepath.Join(dir, core.DBFile), boltdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := store.ReadMeta(ctx, db, core.AuditHeadMeta)
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.ParseCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forgeHead writes rec as the checkpoint of the closed store in dir, as
// someone with write access to the database file can.
func forgeHead(t testing.TB, dir string, rec []byte) {
	t.Helper()
	ctx := context.Background()
	db, err := boltdb.Open(ctx, filepath.Join(dir, core.DBFile), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(ctx, func(tx store.Tx) error { return store.PutMeta(tx, core.AuditHeadMeta, rec) }); err != nil {
		t.Fatal(err)
	}
}

// rechain rewrites the log of the closed store in dir with edit applied to
// every entry, re-computing the whole chain as someone without the key can,
// and returns the new head.
func rechain(t testing.TB, dir string, edit func(*audit.Entry)) audit.Head {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, core.AuditFile)
	var es []audit.Entry
	if err := audit.Read(ctx, path, audit.Filter{}, func(e audit.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "forged.log")
	lg, err := audit.Open(ctx, tmp, audit.Options{Sync: audit.SyncWrite})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		edit(&e)
		if _, err := lg.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	head := lg.Head()
	if err := lg.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return head
}

func dropLastLine(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
	if err := os.WriteFile(path, b[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
}

func hasWarning(rep audit.Report, part string) bool {
	return slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, part) })
}

// TestCheckpointWindow: reads write nothing to the database, yet within the
// checkpoint interval the store records their entries, so that cutting them
// off the log after a crash (no clean Close) is caught. With a checkpointer
// that never ticks, the same cut goes unnoticed: the window is what bounds
// it.
func TestCheckpointWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval time.Duration
		caught   bool
	}{
		{"interval=20ms", 20 * time.Millisecond, true},
		{"interval=1h", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			opts := initStore(t, audit.SyncFsync)
			opts.CheckpointInterval = tc.interval
			l := open(t, opts)
			if _, err := l.Put(ctx, "app/key", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := l.Get(ctx, "app/key", secret.Selector{}); err != nil {
					t.Fatal(err)
				}
			}
			// A denial is audited without a database write too.
			if _, err := l.Get(core.WithSubject(ctx, policy.Subject{ID: "mallory", Kind: policy.KindUser}), "app/key", secret.Selector{}); !errors.Is(err, secret.ErrPermissionDenied) {
				t.Fatalf("get as a stranger: %v", err)
			}
			head := core.AuditHead(l)
			start := time.Now()
			// Wait out the window; the deadline only absorbs a loaded machine.
			time.Sleep(3 * min(tc.interval, 100*time.Millisecond))
			var cp audit.Checkpoint
			for {
				var err error
				if cp, err = core.RecordedCheckpoint(ctx, l); err != nil {
					t.Fatal(err)
				}
				if cp.Seq >= head.Seq || !tc.caught || time.Since(start) > 10*time.Second {
					break
				}
				time.Sleep(tc.interval)
			}
			t.Logf("recorded seq %d of %d after %v", cp.Seq, head.Seq, time.Since(start).Round(time.Millisecond))
			if tc.caught && (cp.Head != head || !cp.Signed()) {
				t.Fatalf("after the window the store records %+v, want %+v signed", cp, head)
			}
			if err := core.Crash(l); err != nil {
				t.Fatal(err)
			}
			dropLastLine(t, filepath.Join(opts.Dir, core.AuditFile))
			rep, err := core.VerifyDir(ctx, opts.Dir)
			if !tc.caught {
				if err != nil || !rep.OK {
					t.Fatalf("cut within the window: %+v %v (the control should pass)", rep, err)
				}
				return
			}
			if !errors.Is(err, secret.ErrTampered) || rep.OK || rep.Broken == nil || !strings.Contains(rep.Broken.Reason, "truncated") {
				t.Fatalf("verify of a log cut after the window: %+v %v", rep, err)
			}
			if _, err := core.Open(ctx, opts); !errors.Is(err, secret.ErrTampered) {
				t.Fatalf("open of a log cut after the window: %v", err)
			}
		})
	}
}

// TestForgedCheckpoint: someone who can write both files rewrites an entry,
// re-computes the chain and records its head, keeping the old signature,
// inventing one, or naming a key of their own. The chain alone cannot tell,
// and says the signature was not checked; with the key the forgery is
// caught, and the store will not open on it.
func TestForgedCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 3)
	kr := loadKeyring(t, opts)
	orig := recorded(t, opts.Dir)
	if !orig.Signed() || orig.KeyID != kr.Active() {
		t.Fatalf("recorded checkpoint %+v is not signed with the active key", orig)
	}
	if rep, err := core.VerifyDirWithKeyring(ctx, opts.Dir, kr); err != nil || !rep.OK || rep.Signature != audit.SignatureValid || len(rep.Warnings) > 0 {
		t.Fatalf("verify of an untouched store: %+v %v", rep, err)
	}
	// An open store (the server's verify) checks with its own keyring.
	l := open(t, opts)
	rep, err := l.VerifyAudit(ctx)
	if cerr := l.Close(); err != nil || cerr != nil || !rep.OK || rep.Signature != audit.SignatureValid || rep.SignedBy != kr.Active() {
		t.Fatalf("Local.VerifyAudit: %+v %v %v", rep, err, cerr)
	}
	orig = recorded(t, opts.Dir)
	head := rechain(t, opts.Dir, func(e *audit.Entry) {
		if e.Seq == 2 {
			e.Path = "app/elsewhere"
		}
	})
	for name, forged := range map[string]audit.Checkpoint{
		"old signature":  {Head: head, Time: orig.Time, KeyID: orig.KeyID, MAC: orig.MAC},
		"made-up mac":    {Head: head, Time: orig.Time, KeyID: orig.KeyID, MAC: strings.Repeat("5a", 32)},
		"key of its own": {Head: head, Time: orig.Time, KeyID: "kmallory", MAC: strings.Repeat("5a", 32)},
	} {
		rec, err := forged.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		forgeHead(t, opts.Dir, rec)
		rep, err := core.VerifyDir(ctx, opts.Dir)
		if err != nil || !rep.OK || rep.Signature != audit.SignatureUnchecked || !hasWarning(rep, "signature not checked") {
			t.Errorf("%s: verify without the key: %+v %v; want OK, signature unchecked and said so", name, rep, err)
		}
		rep, err = core.VerifyDirWithKeyring(ctx, opts.Dir, kr)
		if forged.KeyID != orig.KeyID {
			if !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), "kmallory") {
				t.Errorf("%s: verify with the key: %+v %v; want ErrKey naming the key", name, rep, err)
			}
		} else if !errors.Is(err, secret.ErrTampered) || rep.OK || rep.Signature != audit.SignatureInvalid || rep.Broken == nil || !strings.Contains(rep.Broken.Reason, "invalid signature") {
			t.Errorf("%s: verify with the key: %+v %v; want a broken report naming the signature", name, rep, err)
		}
		if l, err := core.Open(ctx, opts); err == nil {
			l.Close()
			t.Errorf("%s: the store opened on a forged checkpoint", name)
		} else if !errors.Is(err, secret.ErrTampered) && !errors.Is(err, secret.ErrKey) {
			t.Errorf("%s: open: %v", name, err)
		}
	}
}

// TestUnsignedCheckpoint: a checkpoint from before checkpoints were signed
// verifies with a warning, with or without the key, until the store is next
// opened with its key; that open checks the whole chain, says in the log
// that signing began, and signs the head.
func TestUnsignedCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 2)
	kr := loadKeyring(t, opts)
	cp := recorded(t, opts.Dir)
	legacy, _ := json.Marshal(cp.Head)
	forgeHead(t, opts.Dir, legacy)
	for _, k := range []*keyring.Keyring{nil, kr} {
		rep, err := core.VerifyDirWithKeyring(ctx, opts.Dir, k)
		if err != nil || !rep.OK || rep.Signature != audit.SignatureUnsigned || !hasWarning(rep, "unsigned checkpoint") {
			t.Fatalf("verify of an unsigned checkpoint (key %v): %+v %v", k != nil, rep, err)
		}
	}
	l := open(t, opts)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	es := entries(t, opts)
	sign := es[cp.Seq]
	if sign.Action != "audit.sign" || sign.Details["unsigned_seq"] != "4" || sign.Details["key_id"] != kr.Active() {
		t.Fatalf("entry after the unsigned head: %+v", sign)
	}
	rep, err := core.VerifyDirWithKeyring(ctx, opts.Dir, kr)
	if err != nil || !rep.OK || rep.Signature != audit.SignatureValid || len(rep.Warnings) > 0 {
		t.Fatalf("verify after the store signed its head: %+v %v", rep, err)
	}

	// An unsigned head is vouched for only after the chain up to it checks:
	// a naive edit made before the upgrade stops the open.
	forgeHead(t, opts.Dir, legacy)
	logPath := filepath.Join(opts.Dir, core.AuditFile)
	b, _ := os.ReadFile(logPath)
	if err := os.WriteFile(logPath, bytes.Replace(b, []byte(`"actor":"alice"`), []byte(`"actor":"mallor"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Open(ctx, opts); !errors.Is(err, secret.ErrTampered) || !strings.Contains(err.Error(), "entry 1") {
		t.Fatalf("open on an edited log with an unsigned head: %v", err)
	}
}

// TestCheckpointKeyRotation: a checkpoint names the master key it was
// signed with, so one signed before a rotation (the store crashed before
// recording another) still verifies after it, and the store re-signs it
// with the new key when opened. A keyring of the store's without the signing
// key cannot vouch for it and says so, rather than passing it.
func TestCheckpointKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	populate(t, opts, 2)
	before := recorded(t, opts.Dir)
	oldKey := loadKeyring(t, opts).Active()
	if before.KeyID != oldKey {
		t.Fatalf("checkpoint signed by %s, want %s", before.KeyID, oldKey)
	}

	l := open(t, opts)
	if _, err := l.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	kr := loadKeyring(t, opts)
	newKey := kr.Active()
	if newKey == oldKey || !kr.Has(oldKey) {
		t.Fatalf("rotation: active %s, old %s kept %v", newKey, oldKey, kr.Has(oldKey))
	}
	rep, err := core.VerifyDirWithKeyring(ctx, opts.Dir, kr)
	if err != nil || !rep.OK || rep.Signature != audit.SignatureValid || rep.SignedBy != newKey {
		t.Fatalf("verify after rotation: %+v %v; want signed by %s", rep, err, newKey)
	}

	forgeHead(t, opts.Dir, mustMarshal(t, before))
	rep, err = core.VerifyDirWithKeyring(ctx, opts.Dir, kr)
	if err != nil || !rep.OK || rep.Signature != audit.SignatureValid || rep.SignedBy != oldKey || rep.Unconfirmed == 0 {
		t.Fatalf("verify of a pre-rotation checkpoint with the rotated keyring: %+v %v", rep, err)
	}
	newOnly, err := keyring.FromEnv(strings.Split(kr.EncodeEnv(), ",")[0])
	if err != nil || newOnly.Active() != newKey || newOnly.Has(oldKey) {
		t.Fatalf("new-key keyring: %v", err)
	}
	if rep, err := core.VerifyDirWithKeyring(ctx, opts.Dir, newOnly); !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), oldKey) || rep.Signature != audit.SignatureUnchecked {
		t.Fatalf("verify with the new key alone: %+v %v; want ErrKey naming %s", rep, err, oldKey)
	}
	envOpts := opts
	envOpts.Keyring = newOnly
	if _, err := core.Open(ctx, envOpts); !errors.Is(err, secret.ErrKey) || !strings.Contains(err.Error(), oldKey) {
		t.Fatalf("open with the new key alone: %v", err)
	}

	// Opened with the rotated keyring, the store re-signs with the new key,
	// after which the new key alone verifies it.
	l = open(t, opts)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if cp := recorded(t, opts.Dir); cp.KeyID != newKey {
		t.Fatalf("after open with the rotated keyring the checkpoint is signed by %s, want %s", cp.KeyID, newKey)
	}
	if rep, err := core.VerifyDirWithKeyring(ctx, opts.Dir, newOnly); err != nil || !rep.OK || rep.Signature != audit.SignatureValid {
		t.Fatalf("verify with the new key alone after re-signing: %+v %v", rep, err)
	}
}

// TestNoKeyMaterialInAudit: neither the master key nor the derived
// checkpoint key appears in the audit log, the database, a report or an
// error, whatever the checkpoint's fate.
func TestNoKeyMaterialInAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	material := bytes.Repeat([]byte{0x5c}, keyring.KeySize)
	kr, err := keyring.FromEnv(base64.StdEncoding.EncodeToString(material))
	if err != nil {
		t.Fatal(err)
	}
	derived, err := kr.DeriveKey(kr.Active(), core.CheckpointKeyLabel)
	if err != nil {
		t.Fatal(err)
	}
	var forbidden []string
	for _, k := range [][]byte{material, derived} {
		forbidden = append(forbidden, hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), string(k))
	}
	opts := core.Options{Dir: filepath.Join(t.TempDir(), "store"), Actor: "alice", AuditSync: audit.SyncWrite, Keyring: kr, CheckpointInterval: 10 * time.Millisecond}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	populate(t, opts, 2)
	var seen []string
	rep, err := core.VerifyDirWithKeyring(ctx, opts.Dir, kr)
	seen = append(seen, fmt.Sprint(rep, err))
	head := rechain(t, opts.Dir, func(e *audit.Entry) { e.Actor = "mallory" })
	cp := recorded(t, opts.Dir)
	cp.Head = head
	forgeHead(t, opts.Dir, mustMarshal(t, cp))
	rep, err = core.VerifyDirWithKeyring(ctx, opts.Dir, kr)
	if !errors.Is(err, secret.ErrTampered) {
		t.Fatalf("forged head verified: %+v %v", rep, err)
	}
	js, _ := json.Marshal(rep)
	seen = append(seen, err.Error(), string(js))
	_, err = core.Open(ctx, opts)
	seen = append(seen, fmt.Sprint(err))
	cp.KeyID = "kother"
	forgeHead(t, opts.Dir, mustMarshal(t, cp))
	_, err = core.Open(ctx, opts)
	seen = append(seen, fmt.Sprint(err))
	for _, name := range []string{core.AuditFile, core.DBFile} {
		b, err := os.ReadFile(filepath.Join(opts.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(b))
	}
	for i, s := range seen {
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Fatalf("output %d holds key material", i)
			}
		}
	}
}

func mustMarshal(t testing.TB, c audit.Checkpoint) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package core_test

import (
	"bytes"
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
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// TestBackupRestoreDrill backs up a store while writers keep writing,
// restores it into a fresh directory, and checks that every write
// acknowledged before the backup began is there, that the restored
// history is one the writers produced (no torn state), that the audit
// chain verifies, and that the restored store serves reads and writes.
func TestBackupRestoreDrill(t *testing.T) {
	t.Parallel()
	for _, logical := range []bool{false, true} {
		t.Run(fmt.Sprintf("logical=%v", logical), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			opts := initStore(t, audit.SyncWrite)
			l := open(t, opts)
			defer l.Close()

			// Writers: each writes its own secret's versions 1, 2, ...
			// and publishes the last acknowledged version.
			const writers = 4
			var acked [writers]atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 1; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := l.Put(ctx, fmt.Sprintf("load/w%d", w), secret.NewValue(fmt.Appendf(nil, "w%d value %d", w, n)), secret.PutOptions{}); err != nil {
							t.Error(err)
							return
						}
						acked[w].Store(int64(n))
					}
				}()
			}
			// Every writer acknowledged some: a writer scheduled late
			// would otherwise have no secret in the backup to check.
			waitUntil(t, func() bool {
				for w := range writers {
					if acked[w].Load() < 5 {
						return false
					}
				}
				return true
			})
			var before [writers]int64
			for w := range writers {
				before[w] = acked[w].Load()
			}
			var buf bytes.Buffer
			h, err := l.Backup(ctx, &buf, backup.Options{Logical: logical})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // writes after the backup: not required
			close(stop)
			wg.Wait()
			if h.AuditSeq == 0 || len(h.KeyIDs) == 0 {
				t.Fatalf("header = %+v", h)
			}

			// A fresh directory, and the master key the operator kept.
			dst := core.Options{Dir: filepath.Join(t.TempDir(), "restored"), KeyFile: filepath.Join(opts.Dir, core.KeyFile), Actor: "alice", AuditSync: audit.SyncWrite}
			rep, err := core.Restore(ctx, dst, bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Header.StoreID != h.StoreID {
				t.Errorf("restored store %s, backed up %s", rep.Header.StoreID, h.StoreID)
			}
			if r, err := core.VerifyDir(ctx, dst.Dir); err != nil || !r.OK {
				t.Fatalf("audit verify of the restored store: %+v %v", r, err)
			}
			r := open(t, dst)
			defer r.Close()
			for w := range writers {
				path := fmt.Sprintf("load/w%d", w)
				s, err := r.Describe(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				if int64(s.CurrentVersion) < before[w] {
					t.Errorf("%s: restored v%d, but v%d was acknowledged before the backup", path, s.CurrentVersion, before[w])
				}
				v, err := r.Get(ctx, path, secret.Selector{})
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("w%d value %d", w, s.CurrentVersion); string(v.Value.Reveal()) != want {
					t.Errorf("%s = %q, want %q", path, v.Value.Reveal(), want)
				}
			}
			if _, err := r.Put(ctx, "after/restore", secret.NewValue([]byte("new")), secret.PutOptions{}); err != nil {
				t.Fatalf("the restored store does not take writes: %v", err)
			}
			var restored bool
			for _, e := range entries(t, dst) {
				restored = restored || e.Action == core.ActionRestore && e.Details["store_id"] == h.StoreID
			}
			if !restored {
				t.Error("the restore is not on the restored store's audit log")
			}
		})
	}
}

// TestBackupRefusals: a non-admin cannot take a backup, and it is
// audited; a restore refuses a wrong key and an existing store before
// writing anything, and a damaged backup leaves nothing behind.
func TestBackupRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	defer l.Close()
	if _, err := l.Put(ctx, "app/x", secret.NewValue([]byte("backup-canary-value-77")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	bob := core.WithSubject(ctx, policy.Subject{ID: "bob", Kind: policy.KindToken})
	if _, err := l.Backup(bob, &buf, backup.Options{}); !errors.Is(err, secret.ErrPermissionDenied) || buf.Len() != 0 {
		t.Fatalf("backup by a non-admin: %v, %d bytes written", err, buf.Len())
	}
	if _, err := l.Backup(ctx, &buf, backup.Options{Logical: true}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("backup-canary-value-77")) {
		t.Fatal("the backup holds a value in plaintext")
	}

	other, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := core.Restore(ctx, core.Options{Dir: dst, Keyring: other, Actor: "alice"}, bytes.NewReader(buf.Bytes())); !errors.Is(err, secret.ErrKey) {
		t.Errorf("restore with another key: %v, want ErrKey", err)
	}
	if _, err := core.Restore(ctx, core.Options{Dir: opts.Dir, Actor: "alice"}, bytes.NewReader(buf.Bytes())); !errors.Is(err, secret.ErrPrecondition) {
		t.Errorf("restore over a store: %v, want ErrPrecondition", err)
	}
	b := buf.Bytes()
	for name, damaged := range map[string][]byte{
		"truncated": b[:len(b)-40],
		"flipped":   append(append(bytes.Clone(b[:len(b)/2]), b[len(b)/2]^0x40), b[len(b)/2+1:]...),
	} {
		dst := core.Options{Dir: filepath.Join(t.TempDir(), "r"), KeyFile: filepath.Join(opts.Dir, core.KeyFile), Actor: "alice"}
		_, err := core.Restore(ctx, dst, bytes.NewReader(damaged))
		if !errors.Is(err, secret.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
		if _, err := core.Open(ctx, dst); err == nil || !strings.Contains(err.Error(), "no store") {
			t.Errorf("%s: a damaged restore left a store behind (open: %v)", name, err)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

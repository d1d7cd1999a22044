package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
	"github.com/passman-dev/passman/store/etcd"
)

// TestBackupFromEtcd: a store held in etcd (here, a bbolt store's keyspace
// copied under a deployment prefix, as a migration leaves it) is backed up
// as a logical export at one revision, and that backup restores into a new
// bbolt store that opens with the store's key, verifies its audit chain
// and serves its values.
func TestBackupFromEtcd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	for _, p := range []string{"app/a", "app/b"} {
		if _, err := l.Put(ctx, p, secret.NewValue([]byte("etcd backup value of "+p)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := boltdb.Open(ctx, filepath.Join(opts.Dir, core.DBFile), boltdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.Shared(t)
	db := etcdDB(t, c, etcdtest.Prefix(t.Name()))
	var kvs [][2][]byte
	if err := src.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			kvs = append(kvs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if err := db.Update(ctx, func(tx store.Tx) error {
		for _, kv := range kvs {
			if err := tx.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	h, err := core.BackupBackend(ctx, db, filepath.Join(opts.Dir, core.AuditFile), &buf, backup.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if h.Source != "etcd" || h.Revision == 0 {
		t.Fatalf("header = %+v, want an etcd revision", h)
	}
	if bytes.Contains(buf.Bytes(), []byte("etcd backup value of")) {
		t.Fatal("the backup holds a value in plaintext")
	}
	dst := core.Options{Dir: filepath.Join(t.TempDir(), "restored"), KeyFile: filepath.Join(opts.Dir, core.KeyFile), Actor: "alice", AuditSync: audit.SyncWrite}
	if _, err := core.Restore(ctx, dst, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if r, err := core.VerifyDir(ctx, dst.Dir); err != nil || !r.OK {
		t.Fatalf("audit verify: %+v %v", r, err)
	}
	r := open(t, dst)
	defer r.Close()
	for _, p := range []string{"app/a", "app/b"} {
		v, err := r.Get(ctx, p, secret.Selector{})
		if err != nil || string(v.Value.Reveal()) != "etcd backup value of "+p {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// etcdDB opens the etcd store at prefix on c, closed when the test ends.
func etcdDB(t *testing.T, c *etcdtest.Cluster, prefix string) *etcd.DB {
	t.Helper()
	db, err := etcd.Open(context.Background(), etcd.Config{Endpoints: c.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// boltBackup is a backup of a new local store that fill has written to,
// with the store's keyring.
func boltBackup(t *testing.T, fill func(*core.Local)) (*bytes.Buffer, *keyring.Keyring) {
	t.Helper()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	fill(l)
	var buf bytes.Buffer
	if _, err := l.Backup(context.Background(), &buf, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.LoadFile(filepath.Join(opts.Dir, core.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return &buf, kr
}

// TestRestoreSharedFromBolt: a bbolt store's backup restores straight into
// an etcd prefix, its chain becoming server pm-1's there; a prefix that
// holds anything is refused (and left as it was) unless the restore is
// forced; the restored deployment verifies every chain and serves the
// values and tokens to the server that goes on with the chain.
func TestRestoreSharedFromBolt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var tok string
	buf, kr := boltBackup(t, func(l *core.Local) {
		for _, p := range []string{"app/a", "app/b"} {
			if _, err := l.Put(ctx, p, secret.NewValue([]byte("restored value of "+p)), secret.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if tok, _, err = l.CreateToken(ctx, secret.TokenRequest{Identity: "ci"}); err != nil {
			t.Fatal(err)
		}
	})
	c := etcdtest.Shared(t)
	prefix := etcdtest.Prefix(t.Name())
	db := etcdDB(t, c, prefix)
	if err := db.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("other"), []byte("x")) }); err != nil {
		t.Fatal(err)
	}
	dst := core.Options{Dir: filepath.Join(t.TempDir(), "pm-1"), Keyring: kr, Actor: "alice", AuditSync: audit.SyncWrite, Backend: db, ServerID: "pm-1"}
	if _, err := core.RestoreShared(ctx, dst, bytes.NewReader(buf.Bytes()), false); !errors.Is(err, secret.ErrPrecondition) {
		t.Fatalf("restore into a prefix that holds a key: %v, want refused", err)
	}
	var keys int
	if err := db.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func([]byte, []byte) (bool, error) { keys++; return true, nil })
	}); err != nil || keys != 1 {
		t.Fatalf("after the refused restore the prefix holds %d keys (%v), want the 1 it had", keys, err)
	}
	if _, err := os.Stat(filepath.Join(dst.Dir, core.AuditFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused restore left an audit log: %v", err)
	}
	other := dst
	other.KeyFile, other.Keyring = filepath.Join(t.TempDir(), "missing.key"), nil
	if _, err := core.RestoreShared(ctx, other, bytes.NewReader(buf.Bytes()), true); err == nil {
		t.Fatal("restore without the master key")
	}
	rep, err := core.RestoreShared(ctx, dst, bytes.NewReader(buf.Bytes()), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 1 || rep.Keys == 0 || rep.ServerID != "pm-1" || rep.AuditEntries == 0 {
		t.Errorf("report %+v", rep)
	}
	reps, err := core.VerifyCluster(ctx, etcdDB(t, c, prefix), kr)
	if err != nil || len(reps) != 1 || reps[0].Server != "pm-1" || !reps[0].Report.OK {
		t.Fatalf("chains of the restored prefix: %+v, %v", reps, err)
	}
	dst.Backend = etcdDB(t, c, prefix)
	r := open(t, dst)
	defer r.Close()
	for _, p := range []string{"app/a", "app/b"} {
		v, err := r.Get(ctx, p, secret.Selector{})
		if err != nil || string(v.Value.Reveal()) != "restored value of "+p {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := r.LookupToken(ctx, tok); err != nil {
		t.Errorf("a token of the backup: %v", err)
	}
	if rep, err := r.VerifyAudit(ctx); err != nil || !rep.OK {
		t.Errorf("audit verify on the restored server: %+v, %v", rep, err)
	}
	if _, err := r.Put(ctx, "app/c", secret.NewValue([]byte("new")), secret.PutOptions{}); err != nil {
		t.Errorf("a write on the restored store: %v", err)
	}
	// A second restore into the now full prefix is refused.
	again := dst
	again.Dir, again.Backend = filepath.Join(t.TempDir(), "pm-2"), etcdDB(t, c, prefix)
	if _, err := core.RestoreShared(ctx, again, bytes.NewReader(buf.Bytes()), false); !errors.Is(err, secret.ErrPrecondition) {
		t.Errorf("restore into a restored prefix: %v, want refused", err)
	}
}

// TestRestoreSharedNestedPrefix: a forced restore into a prefix that is the
// parent of another deployment's (passman/ over passman/prod/) is refused
// before anything is removed: the nested store keeps every key and its
// chain verifies.
func TestRestoreSharedNestedPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	buf, kr := boltBackup(t, func(l *core.Local) {
		if _, err := l.Put(ctx, "app/a", secret.NewValue([]byte("nested value")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	c := etcdtest.Shared(t)
	parent := etcdtest.Prefix(t.Name())
	prod := core.Options{Dir: filepath.Join(t.TempDir(), "prod"), Keyring: kr, Actor: "alice", AuditSync: audit.SyncWrite,
		Backend: etcdDB(t, c, parent+"prod/"), ServerID: "pm-1"}
	if _, err := core.RestoreShared(ctx, prod, bytes.NewReader(buf.Bytes()), false); err != nil {
		t.Fatal(err)
	}
	count := func(db *etcd.DB) int {
		n := 0
		if err := db.View(ctx, func(tx store.Tx) error {
			return tx.Scan(nil, nil, func([]byte, []byte) (bool, error) { n++; return true, nil })
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count(etcdDB(t, c, parent+"prod/"))
	dst := core.Options{Dir: filepath.Join(t.TempDir(), "pm-9"), Keyring: kr, Actor: "alice", AuditSync: audit.SyncWrite,
		Backend: etcdDB(t, c, parent), ServerID: "pm-9"}
	if _, err := core.RestoreShared(ctx, dst, bytes.NewReader(buf.Bytes()), true); !errors.Is(err, secret.ErrPrecondition) || !strings.Contains(err.Error(), "prod/") {
		t.Fatalf("forced restore over a nested deployment: %v, want refused naming it", err)
	}
	if after := count(etcdDB(t, c, parent+"prod/")); after != before || before == 0 {
		t.Errorf("the nested store holds %d keys after the refused restore, want the %d it had", after, before)
	}
	if reps, err := core.VerifyCluster(ctx, etcdDB(t, c, parent+"prod/"), kr); err != nil || len(reps) != 1 || !reps[0].Report.OK {
		t.Errorf("the nested store's chains: %+v, %v", reps, err)
	}
	if _, err := os.Stat(filepath.Join(dst.Dir, core.AuditFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused restore left an audit log: %v", err)
	}
}

// failingBackend is a real etcd store whose Update number failAt (from 1)
// fails before it writes, as an etcd that loses quorum mid-restore would.
type failingBackend struct {
	*etcd.DB
	failAt, n int
}

var errInjected = errors.New("injected: etcd unavailable")

func (f *failingBackend) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.n++; f.n == f.failAt {
		return errInjected
	}
	return f.DB.Update(ctx, fn)
}

// TestRestoreSharedPartial: a restore into etcd that fails half-way, in
// the copy or in a forced restore's clearing, leaves no store marker, so
// no server opens the half-written prefix and serves it as the store; the
// forced restore run again then completes and verifies.
func TestRestoreSharedPartial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	buf, kr := boltBackup(t, func(l *core.Local) {
		if _, err := l.Put(ctx, "app/a", secret.NewValue([]byte("partial value")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	c := etcdtest.Shared(t)
	marked := func(db *etcd.DB) bool {
		found := false
		if err := db.View(ctx, func(tx store.Tx) error {
			_, err := tx.Get([]byte("m/store"))
			if found = err == nil; errors.Is(err, store.ErrKeyNotFound) {
				return nil
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}
	restore := func(b store.Backend, force bool) error {
		dst := core.Options{Dir: filepath.Join(t.TempDir(), "pm-1"), Keyring: kr, Actor: "alice", AuditSync: audit.SyncWrite, Backend: b, ServerID: "pm-1"}
		_, err := core.RestoreShared(ctx, dst, bytes.NewReader(buf.Bytes()), force)
		return err
	}

	// The copy fails at its second write (the audit chain's).
	freshPrefix := etcdtest.Prefix(t.Name())
	fresh := etcdDB(t, c, freshPrefix)
	if err := restore(&failingBackend{DB: fresh, failAt: 2}, false); !errors.Is(err, errInjected) {
		t.Fatalf("restore whose copy fails: %v", err)
	}
	if marked(fresh) {
		t.Error("a restore that failed in its copy left a store marker: a server would serve the partial prefix")
	}
	if err := restore(fresh, true); err != nil {
		t.Fatalf("the forced restore run again: %v", err)
	}
	if reps, err := core.VerifyCluster(ctx, etcdDB(t, c, freshPrefix), kr); err != nil || len(reps) != 1 || !reps[0].Report.OK {
		t.Errorf("chains after the forced restore: %+v, %v", reps, err)
	}

	// A forced restore over an old store of more keys than one clearing
	// transaction takes fails at its second write.
	old := etcdDB(t, c, etcdtest.Prefix(t.Name()))
	if err := old.Update(ctx, func(tx store.Tx) error {
		for i := range 600 {
			if err := tx.Put(fmt.Appendf(nil, "f/old-%04d", i), []byte("x")); err != nil {
				return err
			}
		}
		return tx.Put([]byte("m/store"), []byte("old"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := restore(&failingBackend{DB: old, failAt: 2}, true); !errors.Is(err, errInjected) {
		t.Fatalf("forced restore whose clearing fails: %v", err)
	}
	if marked(old) {
		t.Error("a forced restore that failed while clearing left the old store marker over a partly removed store")
	}
}

// rewriteBackup is b with its header changed by header and its database
// by db (a bbolt file, as a bbolt store's backup holds): what a hostile
// or damaged backup holds, with a valid checksum.
func rewriteBackup(t *testing.T, b []byte, header func(*backup.Header), db func(store.Backend)) []byte {
	t.Helper()
	ctx := context.Background()
	br, err := backup.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	h := br.Header
	header(&h)
	dir := t.TempDir()
	var kinds []backup.Kind
	for {
		k, sec, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(int(k))), data, 0o600); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, k)
	}
	dbFile := filepath.Join(dir, strconv.Itoa(int(backup.KindBoltDB)))
	bdb, err := boltdb.Open(ctx, dbFile, boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db(bdb)
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	bw, err := backup.NewWriter(&out, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		w, err := bw.Section(k)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(int(k))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestRestoreSharedHostileBackup: a backup whose database holds a key
// outside a store's keyspace (one that would land in a deployment nested
// below the target prefix), or whose header names a server id no server
// may have (it names keys in the target), is refused as corrupt; the
// target is left holding no store.
func TestRestoreSharedHostileBackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	buf, kr := boltBackup(t, func(l *core.Local) {
		if _, err := l.Put(ctx, "app/a", secret.NewValue([]byte("hostile value")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	c := etcdtest.Shared(t)
	for name, b := range map[string][]byte{
		"foreign key": rewriteBackup(t, buf.Bytes(), func(*backup.Header) {}, func(db store.Backend) {
			if err := db.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("prod/m/store"), []byte("x")) }); err != nil {
				t.Fatal(err)
			}
		}),
		"server id": rewriteBackup(t, buf.Bytes(), func(h *backup.Header) { h.ServerID = "../pm-1/00000000000000000001" }, func(store.Backend) {}),
	} {
		prefix := etcdtest.Prefix(t.Name())
		db := etcdDB(t, c, prefix)
		dst := core.Options{Dir: filepath.Join(t.TempDir(), "pm-1"), Keyring: kr, Actor: "alice", AuditSync: audit.SyncWrite, Backend: db, ServerID: "pm-1"}
		if _, err := core.RestoreShared(ctx, dst, bytes.NewReader(b), false); !errors.Is(err, secret.ErrCorrupt) {
			t.Errorf("%s: restore: %v, want refused as corrupt", name, err)
		}
		// The restore closes its backend once it has opened the store.
		check := etcdDB(t, c, prefix)
		resp, err := check.Client().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if k := string(kv.Key); k == prefix+"m/store" || strings.HasPrefix(k, prefix+"prod/") {
				t.Errorf("%s: the refused restore wrote %q", name, k)
			}
		}
	}
}

// TestOneJobPerPrefix: while a restore or migration holds an etcd prefix,
// another restore into it, forced or not, and a migration into it are
// refused as conflicts and write nothing; once it is released they run.
func TestOneJobPerPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	buf, kr := boltBackup(t, func(l *core.Local) {
		if _, err := l.Put(ctx, "app/a", secret.NewValue([]byte("one job value")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	c := etcdtest.Shared(t)
	prefix := etcdtest.Prefix(t.Name())
	db := etcdDB(t, c, prefix)
	_, release, err := db.Exclusive(ctx, "restore")
	if err != nil {
		t.Fatal(err)
	}
	restore := func(force bool) error {
		dst := core.Options{Dir: filepath.Join(t.TempDir(), "pm-1"), Keyring: kr, Actor: "alice", AuditSync: audit.SyncWrite, Backend: etcdDB(t, c, prefix), ServerID: "pm-1"}
		_, err := core.RestoreShared(ctx, dst, bytes.NewReader(buf.Bytes()), force)
		return err
	}
	for _, force := range []bool{false, true} {
		if err := restore(force); !errors.Is(err, secret.ErrConflict) {
			t.Errorf("restore (force %v) into a held prefix: %v, want a conflict", force, err)
		}
	}
	src := initStore(t, audit.SyncWrite)
	if _, err := core.Migrate(ctx, src, etcdDB(t, c, prefix), "pm-1"); !errors.Is(err, secret.ErrConflict) {
		t.Errorf("migration into a held prefix: %v, want a conflict", err)
	}
	if err := db.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, _ []byte) (bool, error) {
			t.Errorf("refused jobs wrote %q", k)
			return false, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := restore(false); err != nil {
		t.Fatalf("restore once the prefix is free: %v", err)
	}
	if reps, err := core.VerifyCluster(ctx, db, kr); err != nil || len(reps) != 1 || !reps[0].Report.OK {
		t.Errorf("chains after the restore: %+v, %v", reps, err)
	}
}

package core_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
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
	db, err := etcd.Open(ctx, etcd.Config{Endpoints: c.Endpoints(), Prefix: etcdtest.Prefix(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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

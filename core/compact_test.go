package core_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// TestCompactRemovesDestroyedCiphertext destroys a version and compacts:
// afterwards no byte sequence of its sealed value is left in the database
// file, and everything else still reads and verifies.
func TestCompactRemovesDestroyedCiphertext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	for _, v := range []string{"first-value-to-destroy", "second-value"} {
		if _, err := l.Put(ctx, "app/key", secret.NewValue([]byte(v)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(opts.Dir, core.DBFile)
	sealed := readSealed(t, dbPath, "s/app/key\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01")
	l = open(t, opts)
	if err := l.Destroy(ctx, "app/key", []int{1}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if pre, _ := os.ReadFile(dbPath); !bytes.Contains(pre, sealed[len(sealed)-24:]) {
		t.Log("note: the freed page was already reused before compaction")
	}
	rep, err := core.Compact(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Before == 0 || rep.After == 0 {
		t.Fatalf("report %+v", rep)
	}
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	// The tail of a ciphertext (GCM tag included) is random: finding it
	// means the bytes survived.
	if bytes.Contains(raw, sealed[len(sealed)-24:]) {
		t.Fatal("the destroyed version's ciphertext is still in the compacted file")
	}
	l = open(t, opts)
	if v, err := l.Get(ctx, "app/key", secret.Selector{}); err != nil || string(v.Value.Reveal()) != "second-value" {
		t.Fatalf("current value after compaction: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := core.VerifyDir(ctx, opts.Dir); err != nil || !rep.OK {
		t.Fatalf("audit after compaction: %+v %v", rep, err)
	}
	var actions []string
	for _, e := range entries(t, opts) {
		if e.Action == core.ActionCompact {
			actions = append(actions, string(e.Outcome))
		}
	}
	if len(actions) != 2 {
		t.Fatalf("compaction audited as %v, want start and outcome", actions)
	}
}

func readSealed(t *testing.T, path, key string) []byte {
	t.Helper()
	db, err := boltdb.Open(context.Background(), path, boltdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []byte
	if err := db.View(context.Background(), func(tx store.Tx) error {
		v, err := tx.Get([]byte(key))
		out = bytes.Clone(v)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

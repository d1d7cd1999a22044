package core_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// TestCompactRemovesDestroyedCiphertext destroys versions and compacts:
// afterwards no byte sequence of their sealed values is left in the
// database file, and everything else still reads and verifies. The
// versions are many and large, so that the few pages compaction's own
// writes (its audit entries) may reuse cannot erase them all: without the
// rewrite some would survive.
func TestCompactRemovesDestroyedCiphertext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	const n = 24
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("app/key%02d", i)
		for _, v := range []string{strings.Repeat("first-value-to-destroy ", 60), "second-value"} {
			if _, err := l.Put(ctx, paths[i], secret.NewValue([]byte(v)), secret.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(opts.Dir, core.DBFile)
	// The tail of a ciphertext (GCM tag included) is random: finding it
	// means the bytes survived.
	tails := make([][]byte, n)
	for i, p := range paths {
		sealed := readSealed(t, dbPath, "s/"+p+"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01")
		tails[i] = sealed[len(sealed)-24:]
	}
	l = open(t, opts)
	for _, p := range paths {
		if err := l.Destroy(ctx, p, []int{1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Destroy frees the pages but leaves their bytes, until a later write
	// reuses the page (each Destroy here is one). Enough of them must be
	// found now, or the check after compaction proves nothing.
	pre, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	present := 0
	for _, tail := range tails {
		if bytes.Contains(pre, tail) {
			present++
		}
	}
	if present < n/4 {
		t.Fatalf("only %d of %d destroyed ciphertexts are in the file before compaction: the test cannot show that compaction removes them", present, n)
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
	for i, tail := range tails {
		if bytes.Contains(raw, tail) {
			t.Fatalf("%s version 1: the destroyed ciphertext is still in the compacted file", paths[i])
		}
	}
	l = open(t, opts)
	for _, p := range paths {
		if v, err := l.Get(ctx, p, secret.Selector{}); err != nil || string(v.Value.Reveal()) != "second-value" {
			t.Fatalf("%s: current value after compaction: %v", p, err)
		}
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

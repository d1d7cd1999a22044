package scanner_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// unreadableValue is managed, but on a path the scanning caller may not
// read: the store does not confirm it.
var unreadableValue = "Tm4kW8qZ2x" + "R6vN1bY5cP"

// exportOf builds an index of values (by path, version 1, current) with the
// test seed, in the local or the shareable form.
func exportOf(t *testing.T, local bool, values map[string]string) *fpindex.Index {
	t.Helper()
	key, err := keyring.NewDetectionKey(testSeed)
	if err != nil {
		t.Fatal(err)
	}
	b := fpindex.NewBuilder("test-store", "", key, time.Time{}, local)
	for path, v := range values {
		b.Add([]byte(v), key.Fingerprint([]byte(v)), secret.FingerprintMatch{Path: path, Version: 1, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive})
	}
	var buf bytes.Buffer
	if err := fpindex.Write(&buf, b.File()); err != nil {
		t.Fatal(err)
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// storeConfirmer stands for the store: it confirms from a local-form index
// of what the caller may read, and records what it was asked.
type storeConfirmer struct {
	ix      *fpindex.Index
	storeID string
	err     error

	mu    sync.Mutex
	calls int
	asked []string
}

func (c *storeConfirmer) ConfirmFingerprints(ctx context.Context, fps []string) (fpindex.Confirmation, error) {
	c.mu.Lock()
	c.calls++
	c.asked = append(c.asked, fps...)
	c.mu.Unlock()
	if c.err != nil {
		return fpindex.Confirmation{}, c.err
	}
	conf, err := c.ix.ConfirmFingerprints(ctx, fps)
	if c.storeID != "" {
		conf.StoreID = c.storeID
	}
	return conf, err
}

// TestManagedShareable scans with the shareable index: candidates become
// findings only once the store confirms them, an unconfirmed one leaves
// gitleaks' own finding in place, and each candidate is asked about once.
func TestManagedShareable(t *testing.T) {
	t.Parallel()
	shareable := exportOf(t, false, map[string]string{"prod/db/password": managedValue, "team-b/db": unreadableValue})
	store := &storeConfirmer{ix: exportOf(t, true, map[string]string{"prod/db/password": managedValue})}
	s := newScanner(t, scanner.Options{Managed: shareable, Confirm: store})
	root := writeTree(t, map[string]string{
		".env":       "APP=1\nDB_PASSWORD=" + managedValue + "\n",
		"again.env":  "X=" + managedValue + "\n",
		"team-b.env": "DB_PASSWORD=" + unreadableValue + "\n",
	})
	got, _, err := s.ScanDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	want := []loc{
		{File: ".env", Line: 2, Col: 13, EndLine: 2, EndCol: 32, Rule: scanner.ManagedRuleID, ManagedPath: "prod/db/password", ManagedVer: 1},
		{File: "again.env", Line: 1, Col: 3, EndLine: 1, EndCol: 22, Rule: scanner.ManagedRuleID, ManagedPath: "prod/db/password", ManagedVer: 1},
		{File: "team-b.env", Line: 1, Col: 1, EndLine: 1, EndCol: 32, Rule: "passman-dotenv-password"},
	}
	if diff := cmp.Diff(want, locs(got)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	key, _ := keyring.NewDetectionKey(testSeed)
	for _, v := range []string{managedValue, unreadableValue} {
		n := 0
		for _, fp := range store.asked {
			if fp == key.Fingerprint([]byte(v)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the store was asked %d times about a candidate, want once", n)
		}
	}
}

func TestManagedShareableFailures(t *testing.T) {
	t.Parallel()
	shareable := exportOf(t, false, map[string]string{"prod/db/password": managedValue})
	local := exportOf(t, true, map[string]string{"prod/db/password": managedValue})
	root := writeTree(t, map[string]string{".env": "DB_PASSWORD=" + managedValue + "\n", "clean.txt": "nothing here\n"})

	if _, err := scanner.New(scanner.Options{Managed: shareable}); !errors.Is(err, secret.ErrPrecondition) {
		t.Errorf("a shareable index without a confirmer: %v", err)
	}
	down := errors.New("store unavailable")
	for name, c := range map[string]*storeConfirmer{
		"store error":   {ix: local, err: down},
		"another store": {ix: local, storeID: "another-store"},
	} {
		s := newScanner(t, scanner.Options{Managed: shareable, Confirm: c})
		if got, _, err := s.ScanDir(context.Background(), root); err == nil {
			t.Errorf("%s: the scan passed with %d findings; a candidate it could not confirm must fail it", name, len(got))
		}
	}
}

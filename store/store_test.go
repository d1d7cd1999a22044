package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

type env struct {
	st   *store.Store
	db   *boltdb.DB
	kr   *keyring.Keyring
	path string
	now  time.Time
}

var bob = store.Call{Actor: "bob"}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{path: filepath.Join(t.TempDir(), "passman.db"), now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	var err error
	if e.kr, err = keyring.New(e.now); err != nil {
		t.Fatal(err)
	}
	if e.db, err = boltdb.Open(ctx, e.path, boltdb.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	opts := store.Options{Now: func() time.Time { return e.now }}
	if err := store.Init(ctx, e.db, e.kr, "alice", opts); err != nil {
		t.Fatal(err)
	}
	if e.st, err = store.Open(ctx, e.db, e.kr, opts); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) put(t testing.TB, path, value string, opts secret.PutOptions) secret.VersionInfo {
	t.Helper()
	info, err := e.st.Put(context.Background(), bob, path, []byte(value), opts)
	if err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
	return info
}

func (e *env) get(t testing.TB, path string, sel secret.Selector) (string, secret.VersionInfo) {
	t.Helper()
	v, err := e.st.Get(context.Background(), path, sel)
	if err != nil {
		t.Fatalf("get %s %s: %v", path, sel, err)
	}
	return string(v.Value.Reveal()), v.Info
}

func stagesOf(t testing.TB, e *env, path string) map[int][]secret.Stage {
	t.Helper()
	s, err := e.st.Describe(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]secret.Stage{}
	for _, v := range s.Versions {
		if len(v.Stages) > 0 {
			out[v.Version] = v.Stages
		}
	}
	return out
}

func TestPutGetStages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 1; i <= 3; i++ {
		info := e.put(t, "prod/db/password", fmt.Sprintf("v%d", i), secret.PutOptions{})
		if info.Version != i || !info.HasStage(secret.StageCurrent) {
			t.Fatalf("put %d: %+v", i, info)
		}
	}
	want := map[int][]secret.Stage{3: {secret.StageCurrent}, 2: {secret.StagePrevious}}
	if d := cmp.Diff(want, stagesOf(t, e, "prod/db/password")); d != "" {
		t.Fatalf("stages (-want +got):\n%s", d)
	}
	for sel, wantVal := range map[secret.Selector]string{
		{}:                            "v3",
		{Version: 1}:                  "v1",
		{Stage: secret.StagePrevious}: "v2",
		{Stage: secret.StageCurrent}:  "v3",
	} {
		if got, _ := e.get(t, "prod/db/password", sel); got != wantVal {
			t.Errorf("get %s = %q, want %q", sel, got, wantVal)
		}
	}
	// A pending version does not move current; promoting it moves previous.
	e.put(t, "prod/db/password", "v4", secret.PutOptions{Stage: secret.StagePending})
	if got, _ := e.get(t, "prod/db/password", secret.Selector{}); got != "v3" {
		t.Fatalf("pending moved current: %q", got)
	}
	if err := e.st.SetStage(context.Background(), bob, "prod/db/password", secret.StageCurrent, 4); err != nil {
		t.Fatal(err)
	}
	want = map[int][]secret.Stage{4: {secret.StageCurrent}, 3: {secret.StagePrevious}}
	if d := cmp.Diff(want, stagesOf(t, e, "prod/db/password")); d != "" {
		t.Fatalf("after promotion (-want +got):\n%s", d)
	}
	_, err := e.st.Get(context.Background(), "prod/db/password", secret.Selector{Stage: secret.StagePending})
	if !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("get pending after promotion: %v", err)
	}
	for name, sel := range map[string]secret.Selector{
		"both":      {Version: 1, Stage: secret.StageCurrent},
		"bad stage": {Stage: "latest"},
		"negative":  {Version: -1},
	} {
		if _, err := e.st.Get(context.Background(), "prod/db/password", sel); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := e.st.Get(context.Background(), "prod/db/password", secret.Selector{Version: 99}); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("missing version: %v", err)
	}
	if _, err := e.st.Get(context.Background(), "nope", secret.Selector{}); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("missing secret: %v", err)
	}
}

func TestStageRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		e.put(t, "a", fmt.Sprint(i), secret.PutOptions{})
	}
	for name, tc := range map[string]struct {
		stage   secret.Stage
		version int
		want    error
	}{
		"current needs version":   {secret.StageCurrent, 0, secret.ErrInvalidArgument},
		"unknown stage":           {"latest", 1, secret.ErrInvalidArgument},
		"missing version":         {secret.StagePending, 9, secret.ErrNotFound},
		"current cannot be other": {secret.StagePrevious, 3, secret.ErrPrecondition},
	} {
		if err := e.st.SetStage(ctx, bob, "a", tc.stage, tc.version); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if err := e.st.SetStage(ctx, bob, "a", secret.StagePending, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetStage(ctx, bob, "a", secret.StagePending, 0); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[int][]secret.Stage{3: {secret.StageCurrent}, 2: {secret.StagePrevious}}, stagesOf(t, e, "a")); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// Moving current back to 1 makes 3 previous.
	if err := e.st.SetStage(ctx, bob, "a", secret.StageCurrent, 1); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[int][]secret.Stage{1: {secret.StageCurrent}, 3: {secret.StagePrevious}}, stagesOf(t, e, "a")); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestCAS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	zero, one, five := 0, 1, 5
	e.put(t, "k", "a", secret.PutOptions{CAS: &zero})
	if _, err := e.st.Put(context.Background(), bob, "k", []byte("b"), secret.PutOptions{CAS: &zero}); !errors.Is(err, secret.ErrConflict) {
		t.Fatalf("CAS 0 on existing: %v", err)
	}
	if _, err := e.st.Put(context.Background(), bob, "k", []byte("b"), secret.PutOptions{CAS: &five}); !errors.Is(err, secret.ErrConflict) {
		t.Fatalf("CAS 5: %v", err)
	}
	e.put(t, "k", "b", secret.PutOptions{CAS: &one})
	if got, info := e.get(t, "k", secret.Selector{}); got != "b" || info.Version != 2 {
		t.Fatalf("after CAS: %q v%d", got, info.Version)
	}
}

// TestConcurrentCASWriters has many goroutines race to write the next
// version with check-and-set. Exactly one writer may win each version: the
// final history must have one version per successful write, with no lost
// update and no version claimed twice.
func TestConcurrentCASWriters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const writers, perWriter = 32, 10
	ctx := context.Background()
	e.put(t, "counter", "0", secret.PutOptions{})
	big := secret.MaxVersionsLimit
	if _, err := e.st.UpdateMetadata(ctx, bob, "counter", secret.MetadataUpdate{MaxVersions: &big}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	won := map[int]string{}
	conflicts := 0
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; {
				cur, err := e.st.Get(ctx, "counter", secret.Selector{})
				if err != nil {
					t.Error(err)
					return
				}
				n := cur.Info.Version
				val := fmt.Sprintf("w%d-%d", w, i)
				info, err := e.st.Put(ctx, bob, "counter", []byte(val), secret.PutOptions{CAS: &n})
				if errors.Is(err, secret.ErrConflict) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := won[info.Version]; dup {
					t.Errorf("version %d won twice: %s and %s", info.Version, prev, val)
				}
				won[info.Version] = val
				mu.Unlock()
				i++
			}
		}()
	}
	wg.Wait()
	s, err := e.st.Describe(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Versions) != writers*perWriter+1 || s.CurrentVersion != writers*perWriter+1 {
		t.Fatalf("%d versions, current %d; want %d", len(s.Versions), s.CurrentVersion, writers*perWriter+1)
	}
	for n, val := range won {
		if got, _ := e.get(t, "counter", secret.Selector{Version: n}); got != val {
			t.Fatalf("v%d = %q, want %q", n, got, val)
		}
	}
	t.Logf("%d conflicts resolved by retry", conflicts)
}

// TestScanMeta: a metadata scan sees only records whose name starts with
// the prefix, in name order, and never the store's own keys or secrets.
func TestScanMeta(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "token/x", "a secret named like a record", secret.PutOptions{})
	err := e.db.Update(ctx, func(tx store.Tx) error {
		for _, n := range []string{"token/b", "token/a", "token-index", "tokens", "audit-head", "token/c"} {
			if err := store.PutMeta(tx, n, []byte("v-"+n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	scan := func(prefix string, limit int) []string {
		t.Helper()
		var got []string
		err := e.db.View(ctx, func(tx store.Tx) error {
			return store.ScanMeta(tx, prefix, func(name string, v []byte) (bool, error) {
				if string(v) != "v-"+name {
					t.Errorf("%s holds %q", name, v)
				}
				got = append(got, name)
				return len(got) < limit, nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if diff := cmp.Diff([]string{"token/a", "token/b", "token/c"}, scan("token/", 100)); diff != "" {
		t.Errorf("scan token/ (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"token/a", "token/b"}, scan("token/", 2)); diff != "" {
		t.Errorf("scan stopped after two (-want +got):\n%s", diff)
	}
	if got := scan("nothing/", 100); len(got) != 0 {
		t.Errorf("scan of an unused prefix: %v", got)
	}

	// An error from fn ends the scan and is returned.
	boom := errors.New("boom")
	err = e.db.View(ctx, func(tx store.Tx) error {
		return store.ScanMeta(tx, "token/", func(string, []byte) (bool, error) { return true, boom })
	})
	if !errors.Is(err, boom) {
		t.Errorf("scan with a failing fn: %v", err)
	}

	// Delete: one record goes, a missing one is no error, a read-only
	// transaction refuses.
	if err := e.db.Update(ctx, func(tx store.Tx) error {
		if err := store.DeleteMeta(tx, "token/b"); err != nil {
			return err
		}
		return store.DeleteMeta(tx, "token/never")
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"token/a", "token/c"}, scan("token/", 100)); diff != "" {
		t.Errorf("after delete (-want +got):\n%s", diff)
	}
	if err := e.db.View(ctx, func(tx store.Tx) error { return store.DeleteMeta(tx, "token/a") }); err == nil {
		t.Error("delete in a read-only transaction succeeded")
	}
	if _, err := e.st.Get(ctx, "token/x", secret.Selector{}); err != nil {
		t.Errorf("the secret named like a record: %v", err)
	}
}

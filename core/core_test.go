package core_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
)

func initStore(t testing.TB, sync audit.SyncMode) core.Options {
	t.Helper()
	opts := core.Options{Dir: filepath.Join(t.TempDir(), "store"), Actor: "alice", AuditSync: sync}
	if _, err := core.Init(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	return opts
}

func open(t testing.TB, opts core.Options) *core.Local {
	t.Helper()
	l, err := core.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func entries(t testing.TB, opts core.Options) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := audit.Read(context.Background(), filepath.Join(opts.Dir, core.AuditFile), audit.Filter{}, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEveryOperationIsAudited(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	ctx := context.Background()
	val := secret.NewValue([]byte("s3cret"))
	info, err := l.Put(ctx, "prod/a", val, secret.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, "prod/a", secret.Selector{}); err != nil {
		t.Fatal(err)
	}
	_, _ = l.Get(ctx, "prod/missing", secret.Selector{})
	_, _ = l.Put(ctx, "bad//path", val, secret.PutOptions{})
	if _, err := l.List(ctx, secret.ListOptions{Prefix: "prod/"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := entries(t, opts)
	type row struct{ action, path, outcome, class string }
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.Action, e.Path, string(e.Outcome), e.ErrorClass})
		if e.Actor != "alice" || e.RequestID == "" || e.Time.IsZero() {
			t.Errorf("entry lacks actor, request id or time: %+v", e)
		}
	}
	want := []row{
		{"store.init", "", "success", ""},
		{"secret.put", "prod/a", "success", ""},
		{"secret.get", "prod/a", "success", ""},
		{"secret.get", "prod/missing", "failure", "not_found"},
		{"secret.put", "", "failure", "invalid_path"}, // an invalid path is not recorded: it could be anything
		{"secret.list", "", "success", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("audit rows %v, want %v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("entry %d = %v, want %v", i+1, rows[i], want[i])
		}
	}
	if got[1].Fingerprint != info.Fingerprint || got[2].Fingerprint != info.Fingerprint || got[1].Version != 1 {
		t.Errorf("put/get entries do not carry the version's fingerprint: %+v", got[1:3])
	}
	rep, err := core.VerifyDir(ctx, opts.Dir)
	if err != nil || !rep.OK || rep.Entries != uint64(len(want)) || rep.Unconfirmed != 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestAuditFailClosed makes audit appends fail, as on a full disk: writes
// must fail and leave the store unchanged, reads must return no value.
func TestAuditFailClosed(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncFsync)
	ctx := context.Background()
	l := open(t, opts)
	defer l.Close()
	if _, err := l.Put(ctx, "k", secret.NewValue([]byte("v1")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	restore := core.BreakAudit(l, errors.New("no space left on device"))
	for name, op := range map[string]func() error{
		"put": func() error {
			_, err := l.Put(ctx, "k", secret.NewValue([]byte("v2")), secret.PutOptions{})
			return err
		},
		"new path": func() error {
			_, err := l.Put(ctx, "k2", secret.NewValue([]byte("v")), secret.PutOptions{})
			return err
		},
		"delete": func() error { return l.Delete(ctx, "k", nil) },
		"meta": func() error {
			o := "x"
			_, err := l.UpdateMetadata(ctx, "k", secret.MetadataUpdate{Owner: &o})
			return err
		},
		"purge": func() error { return l.Purge(ctx, "k") },
	} {
		if err := op(); !errors.Is(err, secret.ErrAudit) {
			t.Errorf("%s with a broken audit log: %v, want ErrAudit", name, err)
		}
	}
	v, err := l.Get(ctx, "k", secret.Selector{})
	if !errors.Is(err, secret.ErrAudit) || v.Value.Len() != 0 {
		t.Fatalf("get with a broken audit log returned %d bytes, err %v", v.Value.Len(), err)
	}
	restore()
	s, err := l.Describe(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Versions) != 1 || s.Versions[0].State != secret.StateActive || s.Metadata.Owner != "" {
		t.Fatalf("a write went through without its audit entry: %+v", s)
	}
	if _, err := l.Describe(ctx, "k2"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("k2 was created without an audit entry: %v", err)
	}
}

// TestBatchedWritesAuditOnce has many writers share group commits while some
// of them give up (cancelled contexts) and some fail (check-and-set
// conflicts), which makes the backend roll batches back and re-run them.
// Every request must leave exactly one entry, and every success entry must
// name a version that exists with the value written.
func TestBatchedWritesAuditOnce(t *testing.T) {
	t.Parallel()
	opts := initStore(t, audit.SyncFsync)
	l := open(t, opts)
	ctx := context.Background()
	const writers, each = 24, 15
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				c := ctx
				if (w+i)%7 == 0 {
					cc, cancel := context.WithCancel(ctx)
					cancel()
					c = cc
				}
				keep := secret.MaxVersionsLimit
				opts := secret.PutOptions{Metadata: &secret.MetadataUpdate{MaxVersions: &keep}}
				if (w+i)%5 == 0 {
					stale := 1 // mostly wrong: a conflict in the middle of a batch
					opts.CAS = &stale
				}
				_, _ = l.Put(c, fmt.Sprintf("batch/k%d", w%4), secret.NewValue([]byte(fmt.Sprintf("w%d-%d", w, i))), opts)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	perRequest := map[string]int{}
	successes := map[string]int{} // path@version -> count
	for _, e := range entries(t, opts) {
		if e.Action != core.ActionPut {
			continue
		}
		perRequest[e.RequestID]++
		if e.Outcome == audit.OutcomeSuccess {
			successes[fmt.Sprintf("%s@%d", e.Path, e.Version)]++
		}
	}
	if len(perRequest) != writers*each {
		t.Errorf("%d put requests audited, want %d", len(perRequest), writers*each)
	}
	for id, n := range perRequest {
		if n != 1 {
			t.Errorf("request %s has %d entries", id, n)
		}
	}
	l = open(t, opts)
	for pv, n := range successes {
		if n != 1 {
			t.Errorf("%s claimed by %d success entries", pv, n)
		}
		var path string
		var v int
		if _, err := fmt.Sscanf(strings.Replace(pv, "@", " ", 1), "%s %d", &path, &v); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Get(ctx, path, secret.Selector{Version: v}); err != nil {
			t.Errorf("success entry for %s, but: %v", pv, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := core.VerifyDir(ctx, opts.Dir); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

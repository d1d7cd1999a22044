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
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

// clusterOpts returns the options of server id over a store in the shared
// etcd cluster under prefix, with its own directory for its audit log.
func clusterOpts(t testing.TB, prefix, id string, kr *keyring.Keyring) core.Options {
	t.Helper()
	c := etcdtest.Shared(t)
	// The read cache on, as a server has it.
	cfg := etcd.Config{Endpoints: c.Endpoints(), Prefix: prefix, ReadCache: store.ReadPrefixes()}
	b, err := etcd.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return core.Options{Dir: filepath.Join(t.TempDir(), id), Keyring: kr, Actor: "alice", AuditSync: audit.SyncWrite, Backend: b, ServerID: id}
}

// initCluster initialises a store in the shared etcd cluster and returns
// the options that open it as server "a" (a backend of its own, not yet
// opened), and the prefix and keyring that open more servers of it.
func initCluster(t testing.TB) (optsA core.Options, prefix string, kr *keyring.Keyring) {
	t.Helper()
	kr, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	prefix = etcdtest.Prefix(t.Name())
	optsA = clusterOpts(t, prefix, "a", kr)
	if _, err := core.Init(context.Background(), optsA); err != nil {
		t.Fatal(err)
	}
	// Init closed the backend with its Local: open another.
	dir := optsA.Dir
	optsA = clusterOpts(t, prefix, "a", kr)
	optsA.Dir = dir
	return optsA, prefix, kr
}

// twoServers initialises a store in etcd and opens it as servers a and b.
func twoServers(t *testing.T) (a, b *core.Local, optsA, optsB core.Options) {
	t.Helper()
	optsA, prefix, kr := initCluster(t)
	optsB = clusterOpts(t, prefix, "b", kr)
	a, b = open(t, optsA), open(t, optsB)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, optsA, optsB
}

func TestClusterWriteOnOneReadOnOther(t *testing.T) {
	a, b, _, _ := twoServers(t)
	ctx := context.Background()
	for i, v := range []string{"one", "two", "three"} {
		w, r := a, b
		if i%2 == 1 {
			w, r = b, a
		}
		if _, err := w.Put(ctx, "prod/db", secret.NewValue([]byte(v)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		// Linearizable: the other server sees it at once, no waiting.
		got, err := r.Get(ctx, "prod/db", secret.Selector{})
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Value.Reveal()) != v || got.Info.Version != i+1 {
			t.Fatalf("read %q v%d on the other server, want %q v%d", got.Value.Reveal(), got.Info.Version, v, i+1)
		}
	}
	// Both chains verify, each server checking every chain.
	for _, l := range []*core.Local{a, b} {
		rep, err := l.VerifyAudit(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	}
}

func TestClusterTokenRevocationReachesOtherServer(t *testing.T) {
	a, b, _, _ := twoServers(t)
	ctx := context.Background()
	tok, info, err := a.CreateToken(ctx, secret.TokenRequest{Identity: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	// b caches the record.
	if _, err := b.LookupToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LookupToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, info.Accessor); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := b.LookupToken(ctx, tok)
		if errors.Is(err, secret.ErrUnauthenticated) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(revoked) > core.DefaultTokenCacheTTL {
			t.Fatalf("token revoked on a still accepted by b after %v (bound %v)", time.Since(revoked), core.DefaultTokenCacheTTL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revocation reached the other server in %v", time.Since(revoked))
}

// An acknowledged change's audit entry is in the store before the change
// is: the writing server's disk can be lost without losing it.
func TestClusterAuditSurvivesServerDiskLoss(t *testing.T) {
	a, _, optsA, _ := twoServers(t)
	ctx := context.Background()
	if _, err := a.Put(ctx, "prod/lost-disk", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	err := core.Crash(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(optsA.Dir); err != nil {
		t.Fatal(err)
	}
	// Crash closed its backend: an auditor connects anew.
	optsA.Backend, err = etcd.Open(ctx, etcd.Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: optsA.Backend.(*etcd.DB).Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	reps, err := core.VerifyCluster(ctx, optsA.Backend, optsA.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reps {
		if r.Server != "a" {
			continue
		}
		if !r.Report.OK {
			t.Fatalf("chain of a: %+v", r.Report)
		}
		var buf bytes.Buffer
		if err := core.ReadReplica(ctx, optsA.Backend, "a", &buf); err != nil {
			t.Fatal(err)
		}
		found = bytes.Contains(buf.Bytes(), []byte(`"action":"secret.put","path":"prod/lost-disk"`))
	}
	if !found {
		t.Fatal("the put's audit entry is not in the store's replica of a's chain")
	}
	// The server, its disk gone, refuses to start a new chain under the
	// same id over the recorded one.
	if l, err := core.Open(ctx, optsA); err == nil {
		l.Close()
		t.Fatal("server reopened under its id with its audit log gone")
	}

	// Its log recovered from the store, it goes on under its id. (The
	// refused open closed its backend.)
	optsA.Backend, err = etcd.Open(ctx, etcd.Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: optsA.Backend.(*etcd.DB).Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(optsA.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(optsA.Dir, core.AuditFile)
	rep, err := core.RecoverLog(ctx, optsA.Backend, optsA.Keyring, "a", logPath)
	if err != nil || !rep.OK || rep.Signature != audit.SignatureValid {
		t.Fatalf("recover a's log: %+v, %v", rep, err)
	}
	if b, err := os.ReadFile(logPath); err != nil || !bytes.Contains(b, []byte(`"action":"secret.put","path":"prod/lost-disk"`)) {
		t.Fatalf("the recovered log lacks the put's entry (%v)", err)
	}
	if r, err := audit.Verify(ctx, logPath, audit.Head{}); err != nil || !r.OK {
		t.Fatalf("the recovered file's chain: %+v, %v", r, err)
	}
	if _, err := core.RecoverLog(ctx, optsA.Backend, optsA.Keyring, "a", logPath); !errors.Is(err, secret.ErrPrecondition) {
		t.Errorf("recover over an existing log: %v, want refused", err)
	}
	if _, err := core.RecoverLog(ctx, optsA.Backend, optsA.Keyring, "nobody", filepath.Join(optsA.Dir, "x.log")); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("recover a chain the store does not hold: %v", err)
	}
	a2, err := core.Open(ctx, optsA)
	if err != nil {
		t.Fatalf("reopen a on its recovered log: %v", err)
	}
	defer a2.Close()
	if _, err := a2.Put(ctx, "prod/after-recovery", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if rep, err := a2.VerifyAudit(ctx); err != nil || !rep.OK {
		t.Fatalf("audit verify on the recovered server: %+v, %v", rep, err)
	}
}

// A replica that does not verify is not recovered: nothing is written.
func TestRecoverLogRefusesBrokenChain(t *testing.T) {
	a, _, optsA, _ := twoServers(t)
	ctx := context.Background()
	if _, err := a.Put(ctx, "prod/x", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := core.TamperReplica(ctx, optsA.Backend, "a", 1, func(line []byte) []byte {
		return bytes.Replace(line, []byte(`"alice"`), []byte(`"malice"`), 1)
	}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.log")
	if _, err := core.RecoverLog(ctx, optsA.Backend, optsA.Keyring, "a", path); !errors.Is(err, secret.ErrTampered) {
		t.Fatalf("recover a tampered chain: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a log was written: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
	if _, err := core.RecoverLog(ctx, optsA.Backend, optsA.Keyring, "Bad/Id", path); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("a malformed server id: %v", err)
	}
}

// A replica entry changed in the store is caught by verification.
func TestClusterVerifyCatchesTamperedReplica(t *testing.T) {
	a, b, optsA, _ := twoServers(t)
	ctx := context.Background()
	if _, err := b.Put(ctx, "prod/x", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := core.TamperReplica(ctx, optsA.Backend, "b", 1, func(line []byte) []byte {
		return bytes.Replace(line, []byte("prod/x"), []byte("prod/y"), 1)
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := a.VerifyAudit(ctx)
	if !errors.Is(err, secret.ErrTampered) || rep.OK {
		t.Fatalf("verify after tampering with b's replica: %+v, %v", rep, err)
	}
}

func TestMigrateBoltToCluster(t *testing.T) {
	ctx := context.Background()
	opts := initStore(t, audit.SyncWrite)
	l := open(t, opts)
	for _, p := range []string{"prod/db", "prod/api", "dev/x"} {
		if _, err := l.Put(ctx, p, secret.NewValue([]byte("value of "+p)), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tok, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.LoadFile(filepath.Join(opts.Dir, core.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	prefix := etcdtest.Prefix(t.Name())
	target := clusterOpts(t, prefix, "pm-1", kr).Backend
	rep, err := core.Migrate(ctx, opts, target, "pm-1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Keys == 0 || rep.AuditEntries == 0 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, core.DBFile)); !os.IsNotExist(err) {
		t.Fatalf("bbolt file still in place: %v", err)
	}
	// pm-1 goes on with the migrated chain in the same directory; pm-2 is
	// new.
	o1 := clusterOpts(t, prefix, "pm-1", kr)
	o1.Dir = opts.Dir
	o2 := clusterOpts(t, prefix, "pm-2", kr)
	s1, s2 := open(t, o1), open(t, o2)
	defer s1.Close()
	defer s2.Close()
	for _, s := range []*core.Local{s1, s2} {
		got, err := s.Get(ctx, "prod/api", secret.Selector{})
		if err != nil || string(got.Value.Reveal()) != "value of prod/api" {
			t.Fatalf("migrated secret: %v", err)
		}
		if _, err := s.LookupToken(ctx, tok); err != nil {
			t.Fatalf("migrated token: %v", err)
		}
		rep, err := s.VerifyAudit(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("verify after migration: %+v, %v", rep, err)
		}
	}
	// A second migration into the same prefix is refused.
	if _, err := core.Migrate(ctx, opts, clusterOpts(t, prefix, "pm-1", kr).Backend, "pm-1"); !errors.Is(err, secret.ErrPrecondition) {
		t.Fatalf("migration into a non-empty prefix: %v", err)
	}
}

// etcd (and so its snapshots and backups) sees neither a secret's value
// nor the master key, in any common encoding.
func TestClusterEtcdHoldsNoPlaintext(t *testing.T) {
	a, _, optsA, _ := twoServers(t)
	ctx := context.Background()
	const canary = "etcd-canary-value-7f3a91"
	if _, err := a.Put(ctx, "prod/canary", secret.NewValue([]byte(canary)), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(t.TempDir(), "k.json")
	if err := optsA.Keyring.SaveFile(kf); err != nil {
		t.Fatal(err)
	}
	var file struct {
		Keys []struct {
			Key string `json:"key"`
		} `json:"keys"`
	}
	b, _ := os.ReadFile(kf)
	if err := json.Unmarshal(b, &file); err != nil || len(file.Keys) == 0 {
		t.Fatalf("key file: %v", err)
	}
	key, err := base64.StdEncoding.DecodeString(file.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{"value": []byte(canary), "master key": key}
	for name, n := range map[string][]byte{"value": []byte(canary), "master key": key} {
		needles[name+" (base64)"] = []byte(base64.StdEncoding.EncodeToString(n))
		needles[name+" (hex)"] = []byte(hex.EncodeToString(n))
	}
	// Everything under the store's prefix, as etcd holds it.
	db := optsA.Backend.(*etcd.DB)
	resp, err := db.Client().Get(ctx, db.Prefix(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) < 5 {
		t.Fatalf("only %d keys under the prefix", len(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		for name, n := range needles {
			if bytes.Contains(kv.Key, n) || bytes.Contains(kv.Value, n) {
				t.Errorf("etcd key %q holds the %s", kv.Key, name)
			}
		}
	}
}

// Two servers writing the same secrets conflict, and a conflicting
// attempt runs again: the audit records each acknowledged put once, as a
// success, and no attempt that lost the race.
func TestClusterConflictRetryAuditsOnce(t *testing.T) {
	a, b, optsA, optsB := twoServers(t)
	ctx := context.Background()
	before := etcd.Conflicts()
	acked := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		srv := a
		if g%2 == 1 {
			srv = b
		}
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("conflict-%d-%d", g, i)
				rctx := audit.WithRequestID(ctx, id)
				_, err := srv.Put(rctx, fmt.Sprintf("prod/hot%d", i%2), secret.NewValue([]byte(id)), secret.PutOptions{})
				if err != nil {
					t.Errorf("put %s: %v", id, err)
					continue
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if etcd.Conflicts() == before {
		t.Fatal("no transaction conflicted: the test did not exercise retries")
	}
	successes := map[string]int{}
	for _, dir := range []string{optsA.Dir, optsB.Dir} {
		err := audit.Read(ctx, filepath.Join(dir, core.AuditFile), audit.Filter{Action: core.ActionPut}, func(e audit.Entry) error {
			if e.Outcome == audit.OutcomeSuccess {
				successes[e.RequestID]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for id, n := range successes {
		if n != 1 || !acked[id] {
			t.Errorf("request %s: %d success entries (acknowledged: %v), want 1 of an acknowledged put", id, n, acked[id])
		}
	}
	if len(successes) != len(acked) {
		t.Errorf("%d puts acknowledged, %d audited as successes", len(acked), len(successes))
	}
	for _, l := range []*core.Local{a, b} {
		if rep, err := l.VerifyAudit(ctx); err != nil || !rep.OK {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	}
}

// A committed request's entry is durable in the store before the answer;
// the local file has it at once and fsyncs it soon after, with no request
// to carry the fsync.
func TestClusterLocalLogSyncsSoonAfter(t *testing.T) {
	optsA, _, _ := initCluster(t)
	optsA.AuditSync = audit.SyncFsync
	a := open(t, optsA)
	t.Cleanup(func() { a.Close() })
	ctx := context.Background()
	for _, p := range []string{"prod/one", "prod/two"} {
		if _, err := a.Put(ctx, p, secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Get(ctx, "prod/one", secret.Selector{}); err != nil {
		t.Fatal(err)
	}
	var last uint64
	err := audit.Read(ctx, filepath.Join(optsA.Dir, core.AuditFile), audit.Filter{}, func(e audit.Entry) error {
		last = e.Seq
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Well inside the checkpoint interval, whose ticks do not fsync the
	// log either.
	deadline := time.Now().Add(500 * time.Millisecond)
	for core.AuditHead(a).Seq < last {
		if time.Now().After(deadline) {
			t.Fatalf("local log durable to entry %d half a second after the last request, written to %d", core.AuditHead(a).Seq, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A change's entries reach the store in its commit, the local log just
// after: a server killed in between takes them back from the store on
// restart, and only if they continue its chain.
func TestClusterTakesBackEntriesItsLogLost(t *testing.T) {
	a, _, optsA, _ := twoServers(t)
	ctx := context.Background()
	for _, p := range []string{"prod/one", "prod/two", "prod/three"} {
		if _, err := a.Put(ctx, p, secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	head := core.AuditHead(a)
	logPath := filepath.Join(optsA.Dir, core.AuditFile)
	reopen := func(cut int) (*core.Local, error) {
		t.Helper()
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		lines = lines[:len(lines)-1-cut] // the last element is empty
		if err := os.WriteFile(logPath, bytes.Join(lines, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		optsA.Backend, err = etcd.Open(ctx, etcd.Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: optsA.Backend.(*etcd.DB).Prefix()})
		if err != nil {
			t.Fatal(err)
		}
		return core.Open(ctx, optsA)
	}
	if err := core.Crash(a); err != nil {
		t.Fatal(err)
	}
	a, err := reopen(2)
	if err != nil {
		t.Fatalf("reopen with the last two entries only in the store: %v", err)
	}
	if got := core.AuditHead(a); got.Seq < head.Seq {
		t.Fatalf("head after reopening %d, want at least %d", got.Seq, head.Seq)
	}
	found := false
	err = audit.Read(ctx, logPath, audit.Filter{Action: core.ActionPut, Path: "prod/three"}, func(audit.Entry) error {
		found = true
		return nil
	})
	if err != nil || !found {
		t.Fatalf("the last put's entry is not back in the local log (%v)", err)
	}
	if rep, err := a.VerifyAudit(ctx); err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	// An entry in the store that does not continue the chain is not
	// taken: the server refuses to start.
	head = core.AuditHead(a)
	if err := core.Crash(a); err != nil {
		t.Fatal(err)
	}
	auditor, err := etcd.Open(ctx, etcd.Config{Endpoints: etcdtest.Shared(t).Endpoints(), Prefix: optsA.Backend.(*etcd.DB).Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	if err := core.TamperReplica(ctx, auditor, "a", head.Seq, func(line []byte) []byte {
		return bytes.Replace(line, []byte(`"actor":"`), []byte(`"actor":"x`), 1)
	}); err != nil {
		t.Fatal(err)
	}
	if l, err := reopen(1); !errors.Is(err, secret.ErrTampered) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("reopen over a tampered replica entry: %v, want tampered", err)
	}
}

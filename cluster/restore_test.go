package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/secret"
)

// passman runs the CLI as its own process (this test binary, as the
// servers are), with no PASSMAN_ variable of the test's environment.
func passman(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PASSMAN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, execEnv+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// restoredDeployment is a deployment with d's key, certificate, policies
// and root token under a fresh prefix, with no store and no server yet.
func restoredDeployment(t *testing.T, d *deployment) *deployment {
	d2 := *d
	d2.prefix, d2.dir, d2.servers = etcdtest.Prefix(t.Name()+"-restored"), t.TempDir(), nil
	t.Cleanup(func() {
		for _, s := range d2.servers {
			s.kill()
		}
	})
	return &d2
}

// TestClusterRestoreIntoEtcd: the restore drill on etcd. A backup is taken
// through one server while the other takes writes; it is restored with
// `passman store restore --config` into a fresh prefix, as the server
// that took it (its configuration names the new prefix); a server
// started on it serves every write acknowledged before the backup began,
// the tokens included, and takes new writes; every audit chain verifies.
// A second restore into that prefix is refused.
func TestClusterRestoreIntoEtcd(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, etcdtest.Shared(t), 2)
	var acked []string
	for i := range 6 {
		path := fmt.Sprintf("app/k%d", i)
		put(ctx, t, d, i%2, path, "value of "+path)
		acked = append(acked, path)
	}
	var mu sync.Mutex
	last := 0 // the last version of load/x acknowledged
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		c := d.client(1, "")
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			info, err := c.Put(ctx, "load/x", secret.NewValue(fmt.Appendf(nil, "load %d", n)), secret.PutOptions{})
			if err == nil {
				mu.Lock()
				last = max(last, info.Version)
				mu.Unlock()
			}
		}
	}()
	waitLoad := func(n int) {
		for {
			mu.Lock()
			v := last
			mu.Unlock()
			if v >= n {
				return
			}
			select {
			case <-done:
				t.Fatal("the writer stopped")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitLoad(3)
	mu.Lock()
	before := last
	mu.Unlock()
	file := filepath.Join(t.TempDir(), "cluster.pmb")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.client(0, "").Backup(ctx, f, backup.Options{})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if h.Source != "etcd" || h.ServerID != "s0" {
		t.Fatalf("header = %+v", h)
	}

	d2 := restoredDeployment(t, d)
	s := d2.configureServer("s0", "")
	out, err := passman(t, "store", "restore", file, "--config", s.config)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
	if !strings.Contains(out, "the audit log of server s0 is in "+s.dir) {
		t.Errorf("restore said %q", out)
	}
	if out, err := passman(t, "store", "restore", file, "--config", s.config, "--store", filepath.Join(d2.dir, "again")); err == nil || !strings.Contains(out, "already holds a store") {
		t.Errorf("a second restore into the prefix: %v\n%s", err, out)
	}
	if err := d2.start(s); err != nil {
		t.Fatal(err)
	}
	c := d2.client(0, "") // the backup's root token
	for _, path := range acked {
		v, err := c.Get(ctx, path, secret.Selector{})
		if err != nil || string(v.Value.Reveal()) != "value of "+path {
			t.Errorf("%s after restore: %v", path, err)
		}
	}
	v, err := c.Get(ctx, "load/x", secret.Selector{})
	if err != nil || v.Info.Version < before {
		t.Fatalf("load/x after restore: v%d (%v), but v%d was acknowledged before the backup began", v.Info.Version, err, before)
	}
	t.Logf("load/x: v%d acknowledged before the backup, v%d restored", before, v.Info.Version)
	if _, err := c.Put(ctx, "app/after", secret.NewValue([]byte("new")), secret.PutOptions{}); err != nil {
		t.Fatalf("a write on the restored deployment: %v", err)
	}
	rep, err := c.VerifyAudit(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("audit verify on the restored server: %+v, %v", rep, err)
	}
	// Every chain the backup carried (setup's, s0's, s1's) verifies.
	d2.verifyAll(ctx)
}

// TestLostDiskRecovered: a server and its disk are lost. Restarted on an
// empty directory under its id it refuses to start a second chain; `passman
// audit recover --config` writes its chain back out of etcd, verified, and
// the server starts on it under its own id, serves, and every chain —
// its recovered log first — verifies.
func TestLostDiskRecovered(t *testing.T) {
	ctx := context.Background()
	d := newDeployment(t, etcdtest.Shared(t), 2)
	for i := range 4 {
		put(ctx, t, d, 1, fmt.Sprintf("app/lost-%d", i), "v")
	}
	s := d.servers[1]
	s.kill()
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatal(err)
	}
	if err := d.start(s); err == nil || !strings.Contains(err.Error(), "passman audit recover") {
		t.Fatalf("a server restarted without its log under its id: %v", err)
	}
	out, err := passman(t, "audit", "recover", "--config", s.config)
	if err != nil {
		t.Fatalf("audit recover: %v\n%s", err, out)
	}
	if !strings.Contains(out, "audit log OK") || !strings.Contains(out, "signature valid") {
		t.Errorf("audit recover said %q", out)
	}
	logPath := filepath.Join(s.dir, "audit.log")
	b, err := os.ReadFile(logPath)
	if err != nil || !strings.Contains(string(b), `"path":"app/lost-3"`) {
		t.Fatalf("the recovered log lacks the last put's entry (%v)", err)
	}
	if out, err := passman(t, "audit", "recover", "--config", s.config); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("a second recover over the log: %v\n%s", err, out)
	}
	if err := d.start(s); err != nil {
		t.Fatal(err)
	}
	put(ctx, t, d, 1, "app/after-recovery", "v")
	rep, err := d.client(1, "").VerifyAudit(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("audit verify on the recovered server: %+v, %v", rep, err)
	}
	d.verifyAll(ctx)
}

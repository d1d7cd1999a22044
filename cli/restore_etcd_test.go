package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/scheduler/etcdelect"
	"github.com/passman-dev/passman/server"
)

// TestRestoreForceRefusesLiveServers: a forced restore into an etcd
// prefix whose deployment has a server running (its scheduler campaigns)
// is refused and removes nothing; once that server is gone it runs.
func TestRestoreForceRefusesLiveServers(t *testing.T) {
	c := etcdtest.Shared(t)
	ctx := context.Background()
	r := newRunner(t)
	r.must(clibase.ExitOK, "", "init")
	dir := filepath.Dir(r.env[envStore])
	file := filepath.Join(dir, "b.pmb")
	r.must(clibase.ExitOK, "", "store", "backup", file)

	prefix := etcdtest.Prefix(t.Name())
	url := "etcd://" + strings.TrimPrefix(c.Endpoints()[0], "http://") + "/" + strings.TrimSuffix(prefix, "/")
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, prefix+"m/store", "a live deployment's"); err != nil {
		t.Fatal(err)
	}
	el, err := etcdelect.New(cli, server.ElectionPrefix(prefix), "pm-1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, resign, err := el.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "store", "master.key")
	args := []string{"store", "restore", file, "--to", url, "--server-id", "pm-2", "--key-file", key, "--force"}
	inv := r.run("", map[string]string{envStore: filepath.Join(dir, "pm2")}, args...)
	if inv.code == clibase.ExitOK || !strings.Contains(inv.stderr, "running") {
		t.Fatalf("forced restore under a running server: exit %d, %q", inv.code, inv.stderr)
	}
	resp, err := cli.Get(ctx, prefix+"m/store")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "a live deployment's" {
		t.Fatalf("the refused restore changed the live deployment's store: %v (%v)", resp.Kvs, err)
	}
	resign()
	inv = r.run("", map[string]string{envStore: filepath.Join(dir, "pm3")}, args...)
	if inv.code != clibase.ExitOK || !strings.Contains(inv.stdout, "keys removed first") {
		t.Fatalf("forced restore once the server is gone: exit %d, %q %q", inv.code, inv.stdout, inv.stderr)
	}
}

package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// TestRunScheduler: a server with the scheduler enabled rotates a due
// secret and reaps an expired token with nobody calling anything, and
// answers its status to an admin only.
func TestRunScheduler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := testclock.New(time.Now())
	m := metrics.New()
	s, _ := runServer(t, server.Config{
		Dev: true, DevDir: t.TempDir(), Out: io.Discard,
		Store:          core.Options{Actor: "tester", AuditSync: audit.SyncWrite, Now: clock.Now},
		TokenRetention: time.Minute,
		Scheduler:      server.SchedulerConfig{Enabled: true, Interval: 50 * time.Millisecond, Node: "node-a"},
		Options:        server.Options{Metrics: m},
	})
	c, err := client.New(client.Options{Addr: s.URL, Token: s.RootToken, CACertFile: s.CACertFile})
	if err != nil {
		t.Fatal(err)
	}
	period := secret.Duration(time.Hour)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection, Length: 32}, RotationPeriod: &period}
	if _, err := c.Put(ctx, "app/token", secret.NewValue([]byte("first")), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	nobodyTok, short, err := c.CreateToken(ctx, secret.TokenRequest{Identity: "ci", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := c.Describe(ctx, "app/token")
		if err != nil {
			t.Fatal(err)
		}
		if d.CurrentVersion == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the due secret was not rotated by the scheduler")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var st struct {
		reaped bool
		status any
	}
	for deadline := time.Now().Add(20 * time.Second); !st.reaped; time.Sleep(20 * time.Millisecond) {
		status, err := c.SchedulerStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if status.Leader != "node-a" || !status.Live {
			t.Fatalf("status leader %q live %v", status.Leader, status.Live)
		}
		for _, r := range status.Runs {
			st.reaped = st.reaped || r.Reaped > 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired token %s was not reaped: %+v", short.Accessor, status.Runs)
		}
	}
	nobody, err := client.New(client.Options{Addr: s.URL, Token: nobodyTok, CACertFile: s.CACertFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nobody.SchedulerStatus(ctx); err == nil {
		t.Error("a token that is not admin read the scheduler status")
	}
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, n := range []string{metrics.NameSchedulerIsLeader, metrics.NameSchedulerLeaderChanges, metrics.NameSchedulerLag, metrics.NameSchedulerRuns} {
		if !slices.Contains(names, n) {
			t.Errorf("metric %s missing", n)
		}
	}
}

// TestBackupRoute: an admin streams a backup through the API; a reader
// gets a refusal and no bytes; the backup restores into a new directory
// and the restored store serves a server, tokens and all.
func TestBackupRoute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := servertest.New(t, servertest.Options{})
	root, err := client.New(client.Options{Addr: e.URL, Token: e.Tokens[servertest.Root], CACertFile: e.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "app/db", secret.NewValue([]byte("route-backup-canary")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	reader, err := client.New(client.Options{Addr: e.URL, Token: e.Tokens[servertest.Reader], CACertFile: e.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	var refused bytes.Buffer
	if _, err := reader.Backup(ctx, &refused, backup.Options{}); !errors.Is(err, secret.ErrPermissionDenied) || refused.Len() != 0 {
		t.Fatalf("backup by a reader: %v, %d bytes", err, refused.Len())
	}
	for _, logical := range []bool{false, true} {
		var buf bytes.Buffer
		h, err := root.Backup(ctx, &buf, backup.Options{Logical: logical})
		if err != nil {
			t.Fatal(err)
		}
		if h.StoreID == "" || bytes.Contains(buf.Bytes(), []byte("route-backup-canary")) {
			t.Fatalf("header %+v; value in plaintext: %v", h, bytes.Contains(buf.Bytes(), []byte("route-backup-canary")))
		}
		dir := filepath.Join(t.TempDir(), "restored")
		opts := core.Options{Dir: dir, KeyFile: filepath.Join(e.Store.Dir, core.KeyFile), Actor: "admin", AuditSync: audit.SyncWrite, PolicyDir: e.Store.PolicyDir}
		if _, err := core.Restore(ctx, opts, bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
		tlsDir := t.TempDir()
		cert, key := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
		if err := server.WriteSelfSigned(cert, key, []string{"127.0.0.1"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		s, stop := runServer(t, server.Config{Store: opts, TLSCertFile: cert, TLSKeyFile: key})
		rc, err := client.New(client.Options{Addr: s.URL, Token: e.Tokens[servertest.Root], CACertFile: cert})
		if err != nil {
			t.Fatal(err)
		}
		v, err := rc.Get(ctx, "app/db", secret.Selector{})
		if err != nil || string(v.Value.Reveal()) != "route-backup-canary" {
			t.Fatalf("the restored server answers %v", err)
		}
		if rep, err := rc.VerifyAudit(ctx); err != nil || !rep.OK {
			t.Fatalf("audit verify on the restored server: %+v %v", rep, err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

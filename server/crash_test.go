package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/crashtest"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

const serverCrashEnv = "PASSMAN_SERVER_CRASH_CHILD_DIR"

// crashStore is the store, policy and certificate the crash test's child
// serves from dir.
func crashStore(dir string) (opts core.Options, cert, key string) {
	return core.Options{
			Dir:       filepath.Join(dir, "store"),
			Actor:     "admin",
			AuditSync: audit.SyncFsync,
			PolicyDir: filepath.Join(dir, "policies"),
		},
		filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
}

// TestServerCrashChild is the child half of TestServerCrash: it runs
// server.Run on the store and prints "url URL" once it listens, until it
// is killed. It does nothing in a normal test run.
func TestServerCrashChild(t *testing.T) {
	dir := os.Getenv(serverCrashEnv)
	if dir == "" {
		t.Skip("child process of TestServerCrash")
	}
	opts, cert, key := crashStore(dir)
	// A safety net: never outlive a parent that failed to kill us.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := server.Run(ctx, server.Config{
		Addr:        "127.0.0.1:0",
		Store:       opts,
		TLSCertFile: cert,
		TLSKeyFile:  key,
		Options:     server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Started:     func(s server.Started) { fmt.Printf("url %s\n", s.URL) },
	})
	fmt.Printf("run returned: %v\n", err)
	os.Exit(1)
}

type serverAck struct {
	path    string
	version int
	value   string
}

// TestServerCrash runs the server in a child process, has several clients
// write distinct secrets through it, SIGKILLs it mid-burst, and checks
// that every write a client saw acknowledged is in the store with its
// value and version, and that the audit log verifies. Each round restarts
// the server on the store the last one left behind.
func TestServerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	opts, cert, key := crashStore(dir)
	if err := os.MkdirAll(opts.PolicyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.PolicyDir, "test.rego"), []byte(servertest.Policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "root-user", Claims: map[string]string{"role": "root"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := server.WriteSelfSigned(cert, key, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}

	// A round takes about half a second under -race; twelve restart the
	// server on the store each kill left behind, in seconds.
	const rounds, writers = 12, 8
	rng := crashtest.Rand(t)
	var acked []serverAck
	for round := range rounds {
		child := crashtest.Start(t, "TestServerCrashChild", serverCrashEnv+"="+dir)
		addr := child.Await(t, "url ", 30*time.Second, func(line string) { t.Logf("round %d: child: %s", round, line) })
		c, err := client.New(client.Options{Addr: addr, Token: token, CACertFile: cert, Retries: -1, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}

		// Keep every version, so each acknowledged one stays readable.
		keep := secret.MaxVersionsLimit
		var mu sync.Mutex
		var roundAcks []serverAck
		first := make(chan struct{})
		var firstOnce sync.Once
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					path := fmt.Sprintf("crash/r%d/w%d/k%d", round, w, i%4)
					value := fmt.Sprintf("value-r%d-w%d-%d", round, w, i)
					info, err := c.Put(ctx, path, secret.NewValue([]byte(value)), secret.PutOptions{Metadata: &secret.MetadataUpdate{MaxVersions: &keep}})
					if err != nil {
						// The server is gone (or going): nothing was acknowledged.
						return
					}
					mu.Lock()
					roundAcks = append(roundAcks, serverAck{path, info.Version, value})
					mu.Unlock()
					firstOnce.Do(func() { close(first) })
				}
			}()
		}
		// Kill once a write went through, at a random moment of the burst.
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no write was acknowledged", round)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		for _, line := range child.Kill(t) {
			t.Logf("round %d: child: %s", round, line)
		}
		close(stop)
		wg.Wait()
		acked = append(acked, roundAcks...)
		t.Logf("round %d: %d writes acknowledged before SIGKILL", round, len(roundAcks))
		checkServerCrash(t, ctx, opts, acked, round)
	}
	t.Logf("%d writes acknowledged in %d rounds", len(acked), rounds)
}

func checkServerCrash(t *testing.T, ctx context.Context, opts core.Options, acked []serverAck, round int) {
	t.Helper()
	// Each Get audits; no need to fsync those entries here.
	opts.AuditSync = audit.SyncWrite
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatalf("round %d: open after SIGKILL: %v", round, err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
	}()
	latest := map[string]int{}
	for _, a := range acked {
		v, err := l.Get(ctx, a.path, secret.Selector{Version: a.version})
		if err != nil {
			t.Fatalf("round %d: acknowledged write %s v%d lost: %v", round, a.path, a.version, err)
		}
		if got := string(v.Value.Reveal()); got != a.value {
			t.Fatalf("round %d: %s v%d = %q, want %q", round, a.path, a.version, got, a.value)
		}
		latest[a.path] = max(latest[a.path], a.version)
	}
	for path, v := range latest {
		s, err := l.Describe(ctx, path)
		if err != nil {
			t.Fatalf("round %d: describe %s: %v", round, path, err)
		}
		if s.CurrentVersion < v {
			t.Fatalf("round %d: %s is at v%d, but v%d was acknowledged", round, path, s.CurrentVersion, v)
		}
	}
	rep, err := l.VerifyAudit(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("round %d: VerifyAudit after SIGKILL: %+v %v", round, rep, err)
	}
}

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/server"
)

const devChildEnv = "PASSMAN_SERVER_DEV_CHILD"

// TestDevServerChild is the child half of TestDevServerKilled: a dev
// server in a temporary directory (TMPDIR, set by the parent) that prints
// "started CACERT TOKEN" once it listens and stops on SIGTERM. It does
// nothing in a normal test run.
func TestDevServerChild(t *testing.T) {
	if os.Getenv(devChildEnv) == "" {
		t.Skip("child process of TestDevServerKilled")
	}
	// A safety net: never outlive a parent that failed to stop us.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	err := server.Run(ctx, server.Config{
		Dev:     true,
		Addr:    "127.0.0.1:0",
		Out:     io.Discard,
		Options: server.Options{Logger: slog.New(slog.NewTextHandler(os.Stdout, nil))},
		Started: func(s server.Started) { fmt.Printf("started %s %s %s\n", s.CACertFile, s.RootToken, s.URL) },
	})
	fmt.Printf("run returned: %v\n", err)
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

type devChild struct {
	cmd                *exec.Cmd
	dir, cacert, token string
	url                string
	lines              chan string
}

// startDevChild runs TestDevServerChild with TMPDIR=tmp and waits until it
// listens.
func startDevChild(t *testing.T, tmp string) *devChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDevServerChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), devChildEnv+"=1", "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := &devChild{cmd: cmd, lines: make(chan string, 100)}
	started := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "started" {
				started <- f[1:]
			}
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		close(c.lines)
	}()
	select {
	case f := <-started:
		c.cacert, c.token, c.url = f[0], f[1], f[2]
		c.dir = filepath.Dir(filepath.Dir(c.cacert))
	case <-time.After(20 * time.Second):
		t.Fatal("the dev server did not start")
	}
	return c
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestDevServerKilled: a dev server killed with SIGKILL leaves its
// directory (store, key, root token); the next dev server removes it, and
// leaves alone what is not a dead dev server's. The root token expires.
func TestDevServerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	tmp := t.TempDir()
	first := startDevChild(t, tmp)
	if filepath.Dir(first.dir) != tmp || !exists(t, filepath.Join(first.dir, "passman-dev.lock")) {
		t.Fatalf("dev directory %s: want a locked directory in %s", first.dir, tmp)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	if !exists(t, filepath.Join(first.dir, "store", "master.key")) {
		t.Fatal("the killed server's directory is already gone: the test proves nothing")
	}

	// What the sweep must leave alone.
	mkdir := func(parts ...string) string {
		p := filepath.Join(append([]string{tmp}, parts...)...)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A live server's directory: its lock is held (here, by this process).
	live := mkdir("passman-dev-live")
	lockPath := filepath.Join(live, "passman-dev.lock")
	if err := os.WriteFile(lockPath, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Open(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	// A symlink named like a dev directory, pointing at something to keep.
	precious := mkdir("precious")
	if err := os.WriteFile(filepath.Join(precious, "passman-dev.lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(precious, filepath.Join(tmp, "passman-dev-link")); err != nil {
		t.Fatal(err)
	}
	// An older passman's directory (no lock file): removed once old
	// enough if its database is not locked; a fresh one is left.
	oldLegacy := mkdir("passman-dev-legacy-old", "store")
	freshLegacy := mkdir("passman-dev-legacy-fresh", "store")
	for _, d := range []string{oldLegacy, freshLegacy} {
		if err := os.WriteFile(filepath.Join(d, "passman.db"), []byte("db"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Dir(oldLegacy), hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	other := mkdir("not-passman")

	second := startDevChild(t, tmp)
	if exists(t, first.dir) {
		t.Errorf("the killed dev server's directory %s is still there", first.dir)
	}
	if exists(t, filepath.Dir(oldLegacy)) {
		t.Error("an old unlocked legacy dev directory is still there")
	}
	for _, keep := range []string{live, precious, filepath.Join(precious, "passman-dev.lock"), filepath.Join(tmp, "passman-dev-link"), freshLegacy, other, second.dir} {
		if !exists(t, keep) {
			t.Errorf("%s was removed", keep)
		}
	}

	// The root token expires.
	c, err := client.New(client.Options{Addr: second.url, Token: second.token, CACertFile: second.cacert})
	if err != nil {
		t.Fatal(err)
	}
	self, err := c.LookupSelf(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ttl := time.Until(self.ExpiresAt); self.ExpiresAt.IsZero() || ttl > server.DevRootTokenTTL || ttl < server.DevRootTokenTTL-time.Minute {
		t.Errorf("root token expires at %v, want in %s", self.ExpiresAt, server.DevRootTokenTTL)
	}

	// Stopped normally, a dev server removes its own directory.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.cmd.Wait(); err != nil {
		for l := range second.lines {
			t.Log(l)
		}
		t.Fatalf("the dev server exited with %v", err)
	}
	if exists(t, second.dir) {
		t.Errorf("the stopped dev server's directory %s is still there", second.dir)
	}
}

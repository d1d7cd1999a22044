package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/testclock"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// runServer starts server.Run in the background and waits until it
// listens; stop cancels it and returns Run's error.
func runServer(t *testing.T, cfg server.Config) (started server.Started, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan server.Started, 1)
	cfg.Started = func(s server.Started) { ready <- s }
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	select {
	case started = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	var stopped bool
	var runErr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return started, stop
}

// TestRunDev starts a dev server, uses it with the printed credentials,
// and stops it.
func TestRunDev(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	dir := t.TempDir()
	s, stop := runServer(t, server.Config{Dev: true, DevDir: dir, Out: &out, Store: core.Options{Actor: "tester", AuditSync: audit.SyncWrite}})
	for _, want := range []string{"export PASSMAN_ADDR=" + s.URL + "\n", "export PASSMAN_TOKEN=" + s.RootToken + "\n", "export PASSMAN_CACERT=" + s.CACertFile + "\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dev output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") || !strings.HasPrefix(s.RootToken, core.TokenPrefix) {
		t.Fatalf("started = %+v", s)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("dev key file: %v, %v", fi, err)
	}
	c, err := client.New(client.Options{Addr: s.URL, Token: s.RootToken, CACertFile: s.CACertFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "dev/x", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	self, err := c.LookupSelf(ctx)
	if err != nil || self.Identity != "root" || self.Claims["role"] != "root" {
		t.Fatalf("lookup-self: %+v, %v", self, err)
	}
	// Without the CA file the self-signed certificate is refused.
	insecure, err := client.New(client.Options{Addr: s.URL, Token: s.RootToken, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := insecure.Health(ctx); err == nil {
		t.Error("a client trusted the dev certificate without PASSMAN_CACERT")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The store was closed cleanly: its audit log verifies.
	if rep, err := core.VerifyDir(ctx, filepath.Join(dir, "store")); err != nil || !rep.OK {
		t.Fatalf("audit after shutdown: %+v, %v", rep, err)
	}
}

func TestRunNeedsTLS(t *testing.T) {
	t.Parallel()
	err := server.Run(context.Background(), server.Config{Store: core.Options{Dir: t.TempDir()}})
	if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("Run without TLS: %v", err)
	}
	err = server.Run(context.Background(), server.Config{Dev: true, DevDir: t.TempDir(), Store: core.Options{PolicyDir: "x"}})
	if !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("Run --dev with policies: %v", err)
	}
}

// TestRunWithCertificate serves an existing store with a given
// certificate and a token created beforehand, as an operator would.
func TestRunWithCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pol, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "root.rego"), []byte(server.RootPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := core.Options{Dir: filepath.Join(dir, "store"), Actor: "op", AuditSync: audit.SyncWrite, PolicyDir: pol}
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: "ci", Claims: map[string]string{"role": "root"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := server.WriteSelfSigned(cert, key, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	s, stop := runServer(t, server.Config{Store: opts, TLSCertFile: cert, TLSKeyFile: key})
	if s.RootToken != "" {
		t.Errorf("a non-dev server made a root token")
	}
	c, err := client.New(client.Options{Addr: s.URL, Token: token, CACertFile: cert})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "a/b", secret.NewValue([]byte("v")), secret.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// signalReader reports its first Read: with Expect: 100-continue the
// client reads the body only once the handler has started reading it.
type signalReader struct {
	io.Reader
	first chan struct{}
	done  bool
}

func (r *signalReader) Read(p []byte) (int, error) {
	if !r.done {
		r.done = true
		close(r.first)
	}
	return r.Reader.Read(p)
}

// TestGracefulShutdown cancels the server while a request is in flight
// (its body half sent): the server stops accepting connections, the
// request completes, and Run returns without error.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, stop := runServer(t, server.Config{Dev: true, DevDir: dir, Out: io.Discard, Store: core.Options{Actor: "tester", AuditSync: audit.SyncWrite}})
	pem, err := os.ReadFile(s.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ExpectContinueTimeout: 10 * time.Second}}

	pr, pw := io.Pipe()
	body := &signalReader{Reader: pr, first: make(chan struct{})}
	req, err := http.NewRequest("PUT", s.URL+"/v1/secrets/inflight/x", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.RootToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	type answer struct {
		status int
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := hc.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		resp.Body.Close()
		answered <- answer{status: resp.StatusCode}
	}()
	go func() { _, _ = pw.Write([]byte(`{"value":"aW4tZmxp`)) }()
	select {
	case <-body.first:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never started reading the body")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Wait until the server has stopped accepting connections.
	u, _ := url.Parse(s.URL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Run returned with a request in flight: %v", err)
	default:
	}
	if _, err := pw.Write([]byte(`Z2h0"}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if a := <-answered; a.err != nil || a.status != 200 {
		t.Fatalf("in-flight request: %d, %v", a.status, a.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The write committed before the store closed.
	l, err := core.Open(context.Background(), core.Options{Dir: filepath.Join(dir, "store"), Actor: "tester", PolicyDir: filepath.Join(dir, "policies")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	v, err := l.Get(context.Background(), "inflight/x", secret.Selector{})
	if err != nil || string(v.Value.Reveal()) != "in-flight" {
		t.Fatalf("in-flight write: %q, %v", v.Value.Reveal(), err)
	}
}

// TestRunReapsTokens: the server removes the records of tokens expired
// longer ago than the retention, on its own, and logs how many.
func TestRunReapsTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := testclock.New(time.Now())
	var logBuf servertest.Buffer
	s, stop := runServer(t, server.Config{
		Dev: true, DevDir: t.TempDir(), Out: io.Discard,
		Store:          core.Options{Actor: "tester", AuditSync: audit.SyncWrite, Now: clock.Now},
		TokenRetention: time.Minute, TokenReapInterval: 10 * time.Millisecond,
		Options: server.Options{Logger: slog.New(slog.NewJSONHandler(&logBuf, nil))},
	})
	c, err := client.New(client.Options{Addr: s.URL, Token: s.RootToken, CACertFile: s.CACertFile})
	if err != nil {
		t.Fatal(err)
	}
	_, short, err := c.CreateToken(ctx, secret.TokenRequest{Identity: "ci", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	has := func() bool {
		t.Helper()
		list, err := c.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range list {
			if ti.Accessor == short.Accessor {
				return true
			}
		}
		return false
	}
	// Expired, within the retention: kept through several reaper runs.
	clock.Advance(90 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if !has() {
		t.Fatal("a token expired for less than the retention was reaped")
	}
	clock.Advance(time.Minute)
	for deadline := time.Now().Add(10 * time.Second); has(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the expired token's record was not reaped")
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if log := logBuf.String(); !strings.Contains(log, `"msg":"token records reaped","count":1`) {
		t.Errorf("no log line for the reaping:\n%s", log)
	}
	if err := server.Run(ctx, server.Config{Dev: true, DevDir: t.TempDir(), Out: io.Discard, Addr: "127.0.0.1:0", TokenRetention: -time.Second}); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("Run with a negative retention: %v", err)
	}
}

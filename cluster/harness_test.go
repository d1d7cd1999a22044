package cluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/cli"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/etcdtest"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/store/etcd"
)

// execEnv makes the test binary run as the passman command: the servers
// here are real processes (so a test can SIGKILL one) running the real
// CLI, without a separate build.
const execEnv = "PASSMAN_CLUSTERTEST_EXEC"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		os.Exit(cli.Main(context.Background(), os.Args[1:], cli.OSEnv()))
	}
	os.Exit(m.Run())
}

// deployment is a store in etcd served by passman server processes.
type deployment struct {
	t         testing.TB
	etcd      *etcdtest.Cluster
	prefix    string
	dir       string
	keyFile   string
	kr        *keyring.Keyring
	policies  string
	cert, key string
	root      string // a root token
	servers   []*serverProc
}

type serverProc struct {
	id, dir, config, addr, log string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// newDeployment initialises a store under a prefix of its own in c and
// starts n servers on it.
func newDeployment(t testing.TB, c *etcdtest.Cluster, n int) *deployment {
	t.Helper()
	ctx := context.Background()
	d := &deployment{t: t, etcd: c, prefix: etcdtest.Prefix(t.Name()), dir: t.TempDir()}
	var err error
	if d.kr, err = keyring.New(time.Now()); err != nil {
		t.Fatal(err)
	}
	d.keyFile = filepath.Join(d.dir, "master.key")
	if err := d.kr.SaveFile(d.keyFile); err != nil {
		t.Fatal(err)
	}
	d.policies = filepath.Join(d.dir, "policies")
	if err := os.MkdirAll(d.policies, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.policies, "root.rego"), []byte(server.RootPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cert, d.key = filepath.Join(d.dir, "cert.pem"), filepath.Join(d.dir, "key.pem")
	if err := server.WriteSelfSigned(d.cert, d.key, []string{"127.0.0.1", "localhost"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	// The store's creator ("admin") is admin by the bundled policy; it
	// creates the root token the tests use, as chain "setup".
	opts := core.Options{Dir: filepath.Join(d.dir, "setup"), Keyring: d.kr, Actor: "admin", AuditSync: audit.SyncWrite, PolicyDir: d.policies, ServerID: "setup"}
	opts.Backend = d.backend()
	if _, err := core.Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	opts.Backend = d.backend()
	l, err := core.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	d.root, _, err = l.CreateToken(ctx, secret.TokenRequest{Identity: "root", Claims: map[string]string{"role": "root"}})
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d.addServer(fmt.Sprintf("s%d", i))
	}
	t.Cleanup(func() {
		for _, s := range d.servers {
			s.kill()
		}
	})
	return d
}

// backend opens the store in etcd, closed when the test ends.
func (d *deployment) backend() *etcd.DB {
	d.t.Helper()
	b, err := etcd.Open(context.Background(), etcd.Config{Endpoints: d.etcd.Endpoints(), Prefix: d.prefix})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { b.Close() })
	return b
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (d *deployment) addServer(id string) *serverProc {
	d.t.Helper()
	return d.addServerWith(id, "")
}

// addServerWith is addServer with extra lines of YAML at the end of the
// server's configuration.
func (d *deployment) addServerWith(id, extra string) *serverProc {
	d.t.Helper()
	s := d.configureServer(id, extra)
	if err := d.start(s); err != nil {
		d.t.Fatal(err)
	}
	return s
}

// configureServer writes server id's configuration and adds it to d
// without starting it.
func (d *deployment) configureServer(id, extra string) *serverProc {
	d.t.Helper()
	port := freePort(d.t)
	s := &serverProc{id: id, dir: filepath.Join(d.dir, id), addr: fmt.Sprintf("https://127.0.0.1:%d", port)}
	s.config = filepath.Join(d.dir, id+".yaml")
	s.log = filepath.Join(d.dir, id+".log")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
tls_cert: %s
tls_key: %s
store: %s
key_file: %s
policies: %s
audit_sync: write
log: {level: warn}
storage: etcd
server_id: %s
etcd:
  endpoints: [%s]
  prefix: %s
%s`, port, d.cert, d.key, s.dir, d.keyFile, d.policies, id, strings.Join(d.etcd.Endpoints(), ", "), d.prefix, extra)
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		d.t.Fatal(err)
	}
	d.servers = append(d.servers, s)
	return s
}

// start runs s and waits until it is ready.
func (d *deployment) start(s *serverProc) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "server", "--config", s.config)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PASSMAN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, execEnv+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the tests, however they end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	hc := d.httpClient()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("server %s exited while starting:\n%s", s.id, tail(s.log))
		default:
		}
		resp, err := hc.Get(s.addr + "/v1/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server %s not ready: %v\n%s", s.id, err, tail(s.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs s (if it runs) and waits for it.
func (s *serverProc) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

func (d *deployment) httpClient() *http.Client {
	pem, err := os.ReadFile(d.cert)
	if err != nil {
		d.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// client returns a client of server i with token tok (root if "") that
// never retries: every answer is the outcome of exactly one attempt.
func (d *deployment) client(i int, tok string) *client.Client {
	d.t.Helper()
	if tok == "" {
		tok = d.root
	}
	c, err := client.New(client.Options{Addr: d.servers[i].addr, Token: tok, CACertFile: d.cert, Retries: -1, Timeout: 10 * time.Second})
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

// verifyAll checks every chain in the store from outside the servers.
func (d *deployment) verifyAll(ctx context.Context) {
	d.t.Helper()
	reps, err := core.VerifyCluster(ctx, d.backend(), d.kr)
	if err != nil {
		d.t.Fatalf("audit chains: %v", err)
	}
	for _, r := range reps {
		if !r.Report.OK {
			d.t.Fatalf("chain of %s: %+v", r.Server, r.Report)
		}
	}
	if len(reps) < len(d.servers) {
		d.t.Fatalf("%d chains for %d servers", len(reps), len(d.servers))
	}
}

func tail(name string) string {
	b, _ := os.ReadFile(name)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

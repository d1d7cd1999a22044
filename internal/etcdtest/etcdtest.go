// Package etcdtest runs real etcd clusters for tests: N members on free
// loopback ports, each a process that a test can SIGKILL and restart. The
// server binary is built from the wrapper module in ./etcdserver (its own
// go.mod, outside the passman build) into .tools/etcd at the repository
// root, and reused while it reports the pinned version. The etcd project
// refuses `go install` of its server (its go.mod has replace directives);
// a main that calls etcdmain.Main builds the same server.
//
// Shared returns one three-member cluster per test binary; tests on it keep
// apart by key prefix (Prefix). New starts a cluster of the test's own, for
// tests that kill members.
//
// Without a binary and without the means to build one (no go toolchain, no
// module download) tests skip with the reason, or fail when
// PASSMAN_REQUIRE_ETCD=1 (the Makefile exports it, so a broken build cannot
// turn the cluster tests into silent skips).
package etcdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/passman-dev/passman/internal/testproc"
)

// RequireEnv turns a missing or unbuildable etcd from a skip into a failure.
const RequireEnv = "PASSMAN_REQUIRE_ETCD"

// BinaryEnv names an etcd binary to use instead of building .tools/etcd.
const BinaryEnv = "PASSMAN_ETCD"

// Version is the etcd server version the wrapper module pins; the client
// library passman uses is of the same minor.
const Version = "3.6.16"

// wrapperDir is the wrapper module, relative to the repository root.
const wrapperDir = "internal/etcdtest/etcdserver"

// Options configures a cluster.
type Options struct {
	// Members is the number of members; 0 means 3.
	Members int
}

// Cluster is a running etcd cluster on 127.0.0.1.
type Cluster struct {
	dir     string
	bin     string
	token   string
	opts    Options
	members []*Member

	// The watchdog is a shell that, when its stdin closes (Stop, or the
	// test process ending however it ends), SIGKILLs every member whose
	// pid file is in dir and removes dir: no etcd outlives its tests.
	watchdog *exec.Cmd
	stdin    io.WriteCloser

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool
}

// Member is one etcd process.
type Member struct {
	Name       string
	ClientURL  string
	PeerURL    string
	clientPort int
	peerPort   int
	dataDir    string
	logPath    string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd has been waited for.
	exited chan struct{}
}

var shared testproc.Shared[*Cluster]

// Shared returns the test binary's shared three-member cluster, starting it
// on first use; it is removed when the test process exits. Tests must not
// kill its members (use New) and should keep to their own Prefix.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	c, err := shared.Get(func() (*Cluster, error) { return start(Options{}) }, func(c *Cluster) bool { return c.stopped.Load() })
	if err != nil {
		fail(t, err)
		return nil
	}
	return c
}

// New starts a cluster of the test's own, stopped and removed when the
// test ends.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := start(opts)
	if err != nil {
		fail(t, err)
		return nil
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("etcdtest: %v", err)
		}
	})
	return c
}

// Binary returns the path of an etcd binary, building it if need be; the
// test skips (or fails under PASSMAN_REQUIRE_ETCD=1) when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		fail(t, err)
		return ""
	}
	return bin
}

var prefixSeq atomic.Int64

// Prefix returns a key prefix unique in this process, for tests sharing a
// cluster.
func Prefix(name string) string {
	return fmt.Sprintf("t%d-%s/", prefixSeq.Add(1), strings.ReplaceAll(name, "/", "_"))
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.ClientURL
	}
	return eps
}

// Members returns the members, in start order.
func (c *Cluster) Members() []*Member { return c.members }

// Member returns member i.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Kill SIGKILLs member i and waits for it to exit. Killing a member that is
// not running is not an error.
func (c *Cluster) Kill(i int) error {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return nil
	}
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", m.Name, err)
	}
	<-m.exited
	m.cmd = nil
	_ = os.Remove(c.pidFile(m))
	return nil
}

// Freeze stops member i (SIGSTOP) without closing its connections, as a
// hung machine or a partition that keeps TCP up would; Thaw resumes it.
func (c *Cluster) Freeze(i int) error { return c.signal(i, syscall.SIGSTOP) }

// Thaw resumes a member Freeze stopped.
func (c *Cluster) Thaw(i int) error { return c.signal(i, syscall.SIGCONT) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("signal %s: not running", m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", m.Name, err)
	}
	return nil
}

// Restart starts member i again on its data directory and ports (it must
// have been killed) and waits until it serves.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	m := c.members[i]
	m.mu.Lock()
	running := m.cmd != nil
	m.mu.Unlock()
	if running {
		return fmt.Errorf("restart %s: still running", m.Name)
	}
	if err := c.spawn(m); err != nil {
		return err
	}
	return c.waitHealthy(ctx, m)
}

// Running reports whether member i's process is running.
func (c *Cluster) Running(i int) bool {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// Leader returns the index of the member the running members report as
// their leader.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	var lastErr error
	for _, m := range c.members {
		if !c.Running(c.index(m)) {
			continue
		}
		st, err := memberStatus(ctx, m)
		if err != nil {
			lastErr = err
			continue
		}
		if st.Leader == "" || st.Leader == "0" {
			lastErr = fmt.Errorf("%s knows no leader", m.Name)
			continue
		}
		for j, o := range c.members {
			if !c.Running(j) {
				continue
			}
			ost, err := memberStatus(ctx, o)
			if err == nil && ost.Header.MemberID == st.Leader {
				return j, nil
			}
		}
		lastErr = fmt.Errorf("leader %s is not a running member", st.Leader)
	}
	if lastErr == nil {
		lastErr = errors.New("no member is running")
	}
	return -1, fmt.Errorf("find leader: %w", lastErr)
}

// WaitLeader waits until the running members agree on a leader.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	for {
		i, err := c.Leader(ctx)
		if err == nil {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Log returns the tail of member i's log, for failure messages.
func (c *Cluster) Log(i int) string { return testproc.Tail(c.members[i].logPath, 4000) }

// Stop kills every member and removes the cluster's directory. It is
// idempotent.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopped.Store(true)
		for i := range c.members {
			if err := c.Kill(i); err != nil && c.stopErr == nil {
				c.stopErr = err
			}
		}
		_ = c.stdin.Close()
		if err := c.watchdog.Wait(); err != nil && c.stopErr == nil {
			c.stopErr = fmt.Errorf("stop cluster in %s: %w", c.dir, err)
		}
		if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) && c.stopErr == nil {
			c.stopErr = fmt.Errorf("stop cluster: %s was not removed (%v)", c.dir, err)
		}
	})
	return c.stopErr
}

func (c *Cluster) index(m *Member) int {
	for i, o := range c.members {
		if o == m {
			return i
		}
	}
	return -1
}

func (c *Cluster) pidFile(m *Member) string { return filepath.Join(c.dir, m.Name+".pid") }

// watchdogScript waits for stdin to close, then kills what the pid files
// name and removes the directory. $1 is the directory.
const watchdogScript = `read -r _
for f in "$1"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
rm -rf -- "$1"`

func start(opts Options) (*Cluster, error) {
	if opts.Members <= 0 {
		opts.Members = 3
	}
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, opts: opts, token: filepath.Base(dir)}
	ok := false
	defer func() {
		if !ok {
			if c.watchdog != nil {
				_ = c.Stop()
			} else {
				_ = os.RemoveAll(dir)
			}
		}
	}()
	wd := exec.Command("/bin/sh", "-c", watchdogScript, "etcdtest-watchdog", dir)
	// Its own session: a Ctrl-C meant for the tests must not kill it before
	// it has cleaned up.
	wd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if c.stdin, err = wd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	if err := wd.Start(); err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	c.watchdog = wd

	// Ports are picked free and released, so another process may take one
	// before etcd binds it: a failed start is retried on new ports.
	for attempt := 1; ; attempt++ {
		err = c.startMembers()
		if err == nil {
			break
		}
		if attempt == 3 {
			return nil, err
		}
		for i := range c.members {
			_ = c.Kill(i)
		}
		for _, m := range c.members {
			_ = os.RemoveAll(m.dataDir)
		}
	}
	ok = true
	return c, nil
}

func (c *Cluster) startMembers() error {
	ports, err := testproc.FreePorts(2 * c.opts.Members)
	if err != nil {
		return err
	}
	c.members = make([]*Member, c.opts.Members)
	var initial []string
	for i := range c.members {
		m := &Member{
			Name:       "m" + strconv.Itoa(i),
			clientPort: ports[2*i],
			peerPort:   ports[2*i+1],
		}
		m.ClientURL = "http://127.0.0.1:" + strconv.Itoa(m.clientPort)
		m.PeerURL = "http://127.0.0.1:" + strconv.Itoa(m.peerPort)
		m.dataDir = filepath.Join(c.dir, m.Name)
		m.logPath = filepath.Join(c.dir, m.Name+".log")
		c.members[i] = m
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	initialCluster := strings.Join(initial, ",")
	for _, m := range c.members {
		if err := c.spawnWith(m, initialCluster); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, m := range c.members {
		if err := c.waitHealthy(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) spawn(m *Member) error {
	var initial []string
	for _, o := range c.members {
		initial = append(initial, o.Name+"="+o.PeerURL)
	}
	return c.spawnWith(m, strings.Join(initial, ","))
}

func (c *Cluster) spawnWith(m *Member, initialCluster string) error {
	args := []string{
		"--name", m.Name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initialCluster,
		// Ignored once the data directory exists, so a restart rejoins.
		"--initial-cluster-state", "new",
		"--initial-cluster-token", c.token,
		// etcd's defaults (100 ms heartbeat, 1 s election timeout) assume
		// a machine that is not also running the tests: on two busy cores
		// a shorter timeout would elect leaders for nothing.
		"--heartbeat-interval", "100",
		"--election-timeout", "1000",
		// The limits passman's etcd store expects (see store/etcd).
		"--max-txn-ops", "4096",
		"--max-request-bytes", "8388608",
		"--logger", "zap",
		"--log-level", "warn",
		"--log-outputs", m.logPath,
		"--listen-metrics-urls", "",
	}
	// No fsync: a SIGKILL loses nothing the kernel has been handed, and
	// the tests kill processes, not machines. make bench-cluster runs its
	// own members, with fsync.
	args = append(args, "--unsafe-no-fsync")
	cmd := exec.Command(c.bin, args...)
	cmd.Env = etcdEnv()
	// Own process group: a terminal's Ctrl-C goes to the tests, whose
	// watchdog then kills the members.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	if err := os.WriteFile(c.pidFile(m), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("write pid file: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	return nil
}

// etcdEnv is this process's environment less ETCD_* variables, which etcd
// reads as flags.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitHealthy waits until m answers /health with true: it has a leader and
// the cluster has quorum.
func (c *Cluster) waitHealthy(ctx context.Context, m *Member) error {
	m.mu.Lock()
	exited := m.exited
	m.mu.Unlock()
	var last error
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting; log:\n%s", m.Name, testproc.Tail(m.logPath, 3000))
		default:
		}
		last = health(ctx, m)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %v; log:\n%s", m.Name, last, testproc.Tail(m.logPath, 3000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func health(ctx context.Context, m *Member) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	if h.Health != "true" {
		return fmt.Errorf("health %q: %s", h.Health, h.Reason)
	}
	return nil
}

type status struct {
	Header struct {
		MemberID string `json:"member_id"`
	} `json:"header"`
	Leader  string `json:"leader"`
	Version string `json:"version"`
}

// memberStatus asks m for its status through etcd's JSON gateway.
func memberStatus(ctx context.Context, m *Member) (status, error) {
	var st status
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+"/v3/maintenance/status", bytes.NewReader([]byte("{}")))
	if err != nil {
		return st, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", m.Name, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return st, fmt.Errorf("status of %s: %w", m.Name, err)
	}
	return st, nil
}

// unavailableError says etcd cannot be had here: a skip, not a failure,
// unless RequireEnv is set.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return e.reason }

func fail(t testing.TB, err error) {
	t.Helper()
	var ue *unavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("etcdtest: %v", err)
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("etcdtest: %v (%s=1: etcd is required)", err, RequireEnv)
		return
	}
	t.Skipf("etcdtest: SKIPPING, no etcd: %v; run make test, or build it with make etcd, or set %s", err, BinaryEnv)
}

var built struct {
	sync.Mutex
	bin string
	err error
}

// binary returns $PASSMAN_ETCD, or .tools/etcd at the repository root,
// built from the wrapper module unless it is there and of Version.
func binary() (string, error) {
	built.Lock()
	defer built.Unlock()
	if built.bin == "" && built.err == nil {
		built.bin, built.err = findOrBuild()
	}
	return built.bin, built.err
}

func findOrBuild() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if err := checkVersion(p); err != nil {
			return "", &unavailableError{reason: fmt.Sprintf("%s=%s: %v", BinaryEnv, p, err)}
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", &unavailableError{reason: err.Error()}
	}
	bin := filepath.Join(root, ".tools", "etcd")
	if checkVersion(bin) == nil {
		return bin, nil
	}
	if err := Build(root, bin); err != nil {
		return "", &unavailableError{reason: err.Error()}
	}
	return bin, checkVersion(bin)
}

// checkVersion runs bin --version and wants Version.
func checkVersion(bin string) error {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", bin, err)
	}
	if !strings.Contains(string(out), "etcd Version: "+Version+"\n") {
		return fmt.Errorf("%s is not etcd %s: %q", bin, Version, firstLine(string(out)))
	}
	return nil
}

// Build builds the wrapper module of the repository at root into bin. An
// exclusive lock on bin's directory keeps test binaries of several packages,
// started together by go test, from building it at once; the binary is
// renamed into place so none runs a half-written file.
func Build(root, bin string) error {
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return fmt.Errorf("build etcd: %w", err)
	}
	lock, err := os.OpenFile(bin+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("build etcd: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("build etcd: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if checkVersion(bin) == nil {
		return nil // another process built it while we waited
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build etcd: no go toolchain: %w", err)
	}
	tmp := bin + ".tmp"
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = filepath.Join(root, wrapperDir)
	// The wrapper is its own module: the main module's build tags and
	// flags are not meant for it.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("build etcd from %s: %w\n%s", wrapperDir, err, testproc.TailBytes(out, 3000))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("build etcd: %w", err)
	}
	return nil
}

// repoRoot walks up from the working directory (a package directory under
// go test) to the directory holding the wrapper module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, wrapperDir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s above the working directory", wrapperDir)
		}
		dir = parent
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Package pgtest starts real PostgreSQL servers for tests, from the server
// binaries of the system's PostgreSQL packages (Debian and Ubuntu: apt-get
// install postgresql; `make deps` does it). Code that talks to PostgreSQL
// is tested against the real server because quoting, authentication and
// role semantics are the server's: a fake would only confirm what the code
// already believes.
//
// Start shares one server among a test binary's tests (initdb is the slow
// part, about a second); tests keep apart by naming their roles and
// databases with Name. New starts a server of the test's own.
//
// These servers do not sync (fsync, synchronous_commit and full_page_writes
// off): they need not survive a power cut, and syncing would only slow the
// tests. NewDurable starts one with PostgreSQL's durable defaults, for
// benchmarks.
//
// Without the binaries tests skip, or fail when PASSMAN_REQUIRE_POSTGRES=1
// (CI sets it, so a missing package cannot turn the tests into silent
// skips).
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/passman-dev/passman/internal/testproc"
)

// RequireEnv is the environment variable that turns a missing PostgreSQL
// installation from a skip into a test failure.
const RequireEnv = "PASSMAN_REQUIRE_POSTGRES"

// AdminRole is the superuser role every server is initialised with.
const AdminRole = "pgtest_admin"

// debianBinGlob is where Debian's postgresql-NN packages put the server
// binaries; they are not on PATH there (only pg_ctlcluster wrappers are).
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// Server is a running PostgreSQL server listening on 127.0.0.1:Port, with
// password (SCRAM-SHA-256) authentication only.
type Server struct {
	// Port is the TCP port on 127.0.0.1.
	Port int

	adminPassword string
	dir           string // data/, sock/ and server.log live here
	binDir        string

	// The watchdog is a shell, running as the server's OS user, that stops
	// the server and removes dir when its stdin closes: when Stop closes
	// it, or when the test process exits however it exits (a panic, a
	// -timeout kill), so no server outlives its tests.
	watchdog *exec.Cmd
	stdin    io.WriteCloser

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool
}

var shared testproc.Shared[*Server]

// Start returns the test binary's shared server, starting it on first use.
// It is stopped and its directory removed when the test process exits (or
// by Stop, after which the next Start starts another). Without PostgreSQL
// installed the test is skipped, or fails if PASSMAN_REQUIRE_POSTGRES=1.
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := shared.Get(func() (*Server, error) { return start(false) }, func(s *Server) bool { return s.stopped.Load() })
	if err != nil {
		fail(t, err)
		return nil
	}
	return srv
}

// New starts a server of the test's own, stopped and removed when the test
// ends, for tests that restart or break it.
func New(t testing.TB) *Server {
	t.Helper()
	return newServer(t, false)
}

// NewDurable is New with PostgreSQL's own durability settings (fsync,
// synchronous_commit and full_page_writes on), which every other server
// here turns off for speed: for benchmarks whose figures must be those of
// a server that keeps what it acknowledged.
func NewDurable(t testing.TB) *Server {
	t.Helper()
	return newServer(t, true)
}

func newServer(t testing.TB, durable bool) *Server {
	t.Helper()
	s, err := start(durable)
	if err != nil {
		fail(t, err)
		return nil
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

var nameSeq atomic.Int64

// Name returns prefix with a suffix unique in this process, for roles and
// databases on a shared server. prefix should be a lower-case identifier.
func Name(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, nameSeq.Add(1))
}

// DSN is a URL connecting as user with password over TCP to the postgres
// database, without TLS.
func (s *Server) DSN(user, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// AdminDSN connects as the superuser AdminRole.
func (s *Server) AdminDSN() string { return s.DSN(AdminRole, s.adminPassword) }

// Exec runs sql (one or more statements, no parameters) as the superuser,
// failing the test on error.
func (s *Server) Exec(t testing.TB, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.AdminDSN())
	if err != nil {
		t.Fatalf("pgtest: connect as admin: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// LogPath is the server's log file, for tests of what a server logs.
func (s *Server) LogPath() string { return filepath.Join(s.dir, "server.log") }

// Stop stops the server at once (pg_ctl stop -m immediate: nothing here
// needs to survive) and removes its directory. It is idempotent.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		_ = s.stdin.Close()
		if err := s.watchdog.Wait(); err != nil {
			s.stopErr = fmt.Errorf("stop server in %s: %w", s.dir, err)
			return
		}
		if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
			s.stopErr = fmt.Errorf("stop server: %s was not removed (%v)", s.dir, err)
		}
	})
	return s.stopErr
}

// unavailableError says PostgreSQL is not installed (or cannot run here):
// a skip, not a failure, unless RequireEnv is set.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return e.reason }

func fail(t testing.TB, err error) {
	t.Helper()
	var ue *unavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("pgtest: %v", err)
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("pgtest: %v (%s=1: PostgreSQL is required)", err, RequireEnv)
		return
	}
	t.Skipf("pgtest: %v; install the server (Debian/Ubuntu: apt-get install postgresql, or make deps) to run this test", err)
}

// findBinDir returns the directory holding initdb and pg_ctl: the newest
// Debian-packaged version, else wherever PATH finds them.
func findBinDir(glob string) (string, error) {
	dirs, _ := filepath.Glob(glob)
	// Newest major version first: /usr/lib/postgresql/9.6 sorts after 15
	// as a string, so compare numerically.
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		va, vb := version(a), version(b)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if executable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", &unavailableError{reason: fmt.Sprintf("PostgreSQL server binaries (initdb, pg_ctl) not found in %s or on PATH", glob)}
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runAs returns the credentials the server runs with: PostgreSQL refuses
// to run as root, so root runs it as the postgres OS user the packages
// create; anyone else runs it as themselves (nil).
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, &unavailableError{reason: "running as root, and there is no postgres OS user to run PostgreSQL as (" + err.Error() + ")"}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres OS user has a non-numeric uid or gid (%s:%s)", u.Uid, u.Gid)
	}
	// Groups empty: drop root's supplementary groups too.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// maxSocketDir keeps <dir>/sock/.s.PGSQL.NNNNN within the 107 bytes a unix
// socket path may have.
const maxSocketDir = 80

func start(durable bool) (*Server, error) {
	binDir, err := findBinDir(debianBinGlob)
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	base := os.TempDir()
	if len(base) > maxSocketDir-len("/pgtest-1234567890/sock") {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	s := &Server{dir: dir, binDir: binDir, adminPassword: rand.Text()}
	ok := false
	defer func() {
		if !ok {
			if s.watchdog != nil {
				_ = s.Stop()
			} else {
				_ = os.RemoveAll(dir)
			}
		}
	}()
	if err := s.initdb(cred, durable); err != nil {
		return nil, err
	}
	if err := s.startWatchdog(cred); err != nil {
		return nil, err
	}
	// The port is picked free and then released, so another process may
	// take it before the server binds it: try a few ports.
	for attempt := 1; ; attempt++ {
		var ports []int
		ports, err = testproc.FreePorts(1)
		if err != nil {
			return nil, err
		}
		s.Port = ports[0]
		err = s.pgctl(cred, "start", "-w", "-t", "60", "-s", "-l", filepath.Join(dir, "server.log"), "-o", "-p "+strconv.Itoa(s.Port))
		if err == nil {
			break
		}
		if attempt == 3 {
			return nil, fmt.Errorf("%w\nserver log:\n%s", err, testproc.Tail(filepath.Join(dir, "server.log"), 2000))
		}
	}
	ok = true
	return s, nil
}

func (s *Server) initdb(cred *syscall.Credential, durable bool) error {
	sock := filepath.Join(s.dir, "sock")
	pwfile := filepath.Join(s.dir, "admin.pw")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	// The password goes through a file, not the command line, where any
	// local user could read it in ps.
	if err := os.WriteFile(pwfile, []byte(s.adminPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	if cred != nil {
		for _, p := range []string{s.dir, sock, pwfile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("hand %s to the postgres OS user: %w", p, err)
			}
		}
	}
	data := filepath.Join(s.dir, "data")
	args := []string{"-D", data, "-U", AdminRole, "--pwfile", pwfile, "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-locale"}
	if !durable {
		// A test server need not survive a power cut, and syncing is
		// most of initdb's time on slow disks.
		args = append(args, "--no-sync")
	}
	cmd := s.command(cred, filepath.Join(s.binDir, "initdb"), args...)
	out, err := cmd.CombinedOutput()
	_ = os.Remove(pwfile)
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Appended and rewritten in place so the files keep the owner initdb
	// gave them (the server must read them).
	conf := fmt.Sprintf(`
# pgtest
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
password_encryption = 'scram-sha-256'
max_connections = 50
shared_buffers = 16MB
`, strings.ReplaceAll(sock, "'", "''"))
	// A test server need not survive a power cut; a durable one keeps
	// PostgreSQL's defaults (every commit fsync'd before it is
	// acknowledged), stated so the log of a run shows them.
	if durable {
		conf += "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
	} else {
		conf += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
	}
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		return err
	}
	// Passwords only: the point of most tests is that a wrong one fails.
	hba := "# pgtest: password (SCRAM-SHA-256) authentication only.\n" +
		"local all all scram-sha-256\n" +
		"host  all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return nil
}

func appendFile(name, text string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("append to %s: %w", name, err)
	}
	_, err = io.WriteString(f, text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append to %s: %w", name, err)
	}
	return nil
}

// watchdogScript waits for stdin to close, then stops the server and
// removes its directory. $1 pg_ctl, $2 data directory, $3 directory.
const watchdogScript = `read -r _
"$1" stop -D "$2" -m immediate -w -t 30 >/dev/null 2>&1
rm -rf -- "$3"`

func (s *Server) startWatchdog(cred *syscall.Credential) error {
	cmd := s.command(cred, "/bin/sh", "-c", watchdogScript, "pgtest-watchdog",
		filepath.Join(s.binDir, "pg_ctl"), filepath.Join(s.dir, "data"), s.dir)
	// Its own session: a Ctrl-C meant for the tests must not kill it before
	// it has cleaned up.
	cmd.SysProcAttr.Setsid = true
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	s.watchdog, s.stdin = cmd, stdin
	return nil
}

func (s *Server) pgctl(cred *syscall.Credential, args ...string) error {
	args = append([]string{args[0], "-D", filepath.Join(s.dir, "data")}, args[1:]...)
	// pg_ctl -l sends the server's output to the log, so the server does
	// not hold CombinedOutput's pipe open.
	out, err := s.command(cred, filepath.Join(s.binDir, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", args[0], err, out)
	}
	return nil
}

// command runs name as cred's user (nil: this process's) in the server
// directory: the postgres user may not be allowed into the test's working
// directory.
func (s *Server) command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// PG* variables of the caller's environment (PGDATA, PGPORT …) must not
	// redirect the tools.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	return cmd
}

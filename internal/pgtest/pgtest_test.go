package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func connect(t *testing.T, dsn string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

func TestStartShared(t *testing.T) {
	s := Start(t)
	if s2 := Start(t); s2 != s {
		t.Fatal("second Start started another server")
	}
	conn, err := connect(t, s.AdminDSN())
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	ctx := context.Background()
	var super bool
	var sockDir, listen string
	err = conn.QueryRow(ctx, `SELECT rolsuper, current_setting('unix_socket_directories'), current_setting('listen_addresses')
		FROM pg_roles WHERE rolname = current_user`).Scan(&super, &sockDir, &listen)
	if err != nil {
		t.Fatal(err)
	}
	if !super {
		t.Error("admin role is not a superuser")
	}
	if want := filepath.Join(s.dir, "sock"); sockDir != want {
		t.Errorf("unix_socket_directories = %q, want the private %q", sockDir, want)
	}
	if listen != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1", listen)
	}
	// Every rule asks for a password: tests rely on a wrong one failing.
	rows, err := conn.Query(ctx, `SELECT type, auth_method FROM pg_hba_file_rules`)
	if err != nil {
		t.Fatal(err)
	}
	methods, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Type, Method string }])
	if err != nil {
		t.Fatal(err)
	}
	if len(methods) == 0 {
		t.Fatal("no pg_hba rules")
	}
	for _, m := range methods {
		if m.Method != "scram-sha-256" {
			t.Errorf("pg_hba %s rule uses %s, want scram-sha-256", m.Type, m.Method)
		}
	}

	_, err = connect(t, s.DSN(AdminRole, "wrong"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("wrong password: err = %v, want invalid_password (28P01)", err)
	}
}

func TestDSNEscapes(t *testing.T) {
	s := Start(t)
	role := Name("escape")
	const pw = `p@ss:w/o?rd#%&'"\ é`
	s.Exec(t, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD %s`, role, quote(pw)))
	if _, err := connect(t, s.DSN(role, pw)); err != nil {
		t.Fatalf("log in with a password needing URL escapes: %v", err)
	}
}

// quote is a minimal literal quoter for test fixtures.
func quote(s string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func TestNewStop(t *testing.T) {
	s := New(t)
	if s == Start(t) {
		t.Fatal("New returned the shared server")
	}
	fi, err := os.Stat(filepath.Join(s.dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root; its files belong to postgres.
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Error("data directory is owned by root")
		}
	}
	if _, err := connect(t, s.AdminDSN()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s left behind (%v)", s.dir, err)
	}
	if _, err := connect(t, s.AdminDSN()); err == nil {
		t.Error("server still accepts connections after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopRestartsShared(t *testing.T) {
	s := Start(t)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := Start(t)
	if s2 == s {
		t.Fatal("Start returned the stopped server")
	}
	if _, err := connect(t, s2.AdminDSN()); err != nil {
		t.Fatalf("connect to the restarted server: %v", err)
	}
}

func TestFindBinDirMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBinDir(filepath.Join(t.TempDir(), "*", "bin"))
	var ue *unavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestFindBinDirNewest(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "13"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"initdb", "pg_ctl"} {
			if err := os.WriteFile(filepath.Join(bin, f), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := findBinDir(filepath.Join(root, "*", "bin"))
	if want := filepath.Join(root, "15", "bin"); err != nil || got != want {
		t.Fatalf("findBinDir = %q, %v; want %q", got, err, want)
	}
}

// recorder records how fail ends a test, instead of ending it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = fmt.Sprintf(format, a...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestFailUnavailable(t *testing.T) {
	missing := &unavailableError{reason: "binaries not found"}

	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	fail(r, missing)
	if r.failed != "" || !strings.Contains(r.skipped, "apt-get install postgresql") {
		t.Errorf("without %s: skipped %q, failed %q; want a skip saying how to install", RequireEnv, r.skipped, r.failed)
	}

	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	fail(r, missing)
	if r.skipped != "" || !strings.Contains(r.failed, RequireEnv) {
		t.Errorf("with %s=1: skipped %q, failed %q; want a failure", RequireEnv, r.skipped, r.failed)
	}

	// A server that is installed but will not start is a failure either way.
	t.Setenv(RequireEnv, "")
	r = &recorder{TB: t}
	fail(r, errors.New("initdb: exit status 1"))
	if r.skipped != "" || r.failed == "" {
		t.Errorf("start failure: skipped %q, failed %q; want a failure", r.skipped, r.failed)
	}
}

// TestDurability: the benchmarks label their servers durable or not, so
// the settings must be what the label says.
func TestDurability(t *testing.T) {
	for name, s := range map[string]struct {
		srv  *Server
		want string
	}{
		"shared":  {Start(t), "off"},
		"durable": {NewDurable(t), "on"},
	} {
		conn, err := connect(t, s.srv.AdminDSN())
		if err != nil {
			t.Fatalf("%s: connect as admin: %v", name, err)
		}
		var fsync, syncCommit, fullPages string
		err = conn.QueryRow(context.Background(), `SELECT current_setting('fsync'), current_setting('synchronous_commit'),
			current_setting('full_page_writes')`).Scan(&fsync, &syncCommit, &fullPages)
		if err != nil {
			t.Fatal(err)
		}
		if got := fsync + " " + syncCommit + " " + fullPages; got != strings.Repeat(s.want+" ", 2)+s.want {
			t.Errorf("%s server: fsync, synchronous_commit, full_page_writes = %s, want all %s", name, got, s.want)
		}
	}
}

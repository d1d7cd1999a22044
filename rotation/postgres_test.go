package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/passman-dev/passman/internal/pgtest"
	"github.com/passman-dev/passman/secret"
)

// pgCanary is in every password the failure tests use: no error may show it.
const pgCanary = "CANARY-5d0f1e"

const pgAdminRef = "env:PASSMAN_TEST_ADMIN_DSN"

// pgResolver resolves references from a map.
type pgResolver map[string]string

func (m pgResolver) Resolve(_ context.Context, ref string) (secret.Value, error) {
	v, ok := m[ref]
	if !ok {
		return secret.Value{}, fmt.Errorf("%w: reference %s", secret.ErrNotFound, ref)
	}
	return secret.NewValue([]byte(v)), nil
}

func pgVal(s string) secret.Value { return secret.NewValue([]byte(s)) }

func pgCredVal(t *testing.T, user, pw string) secret.Value {
	t.Helper()
	b, err := json.Marshal(pgCredential{Username: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	return secret.NewValue(b)
}

func pgCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newPG builds a postgres connector on s with cfg plus admin_dsn.
func newPG(t *testing.T, s *pgtest.Server, cfg map[string]string) Connector {
	t.Helper()
	full := map[string]string{pgAdminDSN: pgAdminRef}
	for k, v := range cfg {
		full[k] = v
	}
	c, err := Postgres(full, pgResolver{pgAdminRef: s.AdminDSN()})
	if err != nil {
		t.Fatalf("Postgres(%v): %v", cfg, err)
	}
	return c
}

func pgCreateRole(t *testing.T, s *pgtest.Server, role, pw string) {
	t.Helper()
	s.Exec(t, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN PASSWORD "+pgQuoteLiteral(pw))
}

// login connects to s as role with pw, independently of the connector.
func pgLogin(t *testing.T, s *pgtest.Server, role, pw string) error {
	t.Helper()
	cfg, err := pgx.ParseConfig(s.DSN("x", "x"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = role, pw
	conn, err := pgx.ConnectConfig(pgCtx(t), cfg)
	if err != nil {
		return err
	}
	return conn.Close(pgCtx(t))
}

func pgMustLogin(t *testing.T, s *pgtest.Server, role, pw, when string) {
	t.Helper()
	if err := pgLogin(t, s, role, pw); err != nil {
		t.Fatalf("%s: role %s cannot log in: %v", when, role, err)
	}
}

// pgMustNotLogin checks the server refuses the password (not merely that the
// connection failed).
func pgMustNotLogin(t *testing.T, s *pgtest.Server, role, pw, when string) {
	t.Helper()
	err := pgLogin(t, s, role, pw)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("%s: role %s logging in with the old password: err = %v, want invalid_password (28P01)", when, role, err)
	}
}

func TestPostgresSingleUser(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	role := pgtest.Name("app")
	pgCreateRole(t, s, role, "old-password")
	c := newPG(t, s, map[string]string{pgRole: role})
	if _, ok := c.(Composer); ok {
		t.Error("the single-user strategy is a Composer")
	}

	target := Target{Path: "db/app", Version: 2, Value: pgVal("new-password"), Current: pgVal("old-password")}
	if err := c.Set(ctx, target); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := c.Test(ctx, target); err != nil {
		t.Fatalf("Test: %v", err)
	}
	pgMustLogin(t, s, role, "new-password", "after Set")
	pgMustNotLogin(t, s, role, "old-password", "after Set")

	// Steps repeat after a crash.
	if err := c.Set(ctx, target); err != nil {
		t.Fatalf("Set again: %v", err)
	}
	if err := c.Test(ctx, target); err != nil {
		t.Fatalf("Test again: %v", err)
	}
	if err := c.Revoke(ctx, Target{Path: "db/app", Version: 1, Value: pgVal("old-password")}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	pgMustLogin(t, s, role, "new-password", "after Revoke")

	// Rollback sets the current value back.
	if err := c.Set(ctx, Target{Value: pgVal("old-password")}); err != nil {
		t.Fatalf("Set (rollback): %v", err)
	}
	pgMustLogin(t, s, role, "old-password", "after rollback")
	pgMustNotLogin(t, s, role, "new-password", "after rollback")
}

func TestPostgresStoresVerifier(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	role := pgtest.Name("verifier")
	pgCreateRole(t, s, role, "x")
	c := newPG(t, s, map[string]string{pgRole: role})
	if err := c.Set(ctx, Target{Value: pgVal("ascii-password")}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored string
	if err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") {
		t.Fatalf("stored password %q is not a SCRAM-SHA-256 verifier", stored)
	}
}

// pgHostile passwords: quotes of every kind, backslashes, dollar quoting,
// SQL, escapes, control characters and Unicode (which takes the literal
// path rather than the verifier one).
var pgHostile = []string{
	`it's`,
	`"double"`,
	`back\slash`,
	`\'`,
	`'\`,
	`\\''\\`,
	`$$dollar$$`,
	`$tag$x$tag$`,
	`'; DROP ROLE postgres; --`,
	`E'\x41\n'`,
	`%s%d%%`,
	" leading and trailing space ",
	"tab\tnew\nline\rcr",
	"pässwörd-✓-🔑",
	`é'\"$$\\`,
	"日本語のパスワード",
	strings.Repeat(`a'\`, 300),
}

func TestPostgresHostilePasswords(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	// A role name that needs quoting, too.
	role := pgtest.Name(`we"ird Role`)
	pgCreateRole(t, s, role, "start")
	c := newPG(t, s, map[string]string{pgRole: role})
	ctx := pgCtx(t)
	prev := "start"
	for i, pw := range pgHostile {
		if err := c.Set(ctx, Target{Value: pgVal(pw)}); err != nil {
			t.Fatalf("%d: Set: %v", i, err)
		}
		if err := c.Test(ctx, Target{Value: pgVal(pw)}); err != nil {
			t.Fatalf("%d: Test: %v", i, err)
		}
		pgMustLogin(t, s, role, pw, fmt.Sprintf("%d", i))
		pgMustNotLogin(t, s, role, prev, fmt.Sprintf("%d", i))
		prev = pw
	}
}

// TestPostgresQuoteLiteral checks the server reads each literal back as the
// string, whatever standard_conforming_strings says.
func TestPostgresQuoteLiteral(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	conn, err := pgx.Connect(ctx, s.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, scs := range []string{"on", "off"} {
		if _, err := conn.PgConn().Exec(ctx, "SET standard_conforming_strings = "+scs).ReadAll(); err != nil {
			t.Fatal(err)
		}
		for _, pw := range pgHostile {
			res, err := conn.PgConn().Exec(ctx, "SELECT "+pgQuoteLiteral(pw)).ReadAll()
			if err != nil {
				t.Fatalf("standard_conforming_strings=%s: SELECT %s: %v", scs, pgQuoteLiteral(pw), err)
			}
			if got := string(res[0].Rows[0][0]); got != pw {
				t.Errorf("standard_conforming_strings=%s: %s reads back as %q, want %q", scs, pgQuoteLiteral(pw), got, pw)
			}
		}
	}
}

// TestPostgresNotLogged turns on every statement log and checks neither
// path (verifier, escaped literal) leaves the password in the server log,
// and that the verifier path does not even with an admin that may not
// change its session's logging.
func TestPostgresNotLogged(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	for _, sql := range []string{
		`ALTER SYSTEM SET log_statement = 'all'`,
		`ALTER SYSTEM SET log_min_duration_statement = 0`,
		`ALTER SYSTEM SET log_min_error_statement = 'error'`,
		`SELECT pg_reload_conf()`,
	} {
		s.Exec(t, sql) // ALTER SYSTEM cannot share a transaction
	}
	role := pgtest.Name("quiet")
	pgCreateRole(t, s, role, "x")
	const creator = "rolemaker"
	pgCreateRole(t, s, creator, "rolemaker-pw")
	s.Exec(t, "ALTER ROLE "+creator+" CREATEROLE")
	ctx := pgCtx(t)

	super := newPG(t, s, map[string]string{pgRole: role})
	limited, err := Postgres(map[string]string{pgAdminDSN: pgAdminRef, pgRole: role},
		pgResolver{pgAdminRef: s.DSN(creator, "rolemaker-pw")})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{pgCanary + "-ascii", pgCanary + "-ünïcode"}
	for _, step := range []struct {
		c  Connector
		pw string
	}{{super, secrets[0]}, {super, secrets[1]}, {limited, pgCanary + "-limited"}} {
		if err := step.c.Set(ctx, Target{Value: pgVal(step.pw)}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		pgMustLogin(t, s, role, step.pw, "after Set")
	}
	log, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "statement: ") {
		t.Fatalf("the server logged no statements; the test proves nothing:\n%s", log)
	}
	if strings.Contains(string(log), pgCanary) {
		t.Fatalf("server log holds a password:\n%s", log)
	}
}

func TestPostgresTwoUser(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	a, b := pgtest.Name("app_a"), pgtest.Name("app_b")
	pgCreateRole(t, s, a, "a-initial")
	pgCreateRole(t, s, b, "b-initial")
	c := newPG(t, s, map[string]string{pgRoles: a + ", " + b})
	comp, ok := c.(Composer)
	if !ok {
		t.Fatal("the two-user strategy is not a Composer")
	}
	decode := func(v secret.Value) pgCredential {
		t.Helper()
		var cred pgCredential
		if err := json.Unmarshal(v.Reveal(), &cred); err != nil {
			t.Fatalf("stored value is not JSON: %v", err)
		}
		return cred
	}

	// Rotation 1: a is current (as imported), b gets the new password.
	current := pgCredVal(t, a, "a-initial")
	pending, err := comp.Compose(current, pgVal("gen-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(pending); got != (pgCredential{Username: b, Password: "gen-1"}) {
		t.Fatalf("Compose = %+v, want %s with the generated password", got, b)
	}
	rotate := func(cur, pend secret.Value) {
		t.Helper()
		tg := Target{Value: pend, Current: cur}
		if err := c.Set(ctx, tg); err != nil {
			t.Fatalf("Set: %v", err)
		}
		if err := c.Test(ctx, tg); err != nil {
			t.Fatalf("Test: %v", err)
		}
	}
	rotate(current, pending)
	pgMustLogin(t, s, b, "gen-1", "rotation 1")
	pgMustLogin(t, s, a, "a-initial", "rotation 1, grace period")
	pgMustNotLogin(t, s, b, "b-initial", "rotation 1")

	// Grace period over: the previous credential, a's, stops working.
	for i := range 2 { // idempotent
		if err := c.Revoke(ctx, Target{Value: current, Current: pending}); err != nil {
			t.Fatalf("Revoke %d: %v", i+1, err)
		}
		pgMustNotLogin(t, s, a, "a-initial", "after Revoke")
		pgMustLogin(t, s, b, "gen-1", "after Revoke")
	}

	// Rotation 2 goes back to a.
	current = pending
	pending, err = comp.Compose(current, pgVal("gen-2"))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(pending); got.Username != a {
		t.Fatalf("Compose after %s = %s, want %s", b, got.Username, a)
	}
	rotate(current, pending)
	pgMustLogin(t, s, a, "gen-2", "rotation 2")
	pgMustLogin(t, s, b, "gen-1", "rotation 2, grace period")
	if err := c.Revoke(ctx, Target{Value: current, Current: pending}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	pgMustNotLogin(t, s, b, "gen-1", "rotation 2, after Revoke")
	pgMustLogin(t, s, a, "gen-2", "rotation 2, after Revoke")

	// Nothing to revoke.
	if err := c.Revoke(ctx, Target{}); err != nil {
		t.Errorf("Revoke of a zero value: %v", err)
	}
}

func TestPostgresCompose(t *testing.T) {
	c, err := Postgres(map[string]string{pgAdminDSN: pgAdminRef, pgRoles: "app_a,app_b"}, pgResolver{})
	if err != nil {
		t.Fatal(err)
	}
	comp := c.(Composer)
	for _, tc := range []struct {
		name    string
		current secret.Value
		want    string
	}{
		{"first rotation", secret.Value{}, "app_a"},
		{"current is app_a", pgCredVal(t, "app_a", "p"), "app_b"},
		{"current is app_b", pgCredVal(t, "app_b", "p"), "app_a"},
		{"current is a plain password", pgVal("plain"), "app_a"},
		{"current names another role", pgCredVal(t, "app_c", "p"), "app_a"},
		{"current has no password", pgVal(`{"username":"app_a"}`), "app_a"},
	} {
		v, err := comp.Compose(tc.current, pgVal("generated"))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var cred pgCredential
		if err := json.Unmarshal(v.Reveal(), &cred); err != nil {
			t.Fatal(err)
		}
		if cred.Username != tc.want || cred.Password != "generated" {
			t.Errorf("%s: Compose = %s, want %s", tc.name, cred.Username, tc.want)
		}
	}
	for _, bad := range []string{"", "nul\x00" + pgCanary, "\xff" + pgCanary} {
		_, err := comp.Compose(secret.Value{}, pgVal(bad))
		if !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("Compose(%q): err = %v, want invalid argument", bad, err)
		}
		pgCheckNoLeak(t, err, pgCanary)
	}
}

// TestPostgresTwoUserForeignRole: a stored value cannot aim ALTER ROLE at
// a role outside the configured two, the admin's least of all.
func TestPostgresTwoUserForeignRole(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	c := newPG(t, s, map[string]string{pgRoles: pgtest.Name("app_a") + "," + pgtest.Name("app_b")})
	v := pgCredVal(t, pgtest.AdminRole, pgCanary)
	for name, step := range map[string]func(context.Context, Target) error{"Set": c.Set, "Test": c.Test, "Revoke": c.Revoke} {
		err := step(ctx, Target{Value: v})
		if !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "not one of the configured roles") {
			t.Errorf("%s with the admin's role: err = %v, want invalid argument", name, err)
		}
		pgCheckNoLeak(t, err, pgCanary)
	}
	if err := pgLogin(t, s, pgtest.AdminRole, pgCanary); err == nil {
		t.Fatal("the admin's password was changed")
	}
	if _, err := pgx.Connect(ctx, s.AdminDSN()); err != nil {
		t.Fatalf("admin cannot log in: %v", err)
	}
}

func TestPostgresConfig(t *testing.T) {
	long := strings.Repeat("r", 64)
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		key  string // named in the error; "" if the config is valid
	}{
		{"single", map[string]string{"admin_dsn": "env:DSN", "role": "app"}, ""},
		{"two", map[string]string{"admin_dsn": "secret:db/admin", "roles": "app_a, app_b"}, ""},
		{"quoted names", map[string]string{"admin_dsn": "env:DSN", "role": `Odd "Name"`}, ""},
		{"63 bytes", map[string]string{"admin_dsn": "env:DSN", "role": long[:63]}, ""},
		{"test_dsn", map[string]string{"admin_dsn": "env:DSN", "role": "app", "test_dsn": "postgres://db.internal:5432/app?sslmode=verify-full"}, ""},
		{"test_dsn keywords", map[string]string{"admin_dsn": "env:DSN", "role": "app", "test_dsn": "host=db port=5432 dbname=app"}, ""},

		{"missing admin_dsn", map[string]string{"role": "app"}, "admin_dsn"},
		{"empty admin_dsn", map[string]string{"admin_dsn": "", "role": "app"}, "admin_dsn"},
		{"unknown key", map[string]string{"admin_dsn": "env:DSN", "role": "app", "rolle": "x"}, "rolle"},
		{"no role", map[string]string{"admin_dsn": "env:DSN"}, "role"},
		{"role and roles", map[string]string{"admin_dsn": "env:DSN", "role": "app", "roles": "a,b"}, "roles"},
		{"admin_dsn is a DSN", map[string]string{"admin_dsn": "postgres://admin:" + pgCanary + "@db/app", "role": "app"}, "admin_dsn"},
		{"admin_dsn env without name", map[string]string{"admin_dsn": "env:", "role": "app"}, "admin_dsn"},
		{"admin_dsn bad env name", map[string]string{"admin_dsn": "env:1X", "role": "app"}, "admin_dsn"},
		{"admin_dsn bad path", map[string]string{"admin_dsn": "secret:/abs", "role": "app"}, "admin_dsn"},
		{"admin_dsn unknown scheme", map[string]string{"admin_dsn": "vault:db", "role": "app"}, "admin_dsn"},
		{"role too long", map[string]string{"admin_dsn": "env:DSN", "role": long}, "role"},
		{"role with NUL", map[string]string{"admin_dsn": "env:DSN", "role": "a\x00b"}, "role"},
		{"role with newline", map[string]string{"admin_dsn": "env:DSN", "role": "a\nb"}, "role"},
		{"role not UTF-8", map[string]string{"admin_dsn": "env:DSN", "role": "a\xffb"}, "role"},
		{"reserved role", map[string]string{"admin_dsn": "env:DSN", "role": "pg_monitor"}, "role"},
		{"one of roles", map[string]string{"admin_dsn": "env:DSN", "roles": "app_a"}, "roles"},
		{"three roles", map[string]string{"admin_dsn": "env:DSN", "roles": "a,b,c"}, "roles"},
		{"same roles", map[string]string{"admin_dsn": "env:DSN", "roles": "a, a"}, "roles"},
		{"empty of roles", map[string]string{"admin_dsn": "env:DSN", "roles": "a,"}, "roles"},
		{"bad of roles", map[string]string{"admin_dsn": "env:DSN", "roles": "a," + long}, "roles"},
		{"test_dsn with password", map[string]string{"admin_dsn": "env:DSN", "role": "app", "test_dsn": "postgres://app:" + pgCanary + "@db/app"}, "test_dsn"},
		{"test_dsn keywords with password", map[string]string{"admin_dsn": "env:DSN", "role": "app", "test_dsn": "host=db password=" + pgCanary}, "test_dsn"},
		{"test_dsn unparseable", map[string]string{"admin_dsn": "env:DSN", "role": "app", "test_dsn": "postgres://db:port" + pgCanary + "/app"}, "test_dsn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Postgres(tc.cfg, pgResolver{})
			if tc.key == "" {
				if err != nil || c == nil {
					t.Fatalf("err = %v, want a connector", err)
				}
				return
			}
			if !errors.Is(err, secret.ErrInvalidArgument) {
				t.Fatalf("err = %v, want invalid argument", err)
			}
			if !strings.Contains(err.Error(), `"`+tc.key+`"`) {
				t.Errorf("error %q does not name key %q", err, tc.key)
			}
			pgCheckNoLeak(t, err, pgCanary)
		})
	}
	if _, err := Postgres(map[string]string{"admin_dsn": "env:DSN", "role": "app"}, nil); !errors.Is(err, secret.ErrInvalidArgument) {
		t.Errorf("nil resolver: err = %v, want invalid argument", err)
	}
}

func TestPostgresAdminDSNUnresolvable(t *testing.T) {
	t.Parallel()
	ctx := pgCtx(t)
	c, err := Postgres(map[string]string{pgAdminDSN: "env:NOT_SET", pgRole: "app"}, pgResolver{})
	if err != nil {
		t.Fatal(err)
	}
	for name, step := range map[string]func(context.Context, Target) error{"Set": c.Set, "Test": c.Test} {
		err := step(ctx, Target{Value: pgVal(pgCanary)})
		// The key, not the reference: the reference is the connection's
		// configuration, and the error becomes the rotation's status.
		if !errors.Is(err, secret.ErrNotFound) || !strings.Contains(err.Error(), "resolve admin_dsn:") {
			t.Errorf("%s: err = %v, want the resolver's not found, naming the key", name, err)
		}
		pgCheckNoLeak(t, err, pgCanary)
	}
}

func TestPostgresTestFailure(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	role := pgtest.Name("app")
	pgCreateRole(t, s, role, "right")
	c := newPG(t, s, map[string]string{pgRole: role})
	err := c.Test(ctx, Target{Value: pgVal(pgCanary)})
	if err == nil {
		t.Fatal("Test with a wrong password succeeded")
	}
	if !strings.Contains(err.Error(), "28P01") || !strings.Contains(err.Error(), role) {
		t.Errorf("err = %v, want the server's invalid_password for %s", err, role)
	}
	pgCheckNoLeak(t, err, pgCanary)
	if err := c.Test(ctx, Target{Value: pgVal("right")}); err != nil {
		t.Fatalf("Test with the right password: %v", err)
	}

	// test_dsn is where Test logs in: pointing it at the server works,
	// pointing it elsewhere fails.
	port := s.Port
	c = newPG(t, s, map[string]string{pgRole: role, pgTestDSN: fmt.Sprintf("postgres://nobody@127.0.0.1:%d/postgres?sslmode=disable", port)})
	if err := c.Test(ctx, Target{Value: pgVal("right")}); err != nil {
		t.Fatalf("Test through test_dsn: %v", err)
	}
	c = newPG(t, s, map[string]string{pgRole: role, pgTestDSN: fmt.Sprintf("host=127.0.0.1 port=%d dbname=no_such_db sslmode=disable", port)})
	if err := c.Test(ctx, Target{Value: pgVal("right")}); err == nil || !strings.Contains(err.Error(), "3D000") {
		t.Fatalf("Test through a test_dsn naming a missing database: err = %v, want invalid_catalog_name", err)
	}
}

// pgSilentServer accepts connections and never answers.
func pgSilentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return l.Addr().String()
}

func TestPostgresContext(t *testing.T) {
	t.Parallel()
	addr := pgSilentServer(t)
	c, err := Postgres(map[string]string{pgAdminDSN: pgAdminRef, pgRole: "app"},
		pgResolver{pgAdminRef: "postgres://admin:" + pgCanary + "@" + addr + "/db?sslmode=disable"})
	if err != nil {
		t.Fatal(err)
	}
	for name, step := range map[string]func(context.Context, Target) error{"Set": c.Set, "Test": c.Test} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := step(ctx, Target{Value: pgVal(pgCanary)})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s against a silent server: err = %v, want deadline exceeded", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v despite a 300ms deadline", name, d)
		}
		pgCheckNoLeak(t, err, pgCanary)

		ctx, cancel = context.WithCancel(context.Background())
		cancel()
		if err := step(ctx, Target{Value: pgVal(pgCanary)}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want canceled", name, err)
		}
	}
}

// TestPostgresNoValueInErrors drives every failure path with the pgCanary in
// the password (and in the admin DSN) and checks no error shows it.
func TestPostgresNoValueInErrors(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	role := pgtest.Name("app")
	pgCreateRole(t, s, role, "right")
	weak := pgtest.Name("weak")
	pgCreateRole(t, s, weak, "weak-pw")

	connector := func(dsn string, cfg map[string]string) Connector {
		full := map[string]string{pgAdminDSN: pgAdminRef}
		for k, v := range cfg {
			full[k] = v
		}
		c, err := Postgres(full, pgResolver{pgAdminRef: dsn})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	single := connector(s.AdminDSN(), map[string]string{pgRole: role})
	missing := connector(s.AdminDSN(), map[string]string{pgRole: pgtest.Name("no_such_role")})
	powerless := connector(s.DSN(weak, "weak-pw"), map[string]string{pgRole: role})
	wrongAdmin := connector(s.DSN(pgtest.AdminRole, pgCanary), map[string]string{pgRole: role})
	refused := connector("postgres://admin:"+pgCanary+"@127.0.0.1:1/db?sslmode=disable", map[string]string{pgRole: role})
	unparseable := connector("postgres://admin:"+pgCanary+"@127.0.0.1:port/db", map[string]string{pgRole: role})
	unparseableKV := connector("host=127.0.0.1 password="+pgCanary+" port=x", map[string]string{pgRole: role})
	two := connector(s.AdminDSN(), map[string]string{pgRoles: role + "," + weak})
	deadTest := connector(s.AdminDSN(), map[string]string{pgRole: role, pgTestDSN: "postgres://127.0.0.1:1/db?sslmode=disable"})

	pw := pgVal("pw-" + pgCanary)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"Set on a missing role", missing.Set(ctx, Target{Value: pw})},
		{"Set without privilege", powerless.Set(ctx, Target{Value: pw})},
		{"Set with a wrong admin password", wrongAdmin.Set(ctx, Target{Value: pw})},
		{"Set with the server down", refused.Set(ctx, Target{Value: pw})},
		{"Set with an unparseable admin DSN", unparseable.Set(ctx, Target{Value: pw})},
		{"Set with an unparseable keyword admin DSN", unparseableKV.Set(ctx, Target{Value: pw})},
		{"Set with a NUL", single.Set(ctx, Target{Value: pgVal("a\x00" + pgCanary)})},
		{"Set with bad UTF-8", single.Set(ctx, Target{Value: pgVal("\xff" + pgCanary)})},
		{"Set cancelled", single.Set(cancelled, Target{Value: pw})},
		{"Test with a wrong password", single.Test(ctx, Target{Value: pw})},
		{"Test on a missing role", missing.Test(ctx, Target{Value: pw})},
		{"Test with the test server down", deadTest.Test(ctx, Target{Value: pw})},
		{"Test with an unparseable admin DSN", unparseable.Test(ctx, Target{Value: pw})},
		{"two-user Set of broken JSON", two.Set(ctx, Target{Value: pgVal(`{"username":"` + role + `","password":"` + pgCanary)})},
		{"two-user Set of a plain password", two.Set(ctx, Target{Value: pgVal(pgCanary)})},
		{"two-user Set of a wrong type", two.Set(ctx, Target{Value: pgVal(`{"username":"` + role + `","password":["` + pgCanary + `"]}`)})},
		{"two-user Test with a wrong password", two.Test(ctx, Target{Value: pgCredVal(t, role, pgCanary)})},
		{"two-user Revoke of a plain password", two.Revoke(ctx, Target{Value: pgVal(pgCanary)})},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		pgCheckNoLeak(t, tc.err, pgCanary)
	}
	pgMustLogin(t, s, role, "right", "after the failures")
}

// pgCheckNoLeak fails if err, printed any way, or anything in its chain,
// shows needle, or if a pgx error that keeps the password is reachable.
func pgCheckNoLeak(t *testing.T, err error, needle string) {
	t.Helper()
	if err == nil {
		return
	}
	var queue = []error{err}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			if s := fmt.Sprintf(format, e); strings.Contains(s, needle) {
				t.Errorf("error printed with %s shows the value: %s", format, s)
			}
		}
		if v := reflect.ValueOf(e); v.Kind() == reflect.Pointer && !v.IsNil() {
			if s := fmt.Sprintf("%+v", v.Elem().Interface()); strings.Contains(s, needle) {
				t.Errorf("error's fields show the value: %s", s)
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if w := u.Unwrap(); w != nil {
				queue = append(queue, w)
			}
		case interface{ Unwrap() []error }:
			queue = append(queue, u.Unwrap()...)
		}
	}
	if errors.As(err, new(*pgconn.ConnectError)) || errors.As(err, new(*pgconn.ParseConfigError)) {
		t.Errorf("error %v wraps a pgx error that keeps the connection's password", err)
	}
}

// TestPostgresStepError covers what the server cannot be made to do: quote the
// password in an error.
func TestPostgresStepError(t *testing.T) {
	ctx := context.Background()
	syntax := &pgconn.PgError{Severity: "ERROR", Code: "42601", Message: `syntax error at or near "` + pgCanary[:4] + `"`}
	err := pgStepError(ctx, "set password", syntax, pgCanary)
	if strings.Contains(err.Error(), pgCanary[:4]) || !strings.Contains(err.Error(), "42601") {
		t.Errorf("syntax error: %v", err)
	}
	quoting := errors.New("something about " + pgCanary)
	if err := pgStepError(ctx, "set password", quoting, pgCanary); strings.Contains(err.Error(), pgCanary) || !strings.Contains(err.Error(), "withheld") {
		t.Errorf("quoting error: %v", err)
	}
	denied := &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied to alter role"}
	if err := pgStepError(ctx, "set password", denied, pgCanary); err.Error() != "set password: ERROR: permission denied to alter role (SQLSTATE 42501)" {
		t.Errorf("denied: %v", err)
	}
}

// TestPostgresErrorsHideTheEndpoint: a failed connection's error names no
// user, database, host or port of the connection's DSN: the error reaches
// callers, the rotation status and the audit log, and the DSN is the
// operator's.
func TestPostgresErrorsHideTheEndpoint(t *testing.T) {
	s := pgtest.Start(t)
	ctx := pgCtx(t)
	role := pgtest.Name("app")
	pgCreateRole(t, s, role, "right")
	connector := func(dsn string) Connector {
		c, err := Postgres(map[string]string{pgAdminDSN: pgAdminRef, pgRole: role}, pgResolver{pgAdminRef: dsn})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const opsUser, opsDB = "ops_admin_7c1", "ops_db_7c1"
	port := strconv.Itoa(s.Port)
	for name, err := range map[string]error{
		"wrong admin password": connector(s.DSN(opsUser, "wrong")).Set(ctx, Target{Value: pgVal("pw-1-Abcdefgh")}),
		"server down":          connector("postgres://"+opsUser+":x@127.0.0.1:1/"+opsDB+"?sslmode=disable").Set(ctx, Target{Value: pgVal("pw-1-Abcdefgh")}),
		"no such database":     connector(strings.Replace(s.AdminDSN(), "/postgres?", "/"+opsDB+"?", 1)).Set(ctx, Target{Value: pgVal("pw-1-Abcdefgh")}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, needle := range []string{opsUser, opsDB, "127.0.0.1", ":" + port, pgtest.AdminRole + "\""} {
			if strings.Contains(err.Error(), needle) {
				t.Errorf("%s: error shows %q: %v", name, needle, err)
			}
		}
		t.Logf("%s: %v", name, err)
	}
}

package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/pgtest"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// pgSetup creates a login role with password pw on a real server and a
// secret rotated by the postgres connector (single-user) holding pw.
func pgSetup(t *testing.T, l *core.Local, path, pw string) (*pgtest.Server, string, *rotation.Runner) {
	t.Helper()
	srv := pgtest.Start(t)
	role := pgtest.Name("app")
	srv.Exec(t, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN PASSWORD '"+pw+"'")
	pgConnection(t, l, srv, path, role, nil)
	md := &secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: "pg", Length: 32, Params: map[string]string{"role": role}}}
	if _, err := l.Put(context.Background(), path, secret.NewValue([]byte(pw)), secret.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	return srv, role, &rotation.Runner{Store: l, Connectors: l}
}

// pgConnection makes connection "pg" to srv for path and role, its admin
// DSN a managed secret (ops/pg-admin) the connection reads with its own
// authority; extra adds config.
func pgConnection(tb testing.TB, l *core.Local, srv *pgtest.Server, path, role string, extra map[string]string) {
	tb.Helper()
	ctx := context.Background()
	if _, err := l.Put(ctx, "ops/pg-admin", secret.NewValue([]byte(srv.AdminDSN())), secret.PutOptions{}); err != nil {
		tb.Fatal(err)
	}
	config := map[string]string{"admin_dsn": "secret:ops/pg-admin"}
	maps.Copy(config, extra)
	c := secret.Connection{Name: "pg", Connector: "postgres", Config: config, AllowedPaths: []string{path}, AllowedRoles: []string{role}}
	if _, err := l.PutConnection(ctx, c); err != nil {
		tb.Fatal(err)
	}
}

func pgCanLogin(t *testing.T, srv *pgtest.Server, role, pw string) bool {
	t.Helper()
	cfg, err := pgx.ParseConfig(srv.DSN(role, "x"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = pw
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if !strings.Contains(err.Error(), "password authentication failed") {
			t.Fatalf("login as %s failed for another reason than the password: %v", role, err)
		}
		return false
	}
	conn.Close(ctx)
	return true
}

// TestLeakRotatesPostgresPassword is the loop end to end: a managed
// database password is committed to a git repository; the scan finds it by
// fingerprint; the bundled respond policy says rotate; the role's password
// changes on the real server, the leaked one stops working, and the audit
// log shows the finding, the decision and every step.
func TestLeakRotatesPostgresPassword(t *testing.T) {
	l := openStore(t, nil)
	const leaked = "Pg7leakedPassw0rdXq"
	srv, role, e := pgSetup(t, l, "prod/db/password", leaked)

	repo, git := newRepo(t)
	if err := os.WriteFile(filepath.Join(repo, "settings.env"), []byte("DATABASE_URL=postgres://"+role+":"+leaked+"@db:5432/app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "settings")

	findings := scanManaged(t, l, repo)
	var f *scanner.Finding
	for i := range findings {
		if findings[i].Managed != nil {
			f = &findings[i]
		}
	}
	if f == nil || f.Managed.Path != "prod/db/password" || f.Managed.Version != 1 {
		t.Fatalf("managed finding not found: %+v", findings)
	}
	pe, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Respond(context.Background(), rotation.Leak{Path: f.Managed.Path, Version: f.Managed.Version,
		Where: "settings.env:1 in commit " + f.Commit[:12], Finding: map[string]any{"rule": f.RuleID, "file": f.File, "commit": f.Commit}}, pe.Respond)
	if err != nil || res.Rotation == nil || res.Rotation.To != 2 {
		t.Fatalf("response %+v: %v", res, err)
	}
	_, now := current(t, l, "prod/db/password")
	if pgCanLogin(t, srv, role, leaked) {
		t.Fatal("the leaked password still logs in")
	}
	if !pgCanLogin(t, srv, role, now) {
		t.Fatal("the new password does not log in")
	}
	entries, err := l.QueryAudit(context.Background(), audit.Filter{Path: "prod/db/password"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, en := range entries {
		if tr := en.Details["rotation_trigger"]; tr != "" {
			if !strings.Contains(tr, "leak: settings.env:1 in commit "+f.Commit[:12]) || !strings.Contains(tr, "policy: v1 is the current value") {
				t.Fatalf("trigger %q does not name the finding and the decision", tr)
			}
			steps = append(steps, en.Details["rotation_state"]+":"+en.Details["rotation_step"])
		}
	}
	if got := strings.Join(steps, ","); !strings.HasPrefix(got, "in_progress:create,in_progress:set,in_progress:test,in_progress:finish,succeeded:") {
		t.Fatalf("audited steps %s", got)
	}
	assertNoValueLeaks(t, l, leaked, err2s(err), strings.Join(res.Done, ";"))
	assertNoValueLeaks(t, l, now)
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestPostgresCrashBetweenSetAndFinish kills a rotation (as a crash would)
// after the role's password was changed and before the new version was
// promoted; the next run completes it, checked against the real server.
func TestPostgresCrashBetweenSetAndFinish(t *testing.T) {
	for _, after := range []string{"status:test", "status:finish"} {
		t.Run(after, func(t *testing.T) {
			l := openStore(t, nil)
			const first = "Pg7firstPassw0rdAb"
			srv, role, e := pgSetup(t, l, "app/db", first)
			crashing := *e
			crashing.Store = &crashStore{Local: l, after: after}
			if _, err := crashing.Rotate(context.Background(), "app/db", "manual"); !errors.Is(err, errCrash) {
				t.Fatalf("first run: %v", err)
			}
			// Mid-rotation the server holds the pending password already.
			pending, err := l.Get(context.Background(), "app/db", secret.Selector{Stage: secret.StagePending})
			if err != nil {
				t.Fatal(err)
			}
			if !pgCanLogin(t, srv, role, string(pending.Value.Reveal())) {
				t.Fatal("set had not applied the pending password")
			}
			res, err := e.Rotate(context.Background(), "app/db", "manual")
			if err != nil || !res.Resumed || res.To != pending.Info.Version {
				t.Fatalf("resume: %+v %v", res, err)
			}
			v, val := current(t, l, "app/db")
			if v != pending.Info.Version || !pgCanLogin(t, srv, role, val) || pgCanLogin(t, srv, role, first) {
				t.Fatal("store and server disagree after the resumed rotation")
			}
		})
	}
}

// TestPostgresTestFailureRollsBack: the new password is set but the test
// step fails (the test DSN points at a database that does not exist); the
// rollback restores the old password on the server and the store keeps it.
func TestPostgresTestFailureRollsBack(t *testing.T) {
	l := openStore(t, nil)
	const first = "Pg7firstPassw0rdCd"
	srv, role, e := pgSetup(t, l, "app/db", first)
	pgConnection(t, l, srv, "app/db", role, map[string]string{
		"test_dsn": fmt.Sprintf("postgres://127.0.0.1:%d/no_such_database?sslmode=disable", srv.Port),
	})
	res, err := e.Rotate(context.Background(), "app/db", "manual")
	if err == nil || res.State != secret.RotationRolledBack {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if !pgCanLogin(t, srv, role, first) {
		t.Fatal("the old password does not work after the rollback")
	}
	if v, val := current(t, l, "app/db"); v != 1 || val != first {
		t.Fatalf("store current v%d", v)
	}
	assertNoValueLeaks(t, l, first, err.Error(), res.Error)
}

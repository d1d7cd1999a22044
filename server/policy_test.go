package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/server/servertest"
)

// tokenReadInput asks whether a root-claimed token may read app/x: the
// test server's policy says yes, the bundled policy alone no.
const tokenReadInput = `{"subject":{"id":"ci","kind":"token","claims":{"role":"root"}},"action":"read","path":"app/x","store":{"created_by":"admin"}}`

// TestPolicyEvalOverHTTP: the answer is what the server's engine's Eval
// returns, evaluated with the server's policies; it is an admin action,
// audited by decision name.
func TestPolicyEvalOverHTTP(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	root := e.Tokens[servertest.Root]

	res := send(t, e, "POST", "/v1/policy/eval", root, strings.NewReader(`{"decision":"authz","input":`+tokenReadInput+`}`))
	if res.status != 200 {
		t.Fatalf("eval: %d %s", res.status, res.body)
	}
	eng, err := policy.New(ctx, policy.Options{Dir: e.Store.PolicyDir})
	if err != nil {
		t.Fatal(err)
	}
	local, err := eng.Eval(ctx, policy.DecisionAuthz, json.RawMessage(tokenReadInput), false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(local)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.body)); got != string(want) || !strings.Contains(got, `"allow":true`) {
		t.Errorf("eval answered\n%s\nthe engine says\n%s", got, want)
	}

	res = send(t, e, "POST", "/v1/policy/eval", root, strings.NewReader(`{"decision":"respond","explain":true,"input":{"finding":{"rule":"passman-managed"},"secret":{"path":"app/x","version":1,"stages":["previous"],"state":"active"}}}`))
	var r struct {
		Result      policy.Response `json:"result"`
		Explanation []string        `json:"explanation"`
	}
	if err := json.Unmarshal(res.body, &r); res.status != 200 || err != nil || len(r.Result.Actions) != 1 || r.Result.Actions[0].Action != policy.RespondNotify || len(r.Explanation) == 0 {
		t.Errorf("respond eval: %d %.300s", res.status, res.body)
	}

	if res := send(t, e, "POST", "/v1/policy/eval", e.Tokens[servertest.Reader], strings.NewReader(`{"decision":"authz","input":`+tokenReadInput+`}`)); res.status != 403 || res.class() != "permission_denied" {
		t.Errorf("eval as reader: %d %s", res.status, res.body)
	}
	var got []string
	err = audit.Read(ctx, filepath.Join(e.Store.Dir, core.AuditFile), audit.Filter{Action: core.ActionPolicyEval}, func(en audit.Entry) error {
		got = append(got, en.Actor+":"+string(en.Outcome)+":"+en.Details["decision"])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "root-user:success:authz root-user:success:respond reader-user:denied:authz" {
		t.Errorf("policy.eval entries: %s", s)
	}
}

// TestPolicyEvalHostile: oversized, malformed and invalid eval requests are
// refused, and nothing of an input reaches a log or the audit log.
func TestPolicyEvalHostile(t *testing.T) {
	t.Parallel()
	h, e := envTarget(t)
	canaryInput := `{"subject":{"id":"` + hostileCanary + `","kind":"user"},"action":"read","path":"app/x","store":{"created_by":"admin"}}`
	var res []result
	for _, c := range []struct {
		name, body string
		status     int
		class      string
	}{
		{"malformed", `{"decision":"authz","input":{`, 400, "invalid_argument"},
		{"empty", ``, 400, "invalid_argument"},
		{"no input", `{"decision":"authz"}`, 400, "invalid_argument"},
		{"unknown field", `{"decision":"authz","input":{},"` + hostileCanary + `":1}`, 400, "invalid_argument"},
		{"trailing data", `{"decision":"authz","input":{}} {}`, 400, "invalid_argument"},
		{"unknown decision", `{"decision":"` + hostileCanary + `","input":{}}`, 400, "invalid_argument"},
		{"decision as number", `{"decision":7,"input":{}}`, 400, "invalid_argument"},
		{"oversized", `{"decision":"authz","input":"` + strings.Repeat("A", 5<<20) + `"}`, 413, "too_large"},
		// Evaluated, as the caller asked: allowed for the admin, and
		// nothing of it logged.
		{"canary input", `{"decision":"authz","input":` + canaryInput + `}`, 200, ""},
	} {
		r := h.do(t, "POST", "/v1/policy/eval", nil, strings.NewReader(c.body))
		if r.status != c.status || r.class() != c.class {
			t.Errorf("%s: %d %.300s, want %d %s", c.name, r.status, r.body, c.status, c.class)
		}
		if c.status != 200 {
			res = append(res, r)
		}
	}
	h.noCanary(t, res)
	b, err := os.ReadFile(filepath.Join(e.Store.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), hostileCanary) {
		t.Error("the audit log holds the canary")
	}
}

// lintInput is a valid lint input of exactly n bytes: one secret whose
// description pads it.
func lintInput(n int) string {
	const head, tail = `{"source":"store","secrets":[{"path":"app/x","description":"`, `"}]}`
	return head + strings.Repeat("<", n-len(head)-len(tail)) + tail
}

// TestPolicyEvalInputLimit: with the server's default body limit (sized
// for a secret value, ~1.9 MB), an input of the documented 4 MiB is
// evaluated and one byte more is refused; the body is bounded all the
// same, and an operator's smaller limit still applies.
func TestPolicyEvalInputLimit(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	root := e.Tokens[servertest.Root]
	eval := func(e *servertest.Env, input string) result {
		return send(t, e, "POST", "/v1/policy/eval", root, strings.NewReader(`{"decision":"lint","input":`+input+`}`))
	}
	if res := eval(e, lintInput(api.MaxPolicyInput)); res.status != 200 {
		t.Errorf("input of exactly %d bytes: %d %.300s", api.MaxPolicyInput, res.status, res.body)
	}
	if res := eval(e, lintInput(api.MaxPolicyInput+1)); res.status != 413 || res.class() != "too_large" {
		t.Errorf("input one byte over: %d %.300s", res.status, res.body)
	}
	// Whitespace is part of the input as sent: a body of 5 MiB is refused
	// by its length, before it is read.
	if res := eval(e, `{"source":"store","secrets":[]`+strings.Repeat(" ", 5<<20)+`}`); res.status != 413 || res.class() != "too_large" {
		t.Errorf("5 MiB body: %d %.300s", res.status, res.body)
	}
	small := servertest.New(t, servertest.Options{MaxBodyBytes: 1 << 20})
	if res := send(t, small, "POST", "/v1/policy/eval", small.Tokens[servertest.Root], strings.NewReader(`{"decision":"lint","input":`+lintInput(2<<20)+`}`)); res.status != 413 {
		t.Errorf("2 MiB input over an operator's 1 MiB limit: %d %.300s", res.status, res.body)
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

func policyBody(t *testing.T, src string) *strings.Reader {
	t.Helper()
	b, err := json.Marshal(api.PolicyPutRequest{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReader(string(b))
}

// nobodyReadsApp lets the token identity nobody-user read under app/.
const nobodyReadsApp = `package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.id == "nobody-user"
	input.action == "read"
	startswith(input.path, "app/")
}
`

// TestPolicyRoutes: only an administrator changes or reads the stored
// modules, and a refused caller changes nothing; a stored module decides
// the server's next request; names, sizes and sources that must not get
// in are refused with where and why.
func TestPolicyRoutes(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	root, reader, nobody := e.Tokens[servertest.Root], e.Tokens[servertest.Reader], e.Tokens[servertest.Nobody]
	seed(t, e, "app/db", 1)
	if r := send(t, e, "GET", "/v1/secrets/app/db", nobody, nil); r.status != 404 {
		t.Fatalf("nobody before: %d %s", r.status, r.body)
	}

	for _, tok := range []string{reader, nobody} {
		for _, c := range []struct{ method, target, body string }{
			{"PUT", "/v1/policies/mine", nobodyReadsApp},
			{"PUT", "/v1/policies/huge", strings.Repeat("#", secret.MaxPolicySource+1)},
			{"GET", "/v1/policies", ""},
			{"GET", "/v1/policies/mine", ""},
			{"DELETE", "/v1/policies/mine", ""},
		} {
			var r result
			if c.body != "" {
				r = send(t, e, c.method, c.target, tok, policyBody(t, c.body))
			} else {
				r = send(t, e, c.method, c.target, tok, nil)
			}
			if r.status != 403 {
				t.Errorf("%s %s as a non-admin: %d %s", c.method, c.target, r.status, r.body)
			}
		}
	}
	if mods, err := e.Local.ListPolicies(context.Background()); err != nil || len(mods) != 0 {
		t.Fatalf("after refused puts: %v %v", mods, err)
	}

	r := send(t, e, "PUT", "/v1/policies/nobody", root, policyBody(t, nobodyReadsApp))
	var m secret.PolicyModule
	if r.status != 200 || json.Unmarshal(r.body, &m) != nil || m.Version != 1 || m.Name != "nobody" || m.Source != nobodyReadsApp {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if r := send(t, e, "GET", "/v1/secrets/app/db", nobody, nil); r.status != 200 {
		t.Errorf("nobody with the stored module: %d %s", r.status, r.body)
	}
	r = send(t, e, "GET", "/v1/policies", root, nil)
	var list api.PolicyListResponse
	if r.status != 200 || json.Unmarshal(r.body, &list) != nil || len(list.Policies) != 1 || list.Policies[0].Source != "" || list.Policies[0].SHA256 != m.SHA256 {
		t.Errorf("list: %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		name, target, body string
		status             int
		want               string
	}{
		{"compile error", "/v1/policies/bad", `{"source":"package passman.authz\n\nallow if {\n\tinput.action ==\n}\n"}`, 400, "store:bad.rego:5:"},
		{"breaks a bundled test", "/v1/policies/open", `{"source":"package passman.authz\n\nallow if input.action != \"\"\n"}`, 400, "bundled/authz_test.rego:20: data.passman.authz_test.test_other_user_denied: failed"},
		{"empty source", "/v1/policies/empty", `{"source":""}`, 400, "store:empty.rego"},
		{"no source", "/v1/policies/empty", `{}`, 400, "store:empty.rego"},
		{"unknown field", "/v1/policies/x", `{"source":"package x","name":"y"}`, 400, ""},
		{"not JSON", "/v1/policies/x", `package x`, 400, ""},
		{"source too large", "/v1/policies/huge", "", 413, "at most 1048576"},
		{"body too large", "/v1/policies/huge", `{"source":"` + strings.Repeat("\\n", secret.MaxPolicySource+3<<10) + `"}`, 413, ""},
		{"traversal", "/v1/policies/../secrets/app/db", `{"source":"package x"}`, 400, ""},
		{"slash", "/v1/policies/a/b", `{"source":"package x"}`, 400, ""},
		{"empty name", "/v1/policies/", `{"source":"package x"}`, 400, ""},
		{"long name", "/v1/policies/" + strings.Repeat("a", 65), `{"source":"package x"}`, 400, ""},
		{"upper case", "/v1/policies/Bad", `{"source":"package x"}`, 400, ""},
		{"dot", "/v1/policies/x.rego", `{"source":"package x"}`, 400, ""},
	} {
		body := strings.NewReader(c.body)
		if c.name == "source too large" {
			body = policyBody(t, strings.Repeat("#", secret.MaxPolicySource+1))
		}
		r := send(t, e, "PUT", c.target, root, body)
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want %d %q", c.name, r.status, r.body, c.status, c.want)
		}
	}
	if mods, _ := e.Local.ListPolicies(context.Background()); len(mods) != 1 {
		t.Errorf("%d modules after refused puts, want 1", len(mods))
	}
	if r := send(t, e, "GET", "/v1/policies/none", root, nil); r.status != 404 {
		t.Errorf("get missing: %d %s", r.status, r.body)
	}
	if r := send(t, e, "DELETE", "/v1/policies/nobody", root, nil); r.status != 204 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := send(t, e, "GET", "/v1/secrets/app/db", nobody, nil); r.status != 404 {
		t.Errorf("nobody after the delete: %d %s", r.status, r.body)
	}
	if strings.Contains(e.Log.String(), "startswith(input.path") {
		t.Error("the request log holds a policy's source")
	}
}

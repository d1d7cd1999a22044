package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

func compareBody(v string) string {
	return `{"value":"` + base64.StdEncoding.EncodeToString([]byte(v)) + `"}`
}

// TestCompareRoute: POST /v1/compare/{path} answers equal or not to a
// reader; a denied path and a missing one answer the same 404 body;
// malformed and oversized bodies are refused; neither the request log nor
// the audit log holds the compared value.
func TestCompareRoute(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{MaxBodyBytes: 4 << 10})
	reader := e.Tokens[servertest.Reader]
	seed(t, e, "app/db", 1)    // value "app/db-v1"
	seed(t, e, "locked/db", 1) // no token may read it
	const canary = "CANARY-srv-compare-51d0"

	for _, c := range []struct {
		value string
		want  bool
	}{{"app/db-v1", true}, {"app/db-v2", false}, {canary, false}} {
		r := send(t, e, "POST", "/v1/compare/app/db", reader, strings.NewReader(compareBody(c.value)))
		var got api.CompareResponse
		if r.status != 200 || json.Unmarshal(r.body, &got) != nil || got.Equal != c.want {
			t.Errorf("compare %q: %d %s, want equal=%v", c.value, r.status, r.body, c.want)
		}
	}

	missing := send(t, e, "POST", "/v1/compare/app/nothing", reader, strings.NewReader(compareBody(canary)))
	denied := send(t, e, "POST", "/v1/compare/locked/db", reader, strings.NewReader(compareBody("locked/db-v1")))
	nobody := send(t, e, "POST", "/v1/compare/app/db", e.Tokens[servertest.Nobody], strings.NewReader(compareBody("app/db-v1")))
	for name, r := range map[string]result{"denied": denied, "nobody": nobody} {
		if r.status != 404 || !bytes.Equal(r.body, missing.body) {
			t.Errorf("%s: %d %s; missing: %d %s", name, r.status, r.body, missing.status, missing.body)
		}
	}

	for _, c := range []struct {
		name, body string
		status     int
	}{
		{"not JSON", `value=x`, 400},
		{"no value", `{}`, 400},
		{"value not base64", `{"value":"@@@"}`, 400},
		{"value a number", `{"value":1}`, 400},
		{"unknown field", `{"value":"eA==","path":"app/db"}`, 400},
		{"duplicate key", `{"value":"eA==","value":"eQ=="}`, 400},
		{"trailing data", `{"value":"eA=="}{}`, 400},
		{"oversized", compareBody(strings.Repeat("x", 8<<10)), 413},
	} {
		r := send(t, e, "POST", "/v1/compare/app/db", reader, strings.NewReader(c.body))
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
		}
	}
	if r := send(t, e, "GET", "/v1/compare/app/db", reader, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET compare: %d %s", r.status, r.body)
	}

	raw, err := os.ReadFile(filepath.Join(e.Store.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"audit log": raw, "request log": e.Log.Bytes()} {
		if bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(canary)))) {
			t.Errorf("the %s holds a compared value", name)
		}
	}
	if n := bytes.Count(raw, []byte(`"action":"`+core.ActionCompare+`"`)); n != 7 {
		t.Errorf("%d compare entries in the audit log, want 7 (3 answered, 3 not found, 1 empty value)", n)
	}
}

// TestCompareRateLimited: compares spend the caller's rate-limit bucket
// like any other request.
func TestCompareRateLimited(t *testing.T) {
	t.Parallel()
	const burst = 3
	e := servertest.New(t, servertest.Options{Limiter: server.NewRateLimiter(0.001, burst, 100)})
	seed(t, e, "app/db", 1)
	var ok, limited int
	for range 2 * burst {
		switch r := send(t, e, "POST", "/v1/compare/app/db", e.Tokens[servertest.Reader], strings.NewReader(compareBody("guess"))); r.status {
		case 200:
			ok++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Errorf("%d %s", r.status, r.body)
		}
	}
	if ok != burst || limited != burst {
		t.Errorf("%d served, %d limited; want %d and %d", ok, limited, burst, burst)
	}
}

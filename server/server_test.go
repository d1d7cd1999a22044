package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server/servertest"
)

// result is one response, read whole.
type result struct {
	status int
	body   []byte
	header http.Header
}

func (r result) class() string {
	var er api.ErrorResponse
	_ = json.Unmarshal(r.body, &er)
	return er.Error.Class
}

// send makes one request to the test server with token ("" for none).
func send(t *testing.T, e *servertest.Env, method, target, token string, body io.Reader) result {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, body: b, header: resp.Header}
}

// seed writes versions of path as the store's creator.
func seed(t *testing.T, e *servertest.Env, path string, versions int) secret.VersionInfo {
	t.Helper()
	var info secret.VersionInfo
	for i := range versions {
		var err error
		info, err = e.Local.Put(context.Background(), path, secret.NewValue(fmt.Appendf(nil, "%s-v%d", path, i+1)), secret.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	return info
}

// matrixCase is the request a route gets in the matrix, and its status
// for an allowed caller.
type matrixCase struct {
	target string
	body   string
	want   int
}

// TestRouteMatrix sends every route a request with no credentials, a bad
// token, a revoked one, an expired one, a valid one the policy denies and
// one it allows, and checks each status and error class.
func TestRouteMatrix(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	get := seed(t, e, "app/get", 1)
	for _, p := range []string{"app/purge", "app/describe", "app/meta"} {
		seed(t, e, p, 1)
	}
	for _, p := range []string{"app/rollback", "app/delete", "app/undelete", "app/destroy", "app/stage"} {
		seed(t, e, p, 2)
	}
	if err := e.Local.Delete(ctx, "app/undelete", []int{1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"app/rotate", "app/due/x", "app/respond"} {
		seed(t, e, p, 1)
		if _, err := e.Local.UpdateMetadata(ctx, p, secret.MetadataUpdate{Rotation: &secret.Rotation{Connection: secret.GeneratedConnection}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"hook-get", "hook-delete"} {
		if _, err := e.Local.PutConnection(ctx, secret.Connection{Name: name, Connector: "webhook", Config: map[string]string{"url": "https://hooks.example/" + name, "signing_key": "env:HOOK_KEY"}, AllowedPaths: []string{"app/*"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"pol-get", "pol-delete"} {
		if _, err := e.Local.PutPolicy(ctx, name, "package passman.authz\n\nreasons contains \"never\" if input.action == \"none\"\n"); err != nil {
			t.Fatal(err)
		}
	}
	_, spare, err := e.Local.CreateToken(ctx, secret.TokenRequest{Identity: "spare"})
	if err != nil {
		t.Fatal(err)
	}
	value := base64.StdEncoding.EncodeToString([]byte("matrix value"))
	cases := map[string]matrixCase{
		api.RoutePut.Name:               {"/v1/secrets/app/put", `{"value":"` + value + `"}`, 200},
		api.RouteGet.Name:               {"/v1/secrets/app/get", "", 200},
		api.RouteCompare.Name:           {"/v1/compare/app/get", `{"value":"` + value + `"}`, 200},
		api.RoutePurge.Name:             {"/v1/secrets/app/purge", "", 204},
		api.RouteDescribe.Name:          {"/v1/describe/app/describe", "", 200},
		api.RouteList.Name:              {"/v1/list?prefix=app/&limit=5", "", 200},
		api.RouteRollback.Name:          {"/v1/rollback/app/rollback", `{"version":1}`, 200},
		api.RouteDelete.Name:            {"/v1/delete/app/delete", `{"versions":[1]}`, 204},
		api.RouteUndelete.Name:          {"/v1/undelete/app/undelete", `{"versions":[1]}`, 204},
		api.RouteDestroy.Name:           {"/v1/destroy/app/destroy", `{"versions":[1]}`, 204},
		api.RouteMetadata.Name:          {"/v1/metadata/app/meta", `{"description":"d"}`, 200},
		api.RouteStage.Name:             {"/v1/stage/app/stage", `{"stage":"pending","version":1}`, 204},
		api.RouteFingerprint.Name:       {"/v1/fingerprints/" + get.Fingerprint, "", 200},
		api.RouteFingerprintExport.Name: {"/v1/fingerprints/export", "", 200},
		api.RouteRotate.Name:            {"/v1/rotate/app/rotate", "", 200},
		api.RouteRotateDue.Name:         {"/v1/rotate-due", `{"prefix":"app/due/"}`, 200},
		api.RouteRotationStatus.Name:    {"/v1/rotation-status?prefix=app/", "", 200},
		api.RouteRespond.Name:           {"/v1/respond", `{"leaks":[{"path":"app/respond","version":1,"rule":"passman-managed","file":"app.env","line":1}]}`, 200},
		api.RoutePolicyEval.Name:        {"/v1/policy/eval", `{"decision":"authz","input":{"subject":{"id":"x","kind":"user"},"action":"read","path":"app/get","store":{"created_by":"admin"}}}`, 200},
		api.RouteAuditVerify.Name:       {"/v1/audit/verify", "", 200},
		api.RouteAuditQuery.Name:        {"/v1/audit/entries?limit=3&outcome=success", "", 200},
		api.RouteTokenCreate.Name:       {"/v1/auth/token/create", `{"identity":"new","ttl":"1h"}`, 200},
		api.RouteTokenRevoke.Name:       {"/v1/auth/token/revoke", `{"accessor":"` + spare.Accessor + `"}`, 204},
		api.RouteTokenLookupSelf.Name:   {"/v1/auth/token/lookup-self", "", 200},
		api.RouteTokenRevokeSelf.Name:   {"/v1/auth/token/revoke-self", "", 204},
		api.RouteTokenList.Name:         {"/v1/auth/tokens", "", 200},
		api.RouteOIDCLogin.Name:         {"/v1/auth/oidc", `{"token":"x.y.z"}`, 412},
		api.RouteConnectionList.Name:    {"/v1/connections", "", 200},
		api.RouteConnectionPut.Name:     {"/v1/connections/hook-a", `{"connector":"webhook","config":{"url":"https://hooks.example/a","signing_key":"env:HOOK_KEY"},"allowed_paths":["app/*"]}`, 200},
		api.RouteConnectionGet.Name:     {"/v1/connections/hook-get", "", 200},
		api.RouteConnectionDelete.Name:  {"/v1/connections/hook-delete", "", 204},
		api.RoutePolicyList.Name:        {"/v1/policies", "", 200},
		api.RoutePolicyPut.Name:         {"/v1/policies/pol-put", `{"source":"package passman.authz\n\nreasons contains \"never\" if input.action == \"none\"\n"}`, 200},
		api.RoutePolicyGet.Name:         {"/v1/policies/pol-get", "", 200},
		api.RoutePolicyDelete.Name:      {"/v1/policies/pol-delete", "", 204},
		api.RouteSchedulerStatus.Name:   {"/v1/scheduler", "", 200},
		api.RouteBackup.Name:            {"/v1/store/backup", "", 200},
		api.RouteHealth.Name:            {"/v1/health", "", 200},
		api.RouteReady.Name:             {"/v1/ready", "", 200},

		api.RouteFingerprintConfirm.Name: {"/v1/fingerprints/confirm", `{"fingerprints":["` + get.Fingerprint + `"]}`, 200},
	}
	throwaway := map[string]string{}
	for _, k := range []string{"denied", "allowed"} {
		if throwaway[k], _, err = e.Local.CreateToken(ctx, secret.TokenRequest{Identity: "throwaway-" + k}); err != nil {
			t.Fatal(err)
		}
	}
	creatorEntries := countActor(t, e, "admin")

	kinds := []struct {
		name  string
		token string
	}{
		{"none", ""},
		{"bad", core.TokenPrefix + strings.Repeat("x", 43)},
		{"revoked", e.Tokens[servertest.Revoked]},
		{"expired", e.Tokens[servertest.Expired]},
		{"denied", e.Tokens[servertest.Nobody]},
		{"allowed", e.Tokens[servertest.Root]}, // last: it changes things
	}
	for _, r := range api.Routes {
		c, ok := cases[r.Name]
		if !ok {
			t.Errorf("route %s has no matrix case", r.Name)
			continue
		}
		for _, k := range kinds {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			tok := k.token
			if r.Name == api.RouteTokenRevokeSelf.Name && throwaway[k.name] != "" {
				// A token ends itself: use a throwaway one, not the
				// token the rest of the matrix needs.
				tok = throwaway[k.name]
			}
			res := send(t, e, r.Method, c.target, tok, body)
			want, wantClass := c.want, ""
			switch {
			case k.name == "denied" && r.Name == api.RouteTokenRevokeSelf.Name:
				// Whoever holds a token may end it.
			case r.Name == api.RouteOIDCLogin.Name:
				// Public, and this server has no OIDC configured.
				wantClass = "failed_precondition"
			case r.Public || k.name == "allowed":
			case k.name == "denied" && r.Name == api.RouteTokenLookupSelf.Name:
				// Anyone may describe their own token.
			case k.name == "denied" && r.Name == api.RouteRespond.Name:
				// Answered per leak: the denied describe is the leak's
				// result, and the body names the first failure's class.
				wantClass = "permission_denied"
			case k.name == "denied" && r.Name == api.RouteFingerprintConfirm.Name:
				// Answered per fingerprint, each match authorized as a
				// read: a denied caller learns that nothing it may read
				// matches, exactly as if nothing did.
			case k.name == "denied" && r.ReadsSecret:
				want, wantClass = 404, "not_found"
			case k.name == "denied":
				want, wantClass = 403, "permission_denied"
			default:
				want, wantClass = 401, "unauthenticated"
			}
			if res.status != want || res.class() != wantClass {
				t.Errorf("%s %s as %s: %d %s, want %d %q", r.Method, c.target, k.name, res.status, res.body, want, wantClass)
			}
			if want == 401 && res.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s as %s: 401 without WWW-Authenticate", r.Name, k.name)
			}
			if cc := res.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s as %s: Cache-Control %q", r.Name, k.name, cc)
			}
		}
	}
	// No request acted as the server's own OS user, the store's creator.
	if n := countActor(t, e, "admin"); n != creatorEntries {
		t.Errorf("%d audit entries by the store's creator appeared while serving requests", n-creatorEntries)
	}
}

func countActor(t *testing.T, e *servertest.Env, actor string) int {
	t.Helper()
	n := 0
	err := audit.Read(context.Background(), filepath.Join(e.Store.Dir, core.AuditFile), audit.Filter{Actor: actor}, func(audit.Entry) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeniedReadLooksMissing: a read the policy denies answers exactly
// like a read of a secret that does not exist, so paths do not leak.
func TestDeniedReadLooksMissing(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	seed(t, e, "locked/db", 1)
	seed(t, e, "other/db", 1)
	reader, nobody, root := e.Tokens[servertest.Reader], e.Tokens[servertest.Nobody], e.Tokens[servertest.Root]
	for _, prefix := range []string{"/v1/secrets/", "/v1/describe/"} {
		missing := send(t, e, "GET", prefix+"app/missing", reader, nil)
		if missing.status != 404 {
			t.Fatalf("missing: %d %s", missing.status, missing.body)
		}
		for name, res := range map[string]result{
			"deny rule":            send(t, e, "GET", prefix+"locked/db", reader, nil),
			"deny rule for root":   send(t, e, "GET", prefix+"locked/db", root, nil),
			"no allow":             send(t, e, "GET", prefix+"other/db", nobody, nil),
			"no allow, missing":    send(t, e, "GET", prefix+"other/missing", nobody, nil),
			"missing version":      send(t, e, "GET", prefix+"locked/db?version=9", reader, nil),
			"no allow, by stage":   send(t, e, "GET", prefix+"other/db?stage=previous", nobody, nil),
			"root, missing secret": send(t, e, "GET", prefix+"other/missing", root, nil),
		} {
			if res.status != missing.status || !bytes.Equal(res.body, missing.body) {
				t.Errorf("%s%s: %d %s; a missing secret: %d %s", prefix, name, res.status, res.body, missing.status, missing.body)
			}
		}
	}
	// A denied write says so: it reveals nothing a write could not.
	if res := send(t, e, "PUT", "/v1/secrets/other/db", nobody, strings.NewReader(`{"value":""}`)); res.status != 403 {
		t.Errorf("denied write: %d %s", res.status, res.body)
	}
}

// TestRequestLimits: oversized bodies are refused with 413 whether or not
// their length is announced, and malformed or traversing paths with 400,
// never cleaned into another path.
func TestRequestLimits(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	root := e.Tokens[servertest.Root]
	seed(t, e, "app/x", 1)

	big := `{"value":"` + strings.Repeat("A", int(3<<20)) + `"}`
	if res := send(t, e, "PUT", "/v1/secrets/app/big", root, strings.NewReader(big)); res.status != 413 || res.class() != "too_large" {
		t.Errorf("3 MiB body: %d %.200s", res.status, res.body)
	}
	// No Content-Length: the limit bites while reading.
	if res := send(t, e, "PUT", "/v1/secrets/app/big", root, io.MultiReader(strings.NewReader(big))); res.status != 413 || res.class() != "too_large" {
		t.Errorf("3 MiB chunked body: %d %.200s", res.status, res.body)
	}
	// Under the body limit, over the value limit: the store refuses it.
	tooBig := `{"value":"` + base64.StdEncoding.EncodeToString(make([]byte, secret.MaxValueSize+1)) + `"}`
	if res := send(t, e, "PUT", "/v1/secrets/app/big", root, strings.NewReader(tooBig)); res.status != 413 || res.class() != "too_large" {
		t.Errorf("value over MaxValueSize: %d %.200s", res.status, res.body)
	}

	for _, target := range []string{
		"/v1/secrets/app/../app/x",
		"/v1/secrets/app/%2e%2e/app/x",
		"/v1/secrets/app/./x",
		"/v1/secrets/app//x",
		"/v1/secrets//app/x",
		"/v1/secrets/app/x/",
		"/v1/secrets/",
		"/v1/secrets/app/x%00",
		"/v1/secrets/app/x%2F..%2Fy",
		"/v1/secrets/app/sp%20ace",
		"/v1/describe/../secrets/app/x",
	} {
		res := send(t, e, "GET", target, root, nil)
		if res.status != 400 || res.class() != "invalid_path" {
			t.Errorf("GET %s: %d %s, want 400 invalid_path", target, res.status, res.body)
		}
	}
	for _, target := range []string{"/v1/list?prefix=/app", "/v1/list?prefix=app/../x", "/v1/list?limit=-1", "/v1/secrets/app/x?version=x", "/v1/secrets/app/x?stage=bogus", "/v1/fingerprints/XYZ"} {
		if res := send(t, e, "GET", target, root, nil); res.status != 400 {
			t.Errorf("GET %s: %d %s, want 400", target, res.status, res.body)
		}
	}
	for _, body := range []string{`{"value":"!!"}`, `{"value":"", "bogus":1}`, `{"value":""} {}`, `[]`, ``, `{"cas":"x"}`, `{"value":"","stage":"bogus"}`} {
		if res := send(t, e, "PUT", "/v1/secrets/app/y", root, strings.NewReader(body)); res.status != 400 || res.class() != "invalid_argument" {
			t.Errorf("PUT body %q: %d %s, want 400 invalid_argument", body, res.status, res.body)
		}
	}
	if res := send(t, e, "POST", "/v1/secrets/app/x", root, nil); res.status != 405 || res.header.Get("Allow") == "" {
		t.Errorf("POST to a secret: %d %s", res.status, res.body)
	}
	if res := send(t, e, "GET", "/v2/secrets/app/x", root, nil); res.status != 404 {
		t.Errorf("unknown route: %d %s", res.status, res.body)
	}
	// The value was never written under any of those spellings.
	if _, err := e.Local.Describe(context.Background(), "app/big"); err == nil {
		t.Error("an oversized value was stored")
	}
}

// TestAuthorizationHeader: only "Bearer <token>" authenticates.
func TestAuthorizationHeader(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	tok := e.Tokens[servertest.Root]
	for name, hdrs := range map[string][]string{
		"basic":     {"Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+tok))},
		"bare":      {tok},
		"empty":     {"Bearer "},
		"two":       {"Bearer " + tok, "Bearer " + tok},
		"lowercase": {"bearer " + tok},
	} {
		req, _ := http.NewRequest("GET", e.URL+"/v1/auth/token/lookup-self", nil)
		for _, h := range hdrs {
			req.Header.Add("Authorization", h)
		}
		resp, err := e.Server.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 401
		if name == "lowercase" {
			want = 200 // the scheme is case-insensitive (RFC 9110)
		}
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, want)
		}
	}
}

// TestCanary plants a secret value and tokens, drives every kind of
// request (successes, failures, values and tokens in the wrong places) and
// checks that no response other than the one that returns the value, no
// request log line and no audit entry holds either.
func TestCanary(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	root := e.Tokens[servertest.Root]
	const canary = "canary-0f1e2d3c4b5a69788796a5b4c3d2e1f0 value!"
	b64 := base64.StdEncoding.EncodeToString([]byte(canary))
	esc := url.PathEscape(canary)
	qesc := url.QueryEscape(canary)
	tokens := []string{root, e.Tokens[servertest.Revoked], e.Tokens[servertest.Expired], e.Tokens[servertest.Nobody]}

	var bodies []result
	do := func(method, target, token, body string) result {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r := send(t, e, method, target, token, rd)
		bodies = append(bodies, r)
		return r
	}
	if r := do("PUT", "/v1/secrets/app/canary", root, `{"value":"`+b64+`","metadata":{"description":"canary holder"}}`); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	// The one response that may hold the value.
	if r := send(t, e, "GET", "/v1/secrets/app/canary", root, nil); r.status != 200 || !bytes.Contains(r.body, []byte(b64)) {
		t.Fatalf("get: %d", r.status)
	}
	do("PUT", "/v1/secrets/app/canary", root, `{"value":"`+b64+`","cas":7}`)                // conflict
	do("PUT", "/v1/secrets/app/canary", e.Tokens[servertest.Nobody], `{"value":"`+b64+`"}`) // denied
	do("PUT", "/v1/secrets/"+esc, root, `{"value":"`+b64+`"}`)                              // value as path
	do("GET", "/v1/secrets/"+esc, root, "")
	do("GET", "/v1/list?prefix="+qesc, root, "")
	do("GET", "/v1/list?after="+qesc, root, "")
	do("GET", "/v1/secrets/app/canary?stage="+qesc, root, "")
	do("GET", "/v1/audit/entries?outcome="+qesc, root, "")
	do("GET", "/v1/fingerprints/"+esc, root, "")
	do("PUT", "/v1/secrets/app/canary", root, `{"value":"`+b64+`","stage":"`+canary+`"}`)
	do("PUT", "/v1/secrets/app/canary", root, `{"value":"`+b64+`","`+canary+`":1}`)
	do("PUT", "/v1/secrets/app/canary", root, `{"value":"`+b64+`","cas":"`+canary+`"}`)
	do("PUT", "/v1/secrets/app/canary", root, `{"value":"`+canary+`"}`)
	do("PUT", "/v1/secrets/app/canary", root, canary)
	do("PATCH", "/v1/metadata/app/canary", root, `{"rotation_period":"`+canary+`"}`)
	do("PUT", "/v1/stage/app/canary", root, `{"stage":"`+canary+`","version":1}`)
	do("POST", "/v1/auth/token/create", root, `{"identity":"`+canary+`"}`)
	do("POST", "/v1/auth/token/create", root, `{"identity":"x","ttl":"`+canary+`"}`)
	do("POST", "/v1/auth/token/revoke", root, `{"accessor":"`+canary+`"}`)
	do("POST", "/v1/auth/token/revoke", root, `{"accessor":"`+root+`"}`)
	for _, tok := range tokens {
		do("GET", "/v1/secrets/app/canary", tok[:len(tok)-1]+"Z", "")
		do("GET", "/v1/describe/app/canary", tok, "")
		do("GET", "/v1/auth/token/lookup-self", tok, "")
	}
	do("GET", "/v1/secrets/app/canary", canary, "")
	do("GET", "/v1/auth/tokens", root, "")

	planted := map[string][]byte{"value": []byte(canary), "base64 value": []byte(b64), "escaped value": []byte(esc)}
	for i, tok := range tokens {
		planted[fmt.Sprintf("token %d", i)] = []byte(tok)
		planted[fmt.Sprintf("token %d secret part", i)] = []byte(strings.TrimPrefix(tok, core.TokenPrefix)[:20])
	}
	log := e.Log.Bytes()
	if !bytes.Contains(log, []byte(`"route":"secret.put"`)) || !bytes.Contains(log, []byte(`"token_accessor":"`+e.Accessors[servertest.Root]+`"`)) {
		t.Fatalf("the request log lacks routes or accessors:\n%s", log)
	}
	for what, p := range planted {
		for i, r := range bodies {
			if bytes.Contains(r.body, p) {
				t.Errorf("response %d (%d) holds the %s: %s", i, r.status, what, r.body)
			}
		}
		if bytes.Contains(log, p) {
			t.Errorf("the request log holds the %s", what)
		}
	}
	auditLog, err := os.ReadFile(filepath.Join(e.Store.Dir, core.AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	for what, p := range planted {
		if bytes.Contains(auditLog, p) {
			t.Errorf("the audit log holds the %s", what)
		}
	}
}

// TestAuditEntriesCarryTheRequestID: an audited request's entries name
// the request id its answer (X-Request-Id) and log line carry, so an
// operator can go from one to the other.
func TestAuditEntriesCarryTheRequestID(t *testing.T) {
	t.Parallel()
	e := servertest.New(t, servertest.Options{})
	seed(t, e, "app/id", 1)
	req, err := http.NewRequest("GET", e.URL+"/v1/secrets/app/id", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.Tokens[servertest.Root])
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	entries, err := e.Local.QueryAudit(context.Background(), audit.Filter{Path: "app/id", Action: "secret.get"}, 1)
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit: %v %v", entries, err)
	}
	if id == "" || entries[0].RequestID != id {
		t.Errorf("audit entry's request id %q, answer's %q", entries[0].RequestID, id)
	}
	if !strings.Contains(e.Log.String(), id) {
		t.Errorf("the request log does not name %s", id)
	}
}

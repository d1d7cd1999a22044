package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/server/servertest"
)

// randomBearer is a token nobody issued, new each call.
func randomBearer() http.Header {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return http.Header{"Authorization": {"Bearer pmt_" + hex.EncodeToString(b[:])}}
}

// TestHostileRateLimitRandomBearers: a client sending a new made-up token
// with every request is limited by its address; once that bucket is
// empty, even a valid token from the same address waits (its lookup
// would let a lucky guess through).
func TestHostileRateLimitRandomBearers(t *testing.T) {
	t.Parallel()
	const burst = 5
	h := runTarget(t, server.Config{RateLimit: server.RateLimit{RPS: 0.001, Burst: burst}})
	var unauth, limited int
	for range 4 * burst {
		r := h.do(t, "GET", "/v1/secrets/app/x", randomBearer(), nil)
		switch r.status {
		case http.StatusUnauthorized:
			unauth++
		case http.StatusTooManyRequests:
			limited++
			if r.header.Get("Retry-After") == "" || r.class() != "unavailable" {
				t.Errorf("429 without Retry-After or class: %v %s", r.header, r.body)
			}
		default:
			t.Errorf("random bearer: %d %s", r.status, r.body)
		}
	}
	if unauth != burst || limited != 3*burst {
		t.Errorf("%d answered 401 and %d 429, want %d and %d", unauth, limited, burst, 3*burst)
	}
	if r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("valid token from the exhausted address: %d %s", r.status, r.body)
	}
	// The probes still answer.
	if r := h.do(t, "GET", "/v1/health", nil, nil); r.status != 200 {
		t.Errorf("health: %d", r.status)
	}
}

// TestHostileRateLimitOIDCLogin: the OIDC login, whose credential is in the
// body, is limited by address before any work.
func TestHostileRateLimitOIDCLogin(t *testing.T) {
	t.Parallel()
	const burst = 3
	h := runTarget(t, server.Config{RateLimit: server.RateLimit{RPS: 0.001, Burst: burst}})
	var limited int
	for range 4 * burst {
		r := h.do(t, "POST", "/v1/auth/oidc", nil, strings.NewReader(`{"token":"a.b.c"}`))
		if r.status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 3*burst {
		t.Errorf("%d logins answered 429, want %d", limited, 3*burst)
	}
}

// TestRateLimitByIdentity: the bucket is the validated identity, so more
// tokens for one identity buy no more requests, and another identity from
// the same address is unaffected.
func TestRateLimitByIdentity(t *testing.T) {
	t.Parallel()
	const burst = 3
	e := servertest.New(t, servertest.Options{Limiter: server.NewRateLimiter(0.001, burst, 100)})
	var tokens []string
	for range 2 * burst {
		tok, _, err := e.Local.CreateToken(context.Background(), secret.TokenRequest{Identity: "reader-user", Claims: map[string]string{"role": "reader"}})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	seed(t, e, "app/db", 1)
	var ok, limited int
	for _, tok := range tokens {
		switch r := send(t, e, "GET", "/v1/secrets/app/db", tok, nil); r.status {
		case 200:
			ok++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Errorf("%d %s", r.status, r.body)
		}
	}
	if ok != burst || limited != burst {
		t.Errorf("one identity's tokens: %d served, %d limited; want %d and %d", ok, limited, burst, burst)
	}
	if r := send(t, e, "GET", "/v1/secrets/app/db", e.Tokens[servertest.Root], nil); r.status != 200 {
		t.Errorf("another identity: %d %s", r.status, r.body)
	}
}

// TestHostileMetricsHideDenials: a read the policy denies and a read of a
// missing secret change the metrics exactly alike, as they are answered
// alike: /metrics must not tell a hidden secret exists.
func TestHostileMetricsHideDenials(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	e := servertest.New(t, servertest.Options{Metrics: m})
	seed(t, e, "locked/db", 1)
	reader := e.Tokens[servertest.Reader]
	delta := func(target string) map[string]float64 {
		before := counters(t, m)
		if r := send(t, e, "GET", target, reader, nil); r.status != 404 {
			t.Fatalf("GET %s: %d %s", target, r.status, r.body)
		}
		after := counters(t, m)
		d := map[string]float64{}
		for k, v := range after {
			if strings.HasPrefix(k, "passman_") && v != before[k] {
				d[k] = v - before[k]
			}
		}
		return d
	}
	for _, route := range []string{"/v1/secrets/", "/v1/describe/"} {
		denied := delta(route + "locked/db")
		missing := delta(route + "app/missing")
		if diff := cmp.Diff(missing, denied); diff != "" || len(denied) == 0 {
			t.Errorf("%s: a denied read counts differently from a missing one (-missing +denied):\n%s", route, diff)
		}
	}
}

// TestHostileMetricsNeedToken: /metrics answers only callers with a valid
// token, unless the operator opened it.
func TestHostileMetricsNeedToken(t *testing.T) {
	t.Parallel()
	h := runTarget(t, server.Config{})
	anon := h
	anon.token = ""
	for name, hdr := range map[string]http.Header{"no token": nil, "made-up token": randomBearer()} {
		r := anon.do(t, "GET", "/metrics", hdr, nil)
		if r.status != http.StatusUnauthorized || strings.Contains(string(r.body), "passman_") {
			t.Errorf("%s: %d %.200s", name, r.status, r.body)
		}
	}
	if r := h.do(t, "GET", "/metrics", nil, nil); r.status != 200 || !strings.Contains(string(r.body), metrics.NameSecretFetch) {
		t.Errorf("with the root token: %d %.200s", r.status, r.body)
	}
	open := runTarget(t, server.Config{UnauthenticatedMetricsAccess: true})
	open.token = ""
	if r := open.do(t, "GET", "/metrics", nil, nil); r.status != 200 || !strings.Contains(string(r.body), metrics.NameSecretFetch) {
		t.Errorf("opened by the operator: %d %.200s", r.status, r.body)
	}
}

// TestHostileBrowserRequests: what a page on another site could make a
// browser send (text/plain or form bodies, which need no preflight, any
// write with an Origin) is refused before it reaches a handler, so a
// browser holding an ambient credential (a client certificate) cannot be
// made to write.
func TestHostileBrowserRequests(t *testing.T) {
	t.Parallel()
	h, _ := envTarget(t)
	overwrite := `{"value":"` + base64.StdEncoding.EncodeToString([]byte("overwritten")) + `"}`
	put := func(hdr http.Header) result {
		return h.do(t, "PUT", "/v1/secrets/app/x", hdr, strings.NewReader(overwrite))
	}
	var res []result
	for _, ct := range [][]string{
		{"text/plain"},
		{"text/plain; charset=utf-8"},
		{"application/x-www-form-urlencoded"},
		{"multipart/form-data; boundary=x"},
		{"application/json; charset=utf-16"},
		{"application/jsonx"},
		{"text/json"},
		{"application/json-patch+json"},
		{""},
		{"application/json", "text/plain"},
		{"application/json; charset"},
	} {
		r := put(http.Header{"Content-Type": ct})
		res = append(res, r)
		if r.status != http.StatusUnsupportedMediaType || r.class() != "unsupported_media_type" {
			t.Errorf("Content-Type %q: %d %.200s, want 415", ct, r.status, r.body)
		}
	}
	for name, hdr := range map[string]http.Header{
		"origin":                {"Origin": {"https://evil.example"}},
		"null origin":           {"Origin": {"null"}},
		"own origin":            {"Origin": {h.url}},
		"sec-fetch cross-site":  {"Sec-Fetch-Site": {"cross-site"}},
		"sec-fetch same-site":   {"Sec-Fetch-Site": {"same-site"}},
		"origin with text body": {"Origin": {"https://evil.example"}, "Content-Type": {"text/plain"}},
	} {
		r := put(hdr)
		res = append(res, r)
		if r.status != http.StatusForbidden || r.class() != "permission_denied" {
			t.Errorf("%s: %d %.200s, want 403", name, r.status, r.body)
		}
		for _, tg := range []struct{ method, target string }{{"DELETE", "/v1/secrets/app/x"}, {"POST", "/v1/delete/app/x"}, {"POST", "/v1/auth/token/revoke"}} {
			if r := h.do(t, tg.method, tg.target, hdr, nil); r.status != http.StatusForbidden {
				t.Errorf("%s %s, %s: %d %.200s, want 403", tg.method, tg.target, name, r.status, r.body)
			}
		}
	}
	if r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil); r.status != 200 || !strings.Contains(string(r.body), base64.StdEncoding.EncodeToString([]byte(hostileCanary))) {
		t.Fatalf("app/x was changed: %d %.200s", r.status, r.body)
	}
	// What passman clients send passes.
	for _, hdr := range []http.Header{
		{"Content-Type": {"application/json; charset=UTF-8"}},
		{"Content-Type": {"Application/JSON"}},
		{"Sec-Fetch-Site": {"same-origin"}},
		{"Sec-Fetch-Site": {"none"}},
	} {
		if r := h.do(t, "PUT", "/v1/secrets/app/y", hdr, strings.NewReader(overwrite)); r.status != 200 {
			t.Errorf("%v: %d %.200s", hdr, r.status, r.body)
		}
	}
	// Reads are not writes: an Origin on a GET changes nothing.
	if r := h.do(t, "GET", "/v1/describe/app/x", http.Header{"Origin": {"https://evil.example"}}, nil); r.status != 200 {
		t.Errorf("GET with Origin: %d %s", r.status, r.body)
	}
	h.noCanary(t, res)
}

// TestHostileJSONKeys: a body whose keys encoding/json would match
// loosely (case) or resolve silently (the last duplicate wins) is refused
// whole, with a message naming the field, before anything is done; the
// message never quotes a key that is no field name.
func TestHostileJSONKeys(t *testing.T) {
	t.Parallel()
	h, e := envTarget(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		method, target, body, want string
	}{
		{"PUT", "/v1/secrets/app/x", `{"Value":"` + b64("overwritten") + `"}`, `differs from the field name "value" only by case`},
		{"PUT", "/v1/secrets/app/x", `{"VALUE":"` + b64("overwritten") + `"}`, `"value"`},
		{"PUT", "/v1/secrets/app/x", `{"value":"` + b64("first") + `","value":"` + b64("overwritten") + `"}`, `key "value" appears more than once`},
		{"PUT", "/v1/secrets/app/x", `{"value":"` + b64("overwritten") + `","valu\u0065":"` + b64("x") + `"}`, `key "value" appears more than once`},
		{"PUT", "/v1/secrets/app/x", `{"value":"` + b64("overwritten") + `","\u017ftage":"current"}`, `field name "stage"`},
		{"PUT", "/v1/secrets/app/x", `{"value":"` + b64("overwritten") + `","metadata":{"tags":{"env":"dev","env":"prod"}}}`, "appears more than once in metadata.tags"},
		{"PUT", "/v1/secrets/app/x", `{"value":"` + b64("overwritten") + `","metadata":{"Owner":"mallory"}}`, `field name "owner"`},
		{"PUT", "/v1/secrets/app/x", `{"value":"` + b64("overwritten") + `","metadata":{"` + hostileCanary + `":1}}`, "unknown key in metadata"},
		{"POST", "/v1/auth/token/create", `{"identity":"evil","claims":{"role":"reader","role":"root"}}`, "appears more than once in claims"},
		{"POST", "/v1/auth/token/create", `{"identity":"evil","Claims":{"role":"root"}}`, `field name "claims"`},
		{"POST", "/v1/auth/token/create", `{"identity":"evil","identity":"root-user"}`, `key "identity" appears more than once`},
		{"PATCH", "/v1/metadata/app/x", `{"owner":"a","owner":"b"}`, `key "owner"`},
		{"POST", "/v1/rollback/app/x", `{"version":1,"Version":2}`, `field name "version"`},
		{"POST", "/v1/respond", `{"leaks":[{"path":"app/x","version":1,"rule":"r","file":"f","path":"locked/x"}]}`, `key "path" appears more than once in leaks[0]`},
		{"POST", "/v1/policy/eval", `{"decision":"authz","input":{"subject":{"id":"a","id":"root"}}}`, "within input"},
		{"POST", "/v1/policy/eval", `{"decision":"authz","input":{"` + hostileCanary + `":1,"` + hostileCanary + `":2}}`, "within input"},
	}
	var res []result
	for _, c := range cases {
		r := h.do(t, c.method, c.target, nil, strings.NewReader(c.body))
		res = append(res, r)
		var er api.ErrorResponse
		_ = json.Unmarshal(r.body, &er)
		if r.status != 400 || er.Error.Class != "invalid_argument" || !strings.Contains(er.Error.Message, c.want) {
			t.Errorf("%s %s %.120s: %d %.300s, want 400 with %q", c.method, c.target, c.body, r.status, r.body, c.want)
		}
	}
	// Nothing was written: app/x holds the canary, no token was made, the
	// metadata is untouched.
	if r := h.do(t, "GET", "/v1/secrets/app/x", nil, nil); r.status != 200 || !strings.Contains(string(r.body), b64(hostileCanary)) {
		t.Errorf("app/x after hostile bodies: %d %.200s", r.status, r.body)
	}
	infos, err := e.Local.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Identity == "evil" {
			t.Errorf("a token was created: %+v", i)
		}
	}
	if d, err := e.Local.Describe(context.Background(), "app/x"); err != nil || d.Metadata.Owner != "" {
		t.Errorf("app/x metadata changed: %+v %v", d.Metadata, err)
	}
	h.noCanary(t, res)
}

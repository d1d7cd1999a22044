package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
)

// fakeTokens authenticates a fixed set of tokens.
type fakeTokens map[string]string

func (f fakeTokens) LookupToken(_ context.Context, token string) (secret.TokenInfo, error) {
	id, ok := f[token]
	if !ok {
		return secret.TokenInfo{}, fmt.Errorf("%w: unknown token", secret.ErrUnauthenticated)
	}
	return secret.TokenInfo{Identity: id, Accessor: "acc-" + token}, nil
}

// tokensOnly is a Backend that only authenticates: the wiring tests call
// nothing else (a call would panic on the nil Backend).
type tokensOnly struct {
	Backend
	tokens fakeTokens
}

func (b tokensOnly) LookupToken(ctx context.Context, token string) (secret.TokenInfo, error) {
	return b.tokens.LookupToken(ctx, token)
}

// TestMetricsAndLimitsWiring: a caller is limited by its validated
// identity (two tokens of one identity share a bucket), made-up tokens
// by their address, whose exhausted bucket then refuses even a valid
// token before it is looked up; 429s are counted by route pattern, and
// /metrics, opened to anyone here, is served beside the API.
func TestMetricsAndLimitsWiring(t *testing.T) {
	m := metrics.New()
	tokens := fakeTokens{"a1": "alice", "a2": "alice", "b1": "bob", "c1": "carol"}
	l := NewRateLimiter(0.001, 1, 100)
	h := withMetrics(newHandler(tokensOnly{tokens: tokens}, Options{Metrics: m, Limiter: l}), m, true)
	get := func(target, token string) int {
		r := httptest.NewRequest("GET", target, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", token)
		}
		return w.Code
	}
	const self = "/v1/auth/token/lookup-self"
	for _, c := range []struct {
		token string
		want  int
	}{
		{"a1", 200},
		{"a2", 429}, // alice's bucket, whichever token
		{"b1", 200},
		{"made-up-1", 401},
		{"made-up-2", 429}, // the address's bucket
		{"c1", 429},        // the address is exhausted: no lookup at all
	} {
		if got := get(self, c.token); got != c.want {
			t.Errorf("%s: %d, want %d", c.token, got, c.want)
		}
	}
	// Probes are never limited.
	for range 3 {
		if got := get("/v1/health", ""); got != 200 {
			t.Errorf("health: %d", got)
		}
	}
	r := httptest.NewRequest("GET", "/metrics", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Body)
	text := string(body)
	if w.Code != 200 || !strings.Contains(text, `passman_http_request_duration_seconds_count{code="429",method="GET",route="/v1/auth/token/lookup-self"} 3`) {
		t.Fatalf("/metrics: %d\n%s", w.Code, text)
	}
}

// TestMetricsNeedToken: by default /metrics answers a valid token only,
// and a refused scrape is logged and counted as an authentication failure.
func TestMetricsNeedToken(t *testing.T) {
	m := metrics.New()
	h := withMetrics(newHandler(tokensOnly{tokens: fakeTokens{"a1": "alice"}}, Options{Metrics: m}), m, false)
	get := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, token := range []string{"", "made-up"} {
		w := get(token)
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" || strings.Contains(w.Body.String(), "passman_") {
			t.Errorf("token %q: %d %q", token, w.Code, w.Body)
		}
	}
	w := get("a1")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `passman_authn_failures_total{method="token",reason="rejected"} 2`) {
		t.Errorf("valid token: %d\n%s", w.Code, w.Body)
	}
}

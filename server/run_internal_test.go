package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/passman-dev/passman/metrics"
)

// TestMetricsAndLimitsWiring: /metrics is served beside the API without a
// token, a caller over its rate gets 429 with Retry-After, and requests
// are counted by route pattern, never by secret path.
func TestMetricsAndLimitsWiring(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	cfg := Config{Options: Options{Metrics: metrics.New()}, RateLimit: RateLimit{RPS: 0.001, Burst: 1}}
	h := withMetricsAndLimits(api, cfg)
	get := func(target, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := get("/v1/secrets/prod/db/password", "t1"); w.Code != 200 {
		t.Fatalf("first request: %d", w.Code)
	}
	w := get("/v1/secrets/prod/db/password", "t1")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get("/v1/secrets/prod/db/password", "t2"); w.Code != 200 {
		t.Fatalf("another caller: %d", w.Code)
	}
	w = get("/metrics", "")
	body, _ := io.ReadAll(w.Body)
	text := string(body)
	if w.Code != 200 || !strings.Contains(text, `passman_http_request_duration_seconds_count{code="429",method="GET",route="/v1/secrets/{path}"} 1`) {
		t.Fatalf("/metrics: %d\n%s", w.Code, text)
	}
	if strings.Contains(text, "prod/db/password") {
		t.Fatal("a secret path became a label value")
	}
}

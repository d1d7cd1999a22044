package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passman-dev/passman/metrics"
)

// value returns the value of the series name{labels} in g, and whether it
// exists. (prometheus/testutil would do, but it pulls in a module go.sum
// does not hold, so the test reads the gathered families directly.)
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestEachMetricRecords(t *testing.T) {
	m := metrics.New()
	g := m.Gatherer()
	type want struct {
		name   string
		labels map[string]string
		value  float64
	}
	cases := []struct {
		name string
		do   func()
		want []want
	}{
		{"http", func() { m.ObserveHTTP("/v1/secrets/{path}", "GET", 200, 30*time.Millisecond) },
			[]want{{metrics.NameHTTPRequestDuration, map[string]string{"route": "/v1/secrets/{path}", "method": "GET", "code": "200"}, 1}}},
		{"fetch", func() { m.ObserveSecretFetch(metrics.FetchSuccess); m.ObserveSecretFetch(metrics.FetchError) },
			[]want{
				{metrics.NameSecretFetch, map[string]string{"outcome": "success"}, 1},
				{metrics.NameSecretFetch, map[string]string{"outcome": "error"}, 1},
				{metrics.NameSecretFetch, map[string]string{"outcome": "unauthenticated"}, 0},
			}},
		// "denied" is no outcome: it would tell a hidden secret from a
		// missing one.
		{"fetch denied", func() { m.ObserveSecretFetch("denied") },
			[]want{{metrics.NameSecretFetch, map[string]string{"outcome": "other"}, 1}}},
		{"fetch outcome out of set", func() { m.ObserveSecretFetch("prod/db/password") },
			[]want{{metrics.NameSecretFetch, map[string]string{"outcome": "other"}, 2}}},
		{"authz", func() { m.ObserveAuthzDenial("secret.get") },
			[]want{{metrics.NameAuthzDenials, map[string]string{"action": "secret.get"}, 1}}},
		{"authn", func() { m.ObserveAuthnFailure(metrics.AuthnOIDC, "expired"); m.ObserveAuthnFailure("basic", "") },
			[]want{
				{metrics.NameAuthnFailures, map[string]string{"method": "oidc", "reason": "expired"}, 1},
				{metrics.NameAuthnFailures, map[string]string{"method": "other", "reason": "unknown"}, 1},
			}},
		{"rotation", func() {
			m.ObserveRotation("postgres", "succeeded")
			m.ObserveRotation("postgres", "rolled_back")
			m.ObserveRotation("postgres", "in_progress")
			m.ObserveRotation("postgres", "")
		}, []want{
			{metrics.NameRotationAttempts, map[string]string{"connector": "postgres"}, 4},
			{metrics.NameRotationOutcomes, map[string]string{"connector": "postgres", "outcome": "succeeded"}, 1},
			{metrics.NameRotationOutcomes, map[string]string{"connector": "postgres", "outcome": "rolled_back"}, 1},
			{metrics.NameRotationOutcomes, map[string]string{"connector": "postgres", "outcome": "failed"}, 2},
		}},
		{"stale", func() { m.SetStaleSecrets(7) },
			[]want{{metrics.NameStaleSecrets, nil, 7}}},
		{"audit", func() { m.ObserveAuditWriteFailure(); m.ObserveAuditWriteFailure() },
			[]want{{metrics.NameAuditWriteFailures, nil, 2}}},
		{"cache", func() { m.ObserveCacheRequest(metrics.CacheStale) },
			[]want{{metrics.NameClientCacheRequests, map[string]string{"result": "stale"}, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.do()
			for _, w := range c.want {
				got, ok := value(t, g, w.name, w.labels)
				if !ok || got != w.value {
					t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
				}
			}
		})
	}
}

func TestFetchOutcome(t *testing.T) {
	for class, want := range map[string]string{
		"": "success", "not_found": "not_found", "destroyed": "not_found", "invalid_path": "not_found",
		"permission_denied": "not_found", "unauthenticated": "unauthenticated",
		"audit": "error", "internal": "error", "unavailable": "error", "tampered": "error",
	} {
		if got := metrics.FetchOutcome(class); got != want {
			t.Errorf("FetchOutcome(%q) = %q, want %q", class, got, want)
		}
	}
}

// TestNilIsNoop: components hold a *Metrics that may be nil.
func TestNilIsNoop(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveHTTP("x", "GET", 200, time.Second)
	m.ObserveSecretFetch(metrics.FetchSuccess)
	m.ObserveAuthzDenial("a")
	m.ObserveAuthnFailure(metrics.AuthnToken, "invalid")
	m.ObserveRotation("c", "succeeded")
	m.SetStaleSecrets(1)
	m.ObserveAuditWriteFailure()
	m.ObserveCacheRequest(metrics.CacheHit)
}

// TestOwnRegistry: the metrics are not on the default registry (a second
// New would panic there), and Handler serves them.
func TestOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.ObserveAuditWriteFailure()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "passman_") {
			t.Errorf("%s is on the default registry", mf.GetName())
		}
	}
	if v, _ := value(t, b.Gatherer(), metrics.NameAuditWriteFailures, nil); v != 0 {
		t.Errorf("registries share state: %v", v)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(body), "passman_audit_write_failures_total 1") ||
		!strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics: %d\n%s", rec.Code, body)
	}
}

// TestLatencySLOBucket: the SLO rules read le="0.2"; losing that bound
// would silently break them.
func TestLatencySLOBucket(t *testing.T) {
	m := metrics.New()
	m.ObserveHTTP("/v1/secrets/{path}", "GET", 200, 150*time.Millisecond)
	m.ObserveHTTP("/v1/secrets/{path}", "GET", 200, 250*time.Millisecond)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metrics.NameHTTPRequestDuration {
			continue
		}
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			if b.GetUpperBound() == 0.2 {
				if b.GetCumulativeCount() != 1 {
					t.Errorf("le=0.2 holds %d, want 1", b.GetCumulativeCount())
				}
				return
			}
		}
	}
	t.Fatal("no le=0.2 bucket")
}

package server_test

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/server/servertest"
)

// TestMetricsRecordOutcomes: fetches are counted by outcome as they are
// answered (a denied read answers 404 and counts as not found, and is no
// authorization denial either), and authentication failures are counted.
func TestMetricsRecordOutcomes(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	e := servertest.New(t, servertest.Options{Metrics: m})
	seed(t, e, "app/db", 1)
	seed(t, e, "locked/db", 1)
	reader := e.Tokens[servertest.Reader]
	send(t, e, "GET", "/v1/secrets/app/db", reader, nil)
	send(t, e, "GET", "/v1/secrets/app/missing", reader, nil)
	if res := send(t, e, "GET", "/v1/secrets/locked/db", reader, nil); res.status != 404 {
		t.Fatalf("denied read: %d", res.status)
	}
	send(t, e, "GET", "/v1/secrets/app/db", "", nil)
	send(t, e, "GET", "/v1/secrets/app/db", e.Tokens[servertest.Revoked], nil)

	got := counters(t, m)
	// The two reads without a valid token are failed fetches too.
	for series, want := range map[string]float64{
		`passman_secret_fetch_total{outcome="success"}`:                  1,
		`passman_secret_fetch_total{outcome="not_found"}`:                2,
		`passman_secret_fetch_total{outcome="unauthenticated"}`:          2,
		`passman_authn_failures_total{method="token",reason="rejected"}`: 2,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	for series := range got {
		if strings.Contains(series, `outcome="denied"`) || strings.Contains(series, `action="secret.get"`) {
			t.Errorf("%s is exported: it tells a denied read from a missing secret", series)
		}
	}
}

// counters flattens the registry's counters to "name{label=value,...}".
func counters(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = mt.GetCounter().GetValue()
		}
	}
	return out
}

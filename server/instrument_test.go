package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/metrics"
)

func TestRoutePattern(t *testing.T) {
	cases := []struct {
		method, path, want string
		ok                 bool
	}{
		{"GET", "/v1/secrets/prod/db/password", "/v1/secrets/{path}", true},
		{"PUT", "/v1/secrets/prod/db/password", "/v1/secrets/{path}", true},
		{"GET", "/v1/fingerprints/abcdef", "/v1/fingerprints/{fingerprint}", true},
		{"GET", "/v1/list", "/v1/list", true},
		{"GET", "/v1/health", "/v1/health", true},
		{"POST", "/v1/secrets/prod/db/password", "", false}, // 405
		{"GET", "/v1/list/extra", "", false},                // no tail allowed
		{"GET", "/wp-admin/x", "", false},
	}
	for _, c := range cases {
		got, ok := RoutePattern(httptest.NewRequest(c.method, c.path, nil))
		if got != c.want || ok != c.ok {
			t.Errorf("%s %s: %q %v, want %q %v", c.method, c.path, got, ok, c.want, c.ok)
		}
	}
	// Every route resolves to a pattern without its tail.
	for _, r := range api.Routes {
		got, ok := RoutePattern(httptest.NewRequest(r.Method, r.URL("secret/name"), nil))
		if !ok || strings.Contains(got, "secret/name") {
			t.Errorf("%s: %q %v", r.Name, got, ok)
		}
	}
}

// sampleCount reads the duration histogram's count for one series.
func sampleCount(t *testing.T, m *metrics.Metrics, labels map[string]string) uint64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != metrics.NameHTTPRequestDuration {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			n += s.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// allLabelValues lists every label value of the duration histogram, to
// check that no request path leaks into one.
func allLabelValues(t *testing.T, m *metrics.Metrics) []string {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				vs = append(vs, lp.GetValue())
			}
		}
	}
	return vs
}

func TestInstrument(t *testing.T) {
	m := metrics.New()
	h := Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/missing"):
			http.Error(w, "nope", http.StatusNotFound)
		case strings.HasSuffix(r.URL.Path, "/silent"):
			// writes nothing: 200
		case r.URL.Path == "/v1/list":
			time.Sleep(5 * time.Millisecond)
			_, _ = w.Write([]byte("[]"))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}), m, RoutePattern)
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do("GET", "/v1/secrets/team-a/top-secret-name/missing")
	do("GET", "/v1/secrets/team-b/another/missing")
	do("GET", "/v1/secrets/x/silent")
	do("GET", "/v1/list")
	do("PUT", "/v1/stage/x")
	do("GET", "/admin/secret-probe")

	for _, c := range []struct {
		labels map[string]string
		want   uint64
	}{
		{map[string]string{"route": "/v1/secrets/{path}", "method": "GET", "code": "404"}, 2},
		{map[string]string{"route": "/v1/secrets/{path}", "method": "GET", "code": "200"}, 1},
		{map[string]string{"route": "/v1/list", "method": "GET", "code": "200"}, 1},
		{map[string]string{"route": "/v1/stage/{path}", "method": "PUT", "code": "204"}, 1},
		{map[string]string{"route": OtherRoute, "method": "GET", "code": "204"}, 1},
	} {
		if got := sampleCount(t, m, c.labels); got != c.want {
			t.Errorf("%v: %d requests, want %d", c.labels, got, c.want)
		}
	}
	for _, v := range allLabelValues(t, m) {
		if strings.Contains(v, "secret") && v != "/v1/secrets/{path}" {
			t.Errorf("request path leaked into label value %q", v)
		}
	}
}

func TestInstrumentPanic(t *testing.T) {
	m := metrics.New()
	h := Instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), m, nil)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/list", nil))
	}()
	if got := sampleCount(t, m, map[string]string{"route": "/v1/list", "code": "500", "method": "GET"}); got != 1 {
		t.Errorf("panicking request recorded %d times as 500", got)
	}
}

func TestInstrumentNilMetrics(t *testing.T) {
	next := http.NotFoundHandler()
	if h := Instrument(next, nil, RoutePattern); h == nil {
		t.Fatal("nil handler")
	}
}

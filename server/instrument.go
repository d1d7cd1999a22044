package server

import (
	"net/http"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/metrics"
)

// OtherRoute is the route label of a request that matches no API route
// (404 and 405 answers, scanners probing random URLs): folding them into
// one value keeps arbitrary request paths out of the metrics.
const OtherRoute = "other"

// RoutePattern names the API route r asks for: its fixed path followed by
// a placeholder for the tail, e.g. "/v1/secrets/{path}", never the secret
// path itself. It matches like the server does (api.Match: method plus
// fixed path or prefix); ok is false when no route of r's method matches.
func RoutePattern(r *http.Request) (pattern string, ok bool) {
	route, _, _ := api.Match(r.Method, r.URL.Path)
	if route == nil {
		return "", false
	}
	return patternOf(*route), true
}

func patternOf(r api.Route) string {
	switch r.Tail {
	case api.TailPath:
		return r.Path + "{path}"
	case api.TailFingerprint:
		return r.Path + "{fingerprint}"
	case api.TailName:
		return r.Path + "{name}"
	default:
		return r.Path
	}
}

// Instrument records each request's duration and status code in m under
// the pattern route returns (OtherRoute when it returns false). With a nil
// m it returns next unchanged.
func Instrument(next http.Handler, m *metrics.Metrics, route func(*http.Request) (pattern string, ok bool)) http.Handler {
	if m == nil {
		return next
	}
	if route == nil {
		route = RoutePattern
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Resolve before serving: the handler may rewrite r.URL.
		pattern, ok := route(r)
		if !ok {
			pattern = OtherRoute
		}
		method := r.Method
		cw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			code := cw.status
			if p := recover(); p != nil {
				// A panic that escapes next still costs a request; record
				// it as the 500 net/http's recovery amounts to, then let it
				// propagate.
				if code == 0 {
					code = http.StatusInternalServerError
				}
				m.ObserveHTTP(pattern, method, code, time.Since(start))
				panic(p)
			}
			if code == 0 {
				code = http.StatusOK // nothing written: net/http sends 200
			}
			m.ObserveHTTP(pattern, method, code, time.Since(start))
		}()
		next.ServeHTTP(cw, r)
	})
}

// metricsRoute names /metrics in the request log and the authentication
// failure count; it is no API route.
const metricsRoute = "sys.metrics"

// guardMetrics serves next (the /metrics exposition) to an authenticated
// caller only, any valid token or client certificate: its counters
// describe every tenant's traffic. Requests are logged and rate-limited
// like the API's.
func (h *handler) guardMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		reqID := audit.NewRequestID()
		sw.Header().Set("X-Request-Id", reqID)
		sw.Header().Set("Cache-Control", "no-store")
		rl := reqLog{route: metricsRoute}
		defer func() {
			h.logRequest(r, sw.status, time.Since(start), reqID, rl)
			h.observe(rl)
		}()
		var ok bool
		if _, ok, rl.err = h.admit(sw, r, reqID, nil, &rl); ok {
			next.ServeHTTP(sw, r)
		}
	})
}

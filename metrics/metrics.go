// Package metrics is passman's Prometheus instrumentation: one value of
// type Metrics owns its own registry (never prometheus.DefaultRegisterer,
// so two servers in one process, or tests, cannot collide and nothing a
// dependency registers globally is exported by accident) and offers one
// method per event the server, the rotation runner and the client report.
//
// Label values come from small fixed sets or from names the code chooses
// (route patterns, audit actions, connector types), never from requests:
// a secret path or a token must not become a label value, both because it
// would leak through /metrics and because every distinct value is a new
// time series. Values outside a label's documented set are recorded as
// "other".
//
// Every method is safe on a nil *Metrics and does nothing, so callers can
// keep metrics optional without guarding each call.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every passman metric.
const Namespace = "passman"

// Metric names, exported so rules, dashboards and tests refer to the same
// strings the registry does.
const (
	NameHTTPRequestDuration = "passman_http_request_duration_seconds"
	NameSecretFetch         = "passman_secret_fetch_total"
	NameAuthzDenials        = "passman_authz_denials_total"
	NameAuthnFailures       = "passman_authn_failures_total"
	NameRotationAttempts    = "passman_rotation_attempts_total"
	NameRotationOutcomes    = "passman_rotation_outcomes_total"
	NameStaleSecrets        = "passman_stale_secrets"
	NameAuditWriteFailures  = "passman_audit_write_failures_total"
	NameClientCacheRequests = "passman_client_cache_requests_total"
)

// Label values substituted for values outside a label's set.
const (
	labelOther   = "other"
	labelUnknown = "unknown"
)

// Secret fetch outcomes (label outcome of passman_secret_fetch_total).
// The fetch SLI counts everything but FetchError as good: a missing
// secret or a denied read is a correct answer, not an outage.
//
// FetchNotFound means "not found, or no permission to read it": the API
// answers both alike so that a caller cannot learn a hidden secret
// exists, and a metric that split them would tell it to anyone who can
// read the metrics. FetchUnauthenticated is a read without valid
// credentials, which the answer (401) does not hide.
const (
	FetchSuccess         = "success"
	FetchNotFound        = "not_found"
	FetchUnauthenticated = "unauthenticated"
	FetchError           = "error"
)

// Authentication methods (label method of passman_authn_failures_total).
const (
	AuthnToken = "token"
	AuthnOIDC  = "oidc"
	AuthnMTLS  = "mtls"
)

// Rotation outcomes (label outcome of passman_rotation_outcomes_total);
// the strings equal secret.RotationState's terminal states.
const (
	RotationSucceeded  = "succeeded"
	RotationRolledBack = "rolled_back"
	RotationFailed     = "failed"
)

// Client cache results (label result of passman_client_cache_requests_total).
const (
	CacheHit   = "hit"
	CacheMiss  = "miss"
	CacheStale = "stale"
)

// DurationBuckets are the request latency histogram's upper bounds in
// seconds. 0.2 must stay a bound: the latency SLO (p95 < 200 ms) is
// computed from the le="0.2" bucket, which an interpolated quantile
// between other bounds would only approximate.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10}

// Metrics holds passman's collectors and the registry they live in.
type Metrics struct {
	reg *prometheus.Registry

	httpDuration       *prometheus.HistogramVec
	secretFetch        *prometheus.CounterVec
	authzDenials       *prometheus.CounterVec
	authnFailures      *prometheus.CounterVec
	rotationAttempts   *prometheus.CounterVec
	rotationOutcomes   *prometheus.CounterVec
	staleSecrets       prometheus.Gauge
	auditWriteFailures prometheus.Counter
	cacheRequests      *prometheus.CounterVec
}

// New returns Metrics registered in a fresh registry, together with the
// Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameHTTPRequestDuration,
			Help:    "Duration of HTTP API requests by route pattern (never the raw path), method and status code.",
			Buckets: DurationBuckets,
		}, []string{"route", "method", "code"}),
		secretFetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameSecretFetch,
			Help: "Secret reads by outcome (success; not_found: missing or no permission, never told apart; unauthenticated; error).",
		}, []string{"outcome"}),
		authzDenials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameAuthzDenials,
			Help: "Requests the policy denied, by audit action; denied reads of a secret count as not_found fetches instead.",
		}, []string{"action"}),
		authnFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameAuthnFailures,
			Help: "Failed authentications by method (token, oidc, mtls) and reason.",
		}, []string{"method", "reason"}),
		rotationAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRotationAttempts,
			Help: "Rotations attempted, by connector type.",
		}, []string{"connector"}),
		rotationOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRotationOutcomes,
			Help: "Finished rotations by connector type and outcome (succeeded, rolled_back, failed).",
		}, []string{"connector", "outcome"}),
		staleSecrets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameStaleSecrets,
			Help: "Secrets whose rotation is due (rotation.Entries with Due set) at the last check.",
		}),
		auditWriteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameAuditWriteFailures,
			Help: "Audit log writes that failed (the operation was refused: audit fails closed).",
		}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameClientCacheRequests,
			Help: "Client cache lookups by result (hit, miss, stale).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(
		m.httpDuration, m.secretFetch, m.authzDenials, m.authnFailures,
		m.rotationAttempts, m.rotationOutcomes, m.staleSecrets,
		m.auditWriteFailures, m.cacheRequests,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Zero the series the SLO rules divide by or alert on, so a fresh
	// server exports 0 instead of nothing: absent series make "errors /
	// total" empty rather than 0 and hide a never-firing alert's inputs.
	for _, o := range []string{FetchSuccess, FetchNotFound, FetchUnauthenticated, FetchError} {
		m.secretFetch.WithLabelValues(o)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format, for
// /metrics. It exposes only this registry.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:      m.reg, // counts the handler's own errors
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gatherer is the registry, for tests and for embedding passman's metrics
// into another exporter.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Registerer lets the embedding program add its own collectors to the
// same registry.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// ObserveHTTP records one API request. route must be a route pattern
// (see server.RoutePattern), never the request path.
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpDuration.WithLabelValues(orUnknown(route), oneOf(method, http.MethodGet, http.MethodPut,
		http.MethodPost, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions),
		strconv.Itoa(code)).Observe(d.Seconds())
}

// ObserveSecretFetch records one secret read with outcome FetchSuccess,
// FetchNotFound, FetchUnauthenticated or FetchError.
func (m *Metrics) ObserveSecretFetch(outcome string) {
	if m == nil {
		return
	}
	m.secretFetch.WithLabelValues(oneOf(outcome, FetchSuccess, FetchNotFound, FetchUnauthenticated, FetchError)).Inc()
}

// FetchOutcome maps an error class (secret.Class, "" for success) to a
// fetch outcome. A path that cannot exist and a denied read are not
// found, as they are answered; everything else (audit, storage, key,
// unavailable) is an error and burns the availability SLO.
func FetchOutcome(class string) string {
	switch class {
	case "":
		return FetchSuccess
	case "not_found", "deleted", "destroyed", "invalid_path", "permission_denied":
		return FetchNotFound
	case "unauthenticated":
		return FetchUnauthenticated
	default:
		return FetchError
	}
}

// ObserveAuthzDenial records a policy denial of action (an audit action
// such as "secret.put"). The server does not report denied reads of one
// secret here: they are answered, and counted, as not found.
func (m *Metrics) ObserveAuthzDenial(action string) {
	if m == nil {
		return
	}
	m.authzDenials.WithLabelValues(orUnknown(action)).Inc()
}

// ObserveAuthnFailure records a failed authentication. method is AuthnToken,
// AuthnOIDC or AuthnMTLS; reason must come from a small fixed set chosen by
// the caller ("missing", "invalid", "expired", ...), never from the
// credential.
func (m *Metrics) ObserveAuthnFailure(method, reason string) {
	if m == nil {
		return
	}
	m.authnFailures.WithLabelValues(oneOf(method, AuthnToken, AuthnOIDC, AuthnMTLS), orUnknown(reason)).Inc()
}

// ObserveRotation records one finished rotation attempt by connector type
// (the spec's connector name, e.g. "postgres", not the secret path). state
// is the rotation.Result's State as a string: succeeded and rolled_back are
// kept, anything else (failed, in_progress because it stopped midway, or
// empty because it never started) counts as failed. Each call is one
// attempt, so attempts always equal the sum of outcomes.
func (m *Metrics) ObserveRotation(connector, state string) {
	if m == nil {
		return
	}
	connector = orUnknown(connector)
	outcome := RotationFailed
	switch state {
	case RotationSucceeded, RotationRolledBack:
		outcome = state
	}
	m.rotationAttempts.WithLabelValues(connector).Inc()
	m.rotationOutcomes.WithLabelValues(connector, outcome).Inc()
}

// SetStaleSecrets sets the number of secrets whose rotation is overdue.
func (m *Metrics) SetStaleSecrets(n int) {
	if m == nil {
		return
	}
	m.staleSecrets.Set(float64(n))
}

// ObserveAuditWriteFailure records one failed audit write.
func (m *Metrics) ObserveAuditWriteFailure() {
	if m == nil {
		return
	}
	m.auditWriteFailures.Inc()
}

// ObserveCacheRequest records a client cache lookup: CacheHit, CacheMiss or
// CacheStale.
func (m *Metrics) ObserveCacheRequest(result string) {
	if m == nil {
		return
	}
	m.cacheRequests.WithLabelValues(oneOf(result, CacheHit, CacheMiss, CacheStale)).Inc()
}

// oneOf returns v when it is one of allowed and "other" otherwise, keeping
// the label's cardinality fixed whatever the caller passes.
func oneOf(v string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return labelOther
}

func orUnknown(v string) string {
	if v == "" {
		return labelUnknown
	}
	return v
}

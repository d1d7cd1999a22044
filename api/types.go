package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody names an error's class (secret.Class) and explains it. The
// message never quotes a request body or a token.
type ErrorBody struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Extra error classes the API uses besides secret's.
const (
	// ClassInternal is secret.Class of an error that wraps no sentinel.
	ClassInternal = "internal"
	// ClassUnavailable: the server is shutting down or rate limiting;
	// try again later.
	ClassUnavailable = "unavailable"
	// ClassMethodNotAllowed: the path exists for other methods only.
	ClassMethodNotAllowed = "method_not_allowed"
	// ClassUnsupportedMediaType: a request body that is not declared
	// application/json (UTF-8).
	ClassUnsupportedMediaType = "unsupported_media_type"
)

// Status is the HTTP status code of an error class.
func Status(class string) int {
	switch class {
	case "":
		return http.StatusOK
	case "invalid_path", "invalid_argument":
		return http.StatusBadRequest
	case "unauthenticated":
		return http.StatusUnauthorized
	case "permission_denied":
		return http.StatusForbidden
	case "not_found":
		return http.StatusNotFound
	case ClassMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case ClassUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case "conflict":
		return http.StatusConflict
	case "deleted", "destroyed":
		// The version existed and is gone (a deleted one can be undeleted).
		return http.StatusGone
	case "failed_precondition":
		return http.StatusPreconditionFailed
	case "too_large":
		return http.StatusRequestEntityTooLarge
	case "audit", ClassUnavailable:
		// Fail closed: nothing was done; the server cannot serve now.
		return http.StatusServiceUnavailable
	default:
		// tampered, corrupt, key, internal and anything new.
		return http.StatusInternalServerError
	}
}

// ClassForStatus guesses the class of an error response that has no
// ErrorResponse body (a proxy's answer, say).
func ClassForStatus(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "invalid_argument"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "permission_denied"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusPreconditionFailed:
		return "failed_precondition"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return ClassUnsupportedMediaType
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return ClassUnavailable
	}
	return ClassInternal
}

// PutRequest is the body of PUT /v1/secrets/{path}.
type PutRequest struct {
	// Value is the secret's bytes (base64 in JSON).
	Value    []byte                 `json:"value"`
	CAS      *int                   `json:"cas,omitempty"`
	Stage    secret.Stage           `json:"stage,omitempty"`
	Metadata *secret.MetadataUpdate `json:"metadata,omitempty"`
}

// GetResponse is the body of GET /v1/secrets/{path}. Unlike
// secret.Versioned, whose Value marshals as "[redacted]", it carries the
// value (base64 in JSON).
type GetResponse struct {
	Path  string             `json:"path"`
	Info  secret.VersionInfo `json:"info"`
	Value []byte             `json:"value"`
}

// CompareRequest is the body of POST /v1/compare/{path}.
type CompareRequest struct {
	// Value is the candidate's bytes (base64 in JSON), as PutRequest's.
	Value []byte `json:"value"`
}

// CompareResponse answers POST /v1/compare/{path}.
type CompareResponse struct {
	// Equal says whether the value equals the current version's.
	Equal bool `json:"equal"`
}

// RollbackRequest is the body of POST /v1/rollback/{path}.
type RollbackRequest struct {
	Version int `json:"version"`
}

// VersionsRequest is the body of POST /v1/{delete,undelete,destroy}/{path};
// no versions means the current one.
type VersionsRequest struct {
	Versions []int `json:"versions,omitempty"`
}

// StageRequest is the body of PUT /v1/stage/{path}; version 0 removes the
// label.
type StageRequest struct {
	Stage   secret.Stage `json:"stage"`
	Version int          `json:"version"`
}

// ConfirmRequest is the body of POST /v1/fingerprints/confirm: at most
// fpindex.MaxConfirm fingerprints, lowercase hex. The answer is an
// fpindex.Confirmation.
type ConfirmRequest struct {
	Fingerprints []string `json:"fingerprints"`
}

// MaxConfirmBody bounds a ConfirmRequest: fpindex.MaxConfirm quoted
// 64-character fingerprints and their commas, with room to spare.
const MaxConfirmBody = fpindex.MaxConfirm*67 + 1<<10

// FingerprintResponse is the body of GET /v1/fingerprints/{fingerprint}.
type FingerprintResponse struct {
	Matches []secret.FingerprintMatch `json:"matches"`
}

// VerifyResponse is the body of GET /v1/audit/verify. A log that does not
// verify is still a 200: the report is the answer, and Error (class
// tampered) says it is a bad one.
type VerifyResponse struct {
	Report audit.Report `json:"report"`
	Error  *ErrorBody   `json:"error,omitempty"`
}

// AuditEntriesResponse is the body of GET /v1/audit/entries.
type AuditEntriesResponse struct {
	Entries []audit.Entry `json:"entries"`
}

// TokenCreateRequest is the body of POST /v1/auth/token/create.
type TokenCreateRequest struct {
	Identity string            `json:"identity"`
	Claims   map[string]string `json:"claims,omitempty"`
	// TTL is Go duration text ("1h") or days ("30d"); "" never expires.
	TTL secret.Duration `json:"ttl,omitempty"`
}

// TokenCreateResponse carries a new token: the only time it is shown.
type TokenCreateResponse struct {
	Token string           `json:"token"`
	Info  secret.TokenInfo `json:"info"`
}

// OIDCLoginRequest is the body of POST /v1/auth/oidc: a GitHub Actions
// OIDC ID token (a JWT) to exchange for a short-lived passman token. The
// answer is a TokenCreateResponse.
type OIDCLoginRequest struct {
	Token string `json:"token"`
}

// TokenRevokeRequest is the body of POST /v1/auth/token/revoke.
type TokenRevokeRequest struct {
	Accessor string `json:"accessor"`
}

// TokenListResponse is the body of GET /v1/auth/tokens.
type TokenListResponse struct {
	Tokens []secret.TokenInfo `json:"tokens"`
}

// ConnectionRequest is the body of PUT /v1/connections/<name>: the
// connection, named by the URL.
type ConnectionRequest struct {
	Connector    string            `json:"connector"`
	Config       map[string]string `json:"config,omitempty"`
	AllowedPaths []string          `json:"allowed_paths"`
	AllowedRoles []string          `json:"allowed_roles,omitempty"`
	AllowedNames []string          `json:"allowed_names,omitempty"`
}

// ConnectionListResponse answers GET /v1/connections.
type ConnectionListResponse struct {
	Connections []secret.Connection `json:"connections"`
}

// PolicyPutRequest is the body of PUT /v1/policies/<name>: the module's
// Rego source, named by the URL.
type PolicyPutRequest struct {
	Source string `json:"source"`
}

// PolicyListResponse answers GET /v1/policies: the stored modules, sorted
// by name, without their sources.
type PolicyListResponse struct {
	Policies []secret.PolicyModule `json:"policies"`
}

// MaxPolicyPutBody bounds PUT /v1/policies/<name>: a maximal source
// (secret.MaxPolicySource) as a JSON string, each byte escaped in two
// (quotes, backslashes, newlines, tabs), and the envelope.
const MaxPolicyPutBody = 2*secret.MaxPolicySource + 4<<10

// HealthResponse is the body of the health and readiness probes.
type HealthResponse struct {
	Status string `json:"status"`
}

// Query parameter names.
const (
	QueryVersion = "version"
	QueryStage   = "stage"
	QueryPrefix  = "prefix"
	// QueryLogical asks RouteBackup for the keyspace as records.
	QueryLogical    = "logical"
	QueryAfter      = "after"
	QueryLimit      = "limit"
	QueryMetadata   = "metadata"
	QueryPath       = "path"
	QueryPathPrefix = "path_prefix"
	QueryActor      = "actor"
	QueryAction     = "action"
	QueryOutcome    = "outcome"
	QuerySince      = "since"
	QueryUntil      = "until"
)

// EncodeSelector is the query of a Get.
func EncodeSelector(sel secret.Selector) url.Values {
	q := url.Values{}
	if sel.Version != 0 {
		q.Set(QueryVersion, strconv.Itoa(sel.Version))
	}
	if sel.Stage != "" {
		q.Set(QueryStage, string(sel.Stage))
	}
	return q
}

// DecodeSelector parses a Get's query. Errors never quote the input.
func DecodeSelector(q url.Values) (secret.Selector, error) {
	var sel secret.Selector
	var err error
	if sel.Version, err = intParam(q, QueryVersion); err != nil {
		return sel, err
	}
	if s := q.Get(QueryStage); s != "" {
		if sel.Stage, err = parseStage(s); err != nil {
			return sel, err
		}
	}
	return sel, nil
}

// parseStage is secret.ParseStage with an error that does not quote s.
func parseStage(s string) (secret.Stage, error) {
	st, err := secret.ParseStage(s)
	if err != nil {
		return "", fmt.Errorf("%w: unknown stage (want current, previous or pending)", secret.ErrInvalidArgument)
	}
	return st, nil
}

// ParseStage validates a stage sent in a body; the error does not quote it.
func ParseStage(s secret.Stage) (secret.Stage, error) { return parseStage(string(s)) }

// EncodeList is the query of a List.
func EncodeList(o secret.ListOptions) url.Values {
	q := url.Values{}
	if o.Prefix != "" {
		q.Set(QueryPrefix, o.Prefix)
	}
	if o.After != "" {
		q.Set(QueryAfter, o.After)
	}
	if o.Limit != 0 {
		q.Set(QueryLimit, strconv.Itoa(o.Limit))
	}
	if o.WithMetadata {
		q.Set(QueryMetadata, "true")
	}
	return q
}

// DecodeList parses a List's query; the prefix is validated like a path.
func DecodeList(q url.Values) (secret.ListOptions, error) {
	o := secret.ListOptions{Prefix: q.Get(QueryPrefix), After: q.Get(QueryAfter)}
	if err := secret.ValidatePrefix(o.Prefix); err != nil {
		return o, err
	}
	if o.After != "" {
		if err := secret.ValidatePath(o.After); err != nil {
			return o, fmt.Errorf("after: %w", err)
		}
	}
	var err error
	if o.Limit, err = intParam(q, QueryLimit); err != nil {
		return o, err
	}
	if o.WithMetadata, err = boolParam(q, QueryMetadata); err != nil {
		return o, err
	}
	return o, nil
}

// EncodeAuditQuery is the query of a QueryAudit.
func EncodeAuditQuery(f audit.Filter, limit int) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set(QueryPath, f.Path)
	set(QueryPathPrefix, f.PathPrefix)
	set(QueryActor, f.Actor)
	set(QueryAction, f.Action)
	set(QueryOutcome, string(f.Outcome))
	if !f.Since.IsZero() {
		q.Set(QuerySince, f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set(QueryUntil, f.Until.UTC().Format(time.RFC3339Nano))
	}
	if limit != 0 {
		q.Set(QueryLimit, strconv.Itoa(limit))
	}
	return q
}

// DecodeAuditQuery parses a QueryAudit's query.
func DecodeAuditQuery(q url.Values) (audit.Filter, int, error) {
	f := audit.Filter{
		Path:       q.Get(QueryPath),
		PathPrefix: q.Get(QueryPathPrefix),
		Actor:      q.Get(QueryActor),
		Action:     q.Get(QueryAction),
		Outcome:    audit.Outcome(q.Get(QueryOutcome)),
	}
	switch f.Outcome {
	case "", audit.OutcomeSuccess, audit.OutcomeFailure, audit.OutcomeDenied:
	default:
		return f, 0, fmt.Errorf("%w: outcome must be success, failure or denied", secret.ErrInvalidArgument)
	}
	var err error
	if f.Since, err = timeParam(q, QuerySince); err != nil {
		return f, 0, err
	}
	if f.Until, err = timeParam(q, QueryUntil); err != nil {
		return f, 0, err
	}
	limit, err := intParam(q, QueryLimit)
	return f, limit, err
}

func intParam(q url.Values, name string) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: query parameter %s must be a non-negative integer", secret.ErrInvalidArgument, name)
	}
	return n, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%w: query parameter %s must be true or false", secret.ErrInvalidArgument, name)
	}
	return b, nil
}

func timeParam(q url.Values, name string) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: query parameter %s must be an RFC 3339 time", secret.ErrInvalidArgument, name)
	}
	return t, nil
}

// RotateRequest is the optional body of POST /v1/rotate/{path}.
type RotateRequest struct {
	// Trigger is recorded in the rotation status: "manual" (the default)
	// or "due".
	Trigger string `json:"trigger,omitempty"`
}

// RotateDueRequest is the body of POST /v1/rotate-due (rotation.DueOptions
// on the wire); an empty body takes every default. The answer is a
// rotation.DueReport.
type RotateDueRequest struct {
	Prefix      string `json:"prefix,omitempty"`
	Canary      int    `json:"canary,omitempty"`
	MaxFailures int    `json:"max_failures,omitempty"`
	Workers     int    `json:"workers,omitempty"`
}

// MaxRotateWorkers bounds RotateDueRequest.Workers on the server.
const MaxRotateWorkers = 16

// RespondRequest is the body of POST /v1/respond: the leaks a scan found,
// at most MaxRespondLeaks, each with a valid path (rotation.LeakFinding
// carries metadata only, never a value). The answer is a RespondResponse.
type RespondRequest struct {
	Leaks []rotation.LeakFinding `json:"leaks"`
}

// MaxRespondLeaks bounds RespondRequest.Leaks: a response may rotate each
// one, within one request's time.
const MaxRespondLeaks = 1000

// RespondResponse is the body of POST /v1/respond: one result per leak, in
// the request's order. A response that failed for some leak is still a
// 200: the results say what was done, each failed one its Error, and
// Error the first failure, as the local command reports them.
type RespondResponse struct {
	Results []rotation.LeakResult `json:"results"`
	Error   *ErrorBody            `json:"error,omitempty"`
}

// PolicyEvalRequest is the body of POST /v1/policy/eval. Input is the
// decision's input document, at most MaxPolicyInput bytes. The answer is
// a policy.EvalResult.
type PolicyEvalRequest struct {
	// Decision is authz, lint or respond.
	Decision string          `json:"decision"`
	Input    json.RawMessage `json:"input"`
	Explain  bool            `json:"explain,omitempty"`
}

// MaxPolicyInput bounds a policy eval input document, on the server and
// in the CLI alike.
const MaxPolicyInput = 4 << 20

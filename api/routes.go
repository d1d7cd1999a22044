// Package api is passman's HTTP API as data: the route table, the JSON
// request and response bodies, the query parameters and the mapping
// between error classes (secret.Class) and HTTP status codes. The server
// (package server) and the client (package client) both build on it, so
// the two cannot disagree about the wire.
//
// Every route lives under /v1. A route that names a secret takes the
// secret's path after its fixed part, unescaped: PUT /v1/secrets/prod/db/password.
// Paths are validated with secret.ValidatePath, so "..", "." and empty
// segments are refused with 400, never cleaned or redirected.
//
// Requests authenticate with "Authorization: Bearer <token>". Errors are
// {"error": {"class": ..., "message": ...}} with the status Status gives
// the class.
package api

import (
	"net/http"
	"strings"
)

// Prefix is the API version prefix of every route.
const Prefix = "/v1"

// Tail says what follows a route's fixed path.
type Tail int

// Tails.
const (
	// TailNone: the URL path is exactly Route.Path.
	TailNone Tail = iota
	// TailPath: a secret path follows Route.Path.
	TailPath
	// TailFingerprint: a value fingerprint (hex) follows Route.Path.
	TailFingerprint
	// TailName: a connection's name follows Route.Path.
	TailName
	// TailPolicy: a stored policy module's name follows Route.Path.
	TailPolicy
)

// Route is one endpoint.
type Route struct {
	// Name identifies the route in logs; for a Service call it is the
	// audit action.
	Name   string
	Method string
	// Path is the fixed part of the URL path; it ends in "/" when a Tail
	// follows.
	Path string
	Tail Tail
	// Public routes need no token (health and readiness probes).
	Public bool
	// ReadsSecret marks a read of one secret. Denied, it answers exactly
	// like a missing secret, so a caller cannot learn which paths exist.
	ReadsSecret bool
	// Idempotent routes change nothing more when repeated, so a client may
	// retry one whose outcome it does not know. (A repeat may answer
	// differently: a second purge finds nothing to purge.)
	Idempotent bool
	// MaxBody, when set, is the route's body limit in place of the
	// server's default (sized for a secret value); a limit the operator
	// sets still caps it.
	MaxBody int64
}

// URL returns the route's URL path for tail (a secret path or
// fingerprint), unescaped, as url.URL.Path holds it (its String escapes
// it). Valid secret paths and fingerprints need no escaping anyway.
func (r Route) URL(tail string) string {
	if r.Tail == TailNone {
		return r.Path
	}
	return r.Path + tail
}

// The routes. Secret operations map one to one onto passman.Service.
var (
	RoutePut   = Route{Name: "secret.put", Method: http.MethodPut, Path: Prefix + "/secrets/", Tail: TailPath}
	RouteGet   = Route{Name: "secret.get", Method: http.MethodGet, Path: Prefix + "/secrets/", Tail: TailPath, ReadsSecret: true, Idempotent: true}
	RoutePurge = Route{Name: "secret.purge", Method: http.MethodDelete, Path: Prefix + "/secrets/", Tail: TailPath, Idempotent: true}
	// RouteCompare answers whether a value equals a secret's current
	// value (passman.ValueComparer): a read, so denied it answers as a
	// missing secret does; POST because the value travels in the body,
	// never in a URL. It changes nothing.
	RouteCompare  = Route{Name: "secret.compare", Method: http.MethodPost, Path: Prefix + "/compare/", Tail: TailPath, ReadsSecret: true, Idempotent: true}
	RouteDescribe = Route{Name: "secret.describe", Method: http.MethodGet, Path: Prefix + "/describe/", Tail: TailPath, ReadsSecret: true, Idempotent: true}
	RouteList     = Route{Name: "secret.list", Method: http.MethodGet, Path: Prefix + "/list", Idempotent: true}
	// Rollback writes a new version each time: not idempotent.
	RouteRollback    = Route{Name: "secret.rollback", Method: http.MethodPost, Path: Prefix + "/rollback/", Tail: TailPath}
	RouteDelete      = Route{Name: "secret.delete", Method: http.MethodPost, Path: Prefix + "/delete/", Tail: TailPath, Idempotent: true}
	RouteUndelete    = Route{Name: "secret.undelete", Method: http.MethodPost, Path: Prefix + "/undelete/", Tail: TailPath, Idempotent: true}
	RouteDestroy     = Route{Name: "secret.destroy", Method: http.MethodPost, Path: Prefix + "/destroy/", Tail: TailPath, Idempotent: true}
	RouteMetadata    = Route{Name: "secret.meta", Method: http.MethodPatch, Path: Prefix + "/metadata/", Tail: TailPath, Idempotent: true}
	RouteStage       = Route{Name: "secret.stage", Method: http.MethodPut, Path: Prefix + "/stage/", Tail: TailPath, Idempotent: true}
	RouteFingerprint = Route{Name: "fingerprint.lookup", Method: http.MethodGet, Path: Prefix + "/fingerprints/", Tail: TailFingerprint, Idempotent: true}
	RouteAuditVerify = Route{Name: "audit.verify", Method: http.MethodGet, Path: Prefix + "/audit/verify", Idempotent: true}
	RouteAuditQuery  = Route{Name: "audit.query", Method: http.MethodGet, Path: Prefix + "/audit/entries", Idempotent: true}

	RouteTokenCreate = Route{Name: "token.create", Method: http.MethodPost, Path: Prefix + "/auth/token/create"}
	RouteTokenRevoke = Route{Name: "token.revoke", Method: http.MethodPost, Path: Prefix + "/auth/token/revoke", Idempotent: true}
	// RouteTokenRevokeSelf revokes the token the request carries.
	RouteTokenRevokeSelf = Route{Name: "token.revoke-self", Method: http.MethodPost, Path: Prefix + "/auth/token/revoke-self", Idempotent: true}
	RouteTokenLookupSelf = Route{Name: "token.lookup-self", Method: http.MethodGet, Path: Prefix + "/auth/token/lookup-self", Idempotent: true}
	RouteTokenList       = Route{Name: "token.list", Method: http.MethodGet, Path: Prefix + "/auth/tokens", Idempotent: true}
	// RouteOIDCLogin exchanges a GitHub Actions OIDC ID token for a passman
	// token. It is public: the ID token is the credential. Not idempotent:
	// each call issues a new token.
	RouteOIDCLogin = Route{Name: "auth.oidc", Method: http.MethodPost, Path: Prefix + "/auth/oidc", Public: true}

	// RouteRotate rotates one secret through its connector (create, set,
	// test, finish); each step is a Service call authorized and audited
	// as the caller, so it needs what a local rotation needs (read,
	// write, stage). Not idempotent: each call writes a new version.
	RouteRotate = Route{Name: "rotation.rotate", Method: http.MethodPost, Path: Prefix + "/rotate/", Tail: TailPath}
	// RouteRotateDue rotates every due secret under a prefix and revokes
	// previous versions whose grace period is over.
	RouteRotateDue = Route{Name: "rotation.due", Method: http.MethodPost, Path: Prefix + "/rotate-due"}
	// RouteRotationStatus lists the rotated secrets under a prefix and
	// whether each is due (a list, authorized as one).
	RouteRotationStatus = Route{Name: "rotation.status", Method: http.MethodGet, Path: Prefix + "/rotation-status", Idempotent: true}
	// RouteFingerprintExport answers the shareable fingerprint index
	// (package fpindex: detection key and 24-bit prefixes) of the secrets
	// under ?prefix= that the caller may read: a listing of the prefix,
	// audited as fingerprints.export. It and RouteFingerprintConfirm
	// precede RouteFingerprint in Routes, whose prefix they share.
	RouteFingerprintExport = Route{Name: "fingerprints.export", Method: http.MethodGet, Path: Prefix + "/fingerprints/export", Idempotent: true}
	// RouteFingerprintConfirm answers which of a batch of full
	// fingerprints (a scan's candidates) are values of versions the caller
	// may read: rate-limited per identity, audited as fingerprints.confirm.
	RouteFingerprintConfirm = Route{Name: "fingerprints.confirm", Method: http.MethodPost, Path: Prefix + "/fingerprints/confirm", Idempotent: true, MaxBody: MaxConfirmBody}
	// RouteRespond responds to leaks of managed secrets as the server's
	// respond policy decides (rotate, revoke the leaked version): each
	// step is a Service call authorized and audited as the caller. Not
	// idempotent: a repeat may rotate again.
	RouteRespond = Route{Name: "rotation.respond", Method: http.MethodPost, Path: Prefix + "/respond"}
	// RoutePolicyEval evaluates one decision of the server's policies on
	// an input, as `passman policy eval` does locally: an admin action,
	// audited as policy.eval. It changes nothing.
	// Its input is embedded in the body as the JSON it is (no string
	// escaping), so the envelope adds a few dozen bytes; 4 KiB is room for
	// those and whitespace.
	RoutePolicyEval = Route{Name: "policy.eval", Method: http.MethodPost, Path: Prefix + "/policy/eval", Idempotent: true, MaxBody: MaxPolicyInput + 4<<10}

	// Connections are operator-defined ways to reach rotation targets
	// (see secret.Connection): admin actions, audited as connection.*.
	RouteConnectionList   = Route{Name: "connection.list", Method: http.MethodGet, Path: Prefix + "/connections", Idempotent: true}
	RouteConnectionPut    = Route{Name: "connection.put", Method: http.MethodPut, Path: Prefix + "/connections/", Tail: TailName, Idempotent: true}
	RouteConnectionGet    = Route{Name: "connection.get", Method: http.MethodGet, Path: Prefix + "/connections/", Tail: TailName, Idempotent: true}
	RouteConnectionDelete = Route{Name: "connection.delete", Method: http.MethodDelete, Path: Prefix + "/connections/", Tail: TailName, Idempotent: true}

	// Policies are the Rego modules the store holds (secret.PolicyModule),
	// which every server sharing the store evaluates with the bundled
	// ones: admin actions, audited as policy.*. A put or delete that does
	// not compile, or breaks a test of the set, is 400 and changes
	// nothing.
	RoutePolicyList   = Route{Name: "policy.list", Method: http.MethodGet, Path: Prefix + "/policies", Idempotent: true}
	RoutePolicyPut    = Route{Name: "policy.put", Method: http.MethodPut, Path: Prefix + "/policies/", Tail: TailPolicy, Idempotent: true, MaxBody: MaxPolicyPutBody}
	RoutePolicyGet    = Route{Name: "policy.get", Method: http.MethodGet, Path: Prefix + "/policies/", Tail: TailPolicy, Idempotent: true}
	RoutePolicyDelete = Route{Name: "policy.delete", Method: http.MethodDelete, Path: Prefix + "/policies/", Tail: TailPolicy, Idempotent: true}
	// RouteSchedulerStatus answers the scheduler's leader and its last
	// runs (admin; audited as scheduler.status).
	RouteSchedulerStatus = Route{Name: "scheduler.status", Method: http.MethodGet, Path: Prefix + "/scheduler", Idempotent: true}
	// RouteBackup streams a consistent backup of the store (admin;
	// audited as store.backup): application/octet-stream in the format of
	// package backup, ?logical=true for the keyspace as records.
	RouteBackup = Route{Name: "store.backup", Method: http.MethodGet, Path: Prefix + "/store/backup", Idempotent: true}

	RouteHealth = Route{Name: "sys.health", Method: http.MethodGet, Path: Prefix + "/health", Public: true, Idempotent: true}
	RouteReady  = Route{Name: "sys.ready", Method: http.MethodGet, Path: Prefix + "/ready", Public: true, Idempotent: true}
)

// Routes is the route table: every endpoint the server serves.
var Routes = []Route{
	RoutePut, RouteGet, RoutePurge, RouteCompare, RouteDescribe, RouteList, RouteRollback,
	RouteDelete, RouteUndelete, RouteDestroy, RouteMetadata, RouteStage,
	// Before RouteFingerprint: "export" and "confirm" would otherwise be
	// taken for fingerprints.
	RouteFingerprintExport, RouteFingerprintConfirm,
	RouteFingerprint, RouteAuditVerify, RouteAuditQuery,
	RouteRotate, RouteRotateDue, RouteRotationStatus, RouteRespond,
	RoutePolicyEval,
	RouteConnectionList, RouteConnectionPut, RouteConnectionGet, RouteConnectionDelete,
	RoutePolicyList, RoutePolicyPut, RoutePolicyGet, RoutePolicyDelete,
	RouteTokenCreate, RouteTokenRevoke, RouteTokenRevokeSelf, RouteTokenLookupSelf, RouteTokenList,
	RouteOIDCLogin,
	RouteSchedulerStatus, RouteBackup,
	RouteHealth, RouteReady,
}

// Match finds the route for method and URL path (unescaped), and the tail
// after its fixed part. When the path matches routes of other methods
// only, route is nil and allowed lists their methods (405); when it
// matches none, both are empty (404).
func Match(method, path string) (route *Route, tail string, allowed []string) {
	for i := range Routes {
		r := &Routes[i]
		var t string
		switch {
		case r.Tail == TailNone && path == r.Path:
		case r.Tail != TailNone && strings.HasPrefix(path, r.Path):
			t = path[len(r.Path):]
		default:
			continue
		}
		if r.Method == method {
			return r, t, nil
		}
		allowed = append(allowed, r.Method)
	}
	return nil, "", allowed
}

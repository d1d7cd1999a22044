package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/secret"
)

// routeFuncs serves each route of api.Routes, by name; a test checks that
// every route has one.
var routeFuncs = map[string]routeFunc{
	api.RoutePut.Name:               servePut,
	api.RouteGet.Name:               serveGet,
	api.RoutePurge.Name:             servePurge,
	api.RouteCompare.Name:           serveCompare,
	api.RouteDescribe.Name:          serveDescribe,
	api.RouteList.Name:              serveList,
	api.RouteRollback.Name:          serveRollback,
	api.RouteDelete.Name:            serveVersions((*handler).delete),
	api.RouteUndelete.Name:          serveVersions((*handler).undelete),
	api.RouteDestroy.Name:           serveVersions((*handler).destroy),
	api.RouteMetadata.Name:          serveMetadata,
	api.RouteStage.Name:             serveStage,
	api.RouteFingerprint.Name:       serveFingerprint,
	api.RouteFingerprintExport.Name: serveFingerprintExport,
	api.RouteRotate.Name:            serveRotate,
	api.RouteRotateDue.Name:         serveRotateDue,
	api.RouteRotationStatus.Name:    serveRotationStatus,
	api.RouteRespond.Name:           serveRespond,
	api.RoutePolicyEval.Name:        servePolicyEval,
	api.RouteAuditVerify.Name:       serveAuditVerify,
	api.RouteAuditQuery.Name:        serveAuditQuery,
	api.RouteTokenCreate.Name:       serveTokenCreate,
	api.RouteTokenRevoke.Name:       serveTokenRevoke,
	api.RouteTokenLookupSelf.Name:   serveTokenLookupSelf,
	api.RouteTokenRevokeSelf.Name:   serveTokenRevokeSelf,
	api.RouteTokenList.Name:         serveTokenList,
	api.RouteConnectionList.Name:    serveConnectionList,
	api.RouteConnectionPut.Name:     serveConnectionPut,
	api.RouteConnectionGet.Name:     serveConnectionGet,
	api.RouteConnectionDelete.Name:  serveConnectionDelete,
	api.RoutePolicyList.Name:        servePolicyList,
	api.RoutePolicyPut.Name:         servePolicyPut,
	api.RoutePolicyGet.Name:         servePolicyGet,
	api.RoutePolicyDelete.Name:      servePolicyDelete,
	api.RouteSchedulerStatus.Name:   serveSchedulerStatus,
	api.RouteBackup.Name:            serveBackup,
	api.RouteHealth.Name:            serveHealth,
	api.RouteReady.Name:             serveReady,

	// A scan's candidates, confirmed (fingerprints.go).
	api.RouteFingerprintConfirm.Name: serveFingerprintConfirm,
}

func servePut(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.PutRequest
	// The value is wiped once written, whatever happened.
	defer func() { clear(req.Value) }()
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	opts := secret.PutOptions{CAS: req.CAS, Metadata: req.Metadata}
	if req.Stage != "" {
		st, err := api.ParseStage(req.Stage)
		if err != nil {
			return nil, err
		}
		opts.Stage = st
	}
	return h.svc.Put(ctx, c.tail, secret.NewValue(req.Value), opts)
}

func serveGet(h *handler, ctx context.Context, c *call) (any, error) {
	sel, err := api.DecodeSelector(c.r.URL.Query())
	if err != nil {
		return nil, err
	}
	v, err := h.svc.Get(ctx, c.tail, sel)
	if err != nil {
		return nil, err
	}
	c.after = v.Value.Wipe
	return api.GetResponse{Path: v.Path, Info: v.Info, Value: v.Value.Reveal()}, nil
}

// serveCompare answers whether the body's value equals path's current
// value; the value is wiped once compared, whatever happened.
func serveCompare(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.CompareRequest
	defer func() { clear(req.Value) }()
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	equal, err := h.svc.CompareValue(ctx, c.tail, req.Value)
	if err != nil {
		return nil, err
	}
	return api.CompareResponse{Equal: equal}, nil
}

func servePurge(h *handler, ctx context.Context, c *call) (any, error) {
	return nil, h.svc.Purge(ctx, c.tail)
}

func serveDescribe(h *handler, ctx context.Context, c *call) (any, error) {
	return h.svc.Describe(ctx, c.tail)
}

func serveList(h *handler, ctx context.Context, c *call) (any, error) {
	opts, err := api.DecodeList(c.r.URL.Query())
	if err != nil {
		return nil, err
	}
	return h.svc.List(ctx, opts)
}

func serveRollback(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.RollbackRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	return h.svc.Rollback(ctx, c.tail, req.Version)
}

func (h *handler) delete(ctx context.Context, path string, vs []int) error {
	return h.svc.Delete(ctx, path, vs)
}

func (h *handler) undelete(ctx context.Context, path string, vs []int) error {
	return h.svc.Undelete(ctx, path, vs)
}

func (h *handler) destroy(ctx context.Context, path string, vs []int) error {
	return h.svc.Destroy(ctx, path, vs)
}

// serveVersions serves delete, undelete and destroy; an empty body means
// the current version.
func serveVersions(fn func(*handler, context.Context, string, []int) error) routeFunc {
	return func(h *handler, ctx context.Context, c *call) (any, error) {
		var req api.VersionsRequest
		if err := decode(c, &req, true); err != nil {
			return nil, err
		}
		return nil, fn(h, ctx, c.tail, req.Versions)
	}
}

func serveMetadata(h *handler, ctx context.Context, c *call) (any, error) {
	var u secret.MetadataUpdate
	if err := decode(c, &u, false); err != nil {
		return nil, err
	}
	return h.svc.UpdateMetadata(ctx, c.tail, u)
}

func serveStage(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.StageRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	st, err := api.ParseStage(req.Stage)
	if err != nil {
		return nil, err
	}
	return nil, h.svc.SetStage(ctx, c.tail, st, req.Version)
}

func serveFingerprint(h *handler, ctx context.Context, c *call) (any, error) {
	m, err := h.svc.LookupFingerprint(ctx, c.tail)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = []secret.FingerprintMatch{}
	}
	return api.FingerprintResponse{Matches: m}, nil
}

func serveAuditVerify(h *handler, ctx context.Context, _ *call) (any, error) {
	rep, err := h.svc.VerifyAudit(ctx)
	if err != nil {
		// A broken chain is a finding, reported with the report that
		// locates it; any other failure is an error.
		if secret.Class(err) == "tampered" && rep.Broken != nil {
			return api.VerifyResponse{Report: rep, Error: &api.ErrorBody{Class: "tampered", Message: err.Error()}}, nil
		}
		return nil, err
	}
	return api.VerifyResponse{Report: rep}, nil
}

func serveAuditQuery(h *handler, ctx context.Context, c *call) (any, error) {
	f, limit, err := api.DecodeAuditQuery(c.r.URL.Query())
	if err != nil {
		return nil, err
	}
	entries, err := h.svc.QueryAudit(ctx, f, limit)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	return api.AuditEntriesResponse{Entries: entries}, nil
}

func serveTokenCreate(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.TokenCreateRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	token, info, err := h.admin.CreateToken(ctx, secret.TokenRequest{Identity: req.Identity, Claims: req.Claims, TTL: time.Duration(req.TTL)})
	if err != nil {
		return nil, err
	}
	return api.TokenCreateResponse{Token: token, Info: info}, nil
}

func serveTokenRevoke(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.TokenRevokeRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	return nil, h.admin.RevokeToken(ctx, req.Accessor)
}

// serveTokenRevokeSelf revokes the bearer token the request was
// authenticated with; a client certificate has no token to revoke.
func serveTokenRevokeSelf(h *handler, ctx context.Context, c *call) (any, error) {
	scheme, token, ok := strings.Cut(c.r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, fmt.Errorf("%w: revoke-self needs a bearer token (a client certificate cannot be revoked here)", secret.ErrInvalidArgument)
	}
	return nil, h.svc.RevokeSelf(ctx, strings.TrimSpace(token))
}

// serveTokenLookupSelf describes the caller's own token: anyone holding a
// token may see what it is, so no policy is asked.
func serveTokenLookupSelf(_ *handler, _ context.Context, c *call) (any, error) {
	return c.token, nil
}

func serveTokenList(h *handler, ctx context.Context, _ *call) (any, error) {
	infos, err := h.admin.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	if infos == nil {
		infos = []secret.TokenInfo{}
	}
	return api.TokenListResponse{Tokens: infos}, nil
}

// serveHealth is the liveness probe: the process answers.
func serveHealth(*handler, context.Context, *call) (any, error) {
	return api.HealthResponse{Status: "ok"}, nil
}

// errNotReady answers the readiness probe; the reason is logged, not
// shown to an unauthenticated caller.
var errNotReady = errors.New("not ready")

// serveReady is the readiness probe: the store answers and the audit log
// accepts entries, and the server is not shutting down.
func serveReady(h *handler, ctx context.Context, _ *call) (any, error) {
	if h.draining.Load() {
		return nil, unavailable{errors.New("shutting down")}
	}
	if err := h.svc.Ready(ctx); err != nil {
		return nil, unavailable{fmt.Errorf("%w: %w", errNotReady, err)}
	}
	return api.HealthResponse{Status: "ready"}, nil
}

package server

import (
	"context"
	"fmt"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// serveRotate rotates one secret. A rotation that failed and was rolled
// back (or could not be) is a 200 whose Result says so: the state is the
// answer, as the CLI reports it; any other failure is an error.
func serveRotate(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.RotateRequest
	if err := decode(c, &req, true); err != nil {
		return nil, err
	}
	switch req.Trigger {
	case "":
		req.Trigger = "manual"
	case "manual", "due":
	default:
		return nil, fmt.Errorf("%w: trigger must be manual or due", secret.ErrInvalidArgument)
	}
	res, err := h.svc.Rotate(ctx, c.tail, req.Trigger)
	if err != nil && res.State != secret.RotationRolledBack && res.State != secret.RotationFailed {
		return nil, err
	}
	return res, nil
}

func serveRotateDue(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.RotateDueRequest
	if err := decode(c, &req, true); err != nil {
		return nil, err
	}
	if err := secret.ValidatePrefix(req.Prefix); err != nil {
		return nil, err
	}
	if req.Canary < 0 || req.MaxFailures < 0 || req.Workers < 0 || req.Workers > api.MaxRotateWorkers {
		return nil, fmt.Errorf("%w: canary and max_failures must not be negative, workers between 0 and %d", secret.ErrInvalidArgument, api.MaxRotateWorkers)
	}
	rep, err := h.svc.RotateDue(ctx, rotation.DueOptions{Prefix: req.Prefix, Canary: req.Canary, MaxFailures: req.MaxFailures, Workers: req.Workers})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func serveRotationStatus(h *handler, ctx context.Context, c *call) (any, error) {
	prefix := c.r.URL.Query().Get(api.QueryPrefix)
	if err := secret.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	entries, err := h.svc.RotationStatus(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []rotation.Entry{}
	}
	return entries, nil
}

func serveConnectionList(h *handler, ctx context.Context, _ *call) (any, error) {
	all, err := h.svc.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	return api.ConnectionListResponse{Connections: all}, nil
}

func serveConnectionPut(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.ConnectionRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	return h.svc.PutConnection(ctx, secret.Connection{Name: c.tail, Connector: req.Connector, Config: req.Config, AllowedPaths: req.AllowedPaths, AllowedRoles: req.AllowedRoles, AllowedNames: req.AllowedNames})
}

func serveConnectionGet(h *handler, ctx context.Context, c *call) (any, error) {
	return h.svc.GetConnection(ctx, c.tail)
}

func serveConnectionDelete(h *handler, ctx context.Context, c *call) (any, error) {
	return nil, h.svc.DeleteConnection(ctx, c.tail)
}

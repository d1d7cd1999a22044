package server

import (
	"context"
	"fmt"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// engine is the rotation engine for one request. It works through the
// server's Service with the request's context, which carries the caller's
// subject (core.WithSubject): every step of a rotation — describe, read,
// put, stage, metadata, destroy — is authorized by the policy and audited
// as the caller, exactly as if the caller ran the rotation locally. Its
// connectors come from the Service (core.Local), which authorizes the
// caller to rotate before binding a secret to its operator-defined
// connection, whose credentials the caller never sees or chooses.
func (h *handler) engine() (*rotation.Engine, error) {
	src, ok := h.svc.(rotation.ConnectorSource)
	if !ok {
		return nil, fmt.Errorf("%w: this server cannot rotate", secret.ErrPrecondition)
	}
	e := rotation.NewEngine(h.svc, src)
	e.Metrics = h.metrics
	return e, nil
}

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
	e, err := h.engine()
	if err != nil {
		return nil, err
	}
	res, err := e.Rotate(ctx, c.tail, req.Trigger)
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
	e, err := h.engine()
	if err != nil {
		return nil, err
	}
	rep, err := e.RotateDue(ctx, rotation.DueOptions{Prefix: req.Prefix, Canary: req.Canary, MaxFailures: req.MaxFailures, Workers: req.Workers})
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
	e, err := h.engine()
	if err != nil {
		return nil, err
	}
	entries, err := e.Entries(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []rotation.Entry{}
	}
	return entries, nil
}

// connections is the Service's connection administration; nil when it has
// none (then the routes answer a precondition error).
func (h *handler) connections() (passman.Connections, error) {
	c, ok := h.svc.(passman.Connections)
	if !ok {
		return nil, fmt.Errorf("%w: this server does not administer connections", secret.ErrPrecondition)
	}
	return c, nil
}

func serveConnectionList(h *handler, ctx context.Context, _ *call) (any, error) {
	cs, err := h.connections()
	if err != nil {
		return nil, err
	}
	all, err := cs.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	return api.ConnectionListResponse{Connections: all}, nil
}

func serveConnectionPut(h *handler, ctx context.Context, c *call) (any, error) {
	cs, err := h.connections()
	if err != nil {
		return nil, err
	}
	var req api.ConnectionRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	return cs.PutConnection(ctx, secret.Connection{Name: c.tail, Connector: req.Connector, Config: req.Config, AllowedPaths: req.AllowedPaths, AllowedRoles: req.AllowedRoles})
}

func serveConnectionGet(h *handler, ctx context.Context, c *call) (any, error) {
	cs, err := h.connections()
	if err != nil {
		return nil, err
	}
	return cs.GetConnection(ctx, c.tail)
}

func serveConnectionDelete(h *handler, ctx context.Context, c *call) (any, error) {
	cs, err := h.connections()
	if err != nil {
		return nil, err
	}
	return nil, cs.DeleteConnection(ctx, c.tail)
}

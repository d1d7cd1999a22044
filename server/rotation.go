package server

import (
	"context"
	"fmt"
	"os"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// engine is the rotation engine for one request. It works through the
// server's Service with the request's context, which carries the caller's
// subject (core.WithSubject): every step of a rotation — describe, read,
// put, stage, metadata, destroy — is authorized by the policy and audited
// as the caller, exactly as if the caller ran the rotation locally.
//
// Connector credentials named env:NAME resolve in the server process's
// environment (not the client's): the server's operator provides them.
// Those named secret:PATH are reads of the store, authorized as the caller.
func (h *handler) engine() *rotation.Engine {
	e := rotation.NewEngine(h.svc, os.Getenv)
	e.Metrics = h.metrics
	return e
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
	res, err := h.engine().Rotate(ctx, c.tail, req.Trigger)
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
	rep, err := h.engine().RotateDue(ctx, rotation.DueOptions{Prefix: req.Prefix, Canary: req.Canary, MaxFailures: req.MaxFailures, Workers: req.Workers})
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
	entries, err := h.engine().Entries(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []rotation.Entry{}
	}
	return entries, nil
}

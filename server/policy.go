package server

import (
	"context"
	"fmt"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
)

// servePolicyEval evaluates a decision of the server's policies. The input
// is handed to the Service as it came, never logged.
func servePolicyEval(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.PolicyEvalRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	switch {
	case len(req.Input) == 0:
		return nil, fmt.Errorf("%w: request body: input is required", secret.ErrInvalidArgument)
	case len(req.Input) > api.MaxPolicyInput:
		return nil, fmt.Errorf("%w: input exceeds %d bytes", secret.ErrTooLarge, api.MaxPolicyInput)
	}
	return h.svc.EvalPolicy(ctx, req.Decision, req.Input, req.Explain)
}

func servePolicyList(h *handler, ctx context.Context, _ *call) (any, error) {
	mods, err := h.svc.ListPolicies(ctx)
	if err != nil {
		return nil, err
	}
	if mods == nil {
		mods = []secret.PolicyModule{}
	}
	return api.PolicyListResponse{Policies: mods}, nil
}

// servePolicyPut stores a module; the source is neither logged nor
// audited, and a refusal's message (the compiler's, quoting lines of it)
// goes to the administrator who sent it.
func servePolicyPut(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.PolicyPutRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	return h.svc.PutPolicy(ctx, c.tail, req.Source)
}

func servePolicyGet(h *handler, ctx context.Context, c *call) (any, error) {
	return h.svc.GetPolicy(ctx, c.tail)
}

func servePolicyDelete(h *handler, ctx context.Context, c *call) (any, error) {
	return nil, h.svc.DeletePolicy(ctx, c.tail)
}

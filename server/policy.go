package server

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// policyEvaluator is a Service that evaluates its own policies (core.Local,
// which authorizes it as an admin action and audits it).
type policyEvaluator interface {
	EvalPolicy(ctx context.Context, decision string, input json.RawMessage, explain bool) (policy.EvalResult, error)
}

// servePolicyEval evaluates a decision of the server's policies. The input
// is handed to the Service as it came, never logged.
func servePolicyEval(h *handler, ctx context.Context, c *call) (any, error) {
	x, ok := h.svc.(policyEvaluator)
	if !ok {
		return nil, fmt.Errorf("%w: this server cannot evaluate its policies", secret.ErrPrecondition)
	}
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
	return x.EvalPolicy(ctx, req.Decision, req.Input, req.Explain)
}

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

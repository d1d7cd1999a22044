package server

import (
	"context"
	"fmt"

	"github.com/passman-dev/passman/api"
	"github.com/passman-dev/passman/secret"
)

// serveRespond responds to leaks with the server's respond policy and
// connectors, through the rotation runner: every describe,
// read, rotation step and revocation is authorized and audited as the
// caller. The request is refused whole, before anything is done, if it
// holds too many leaks or an invalid one.
func serveRespond(h *handler, ctx context.Context, c *call) (any, error) {
	var req api.RespondRequest
	if err := decode(c, &req, false); err != nil {
		return nil, err
	}
	switch n := len(req.Leaks); {
	case n == 0:
		return nil, fmt.Errorf("%w: request body: no leaks", secret.ErrInvalidArgument)
	case n > api.MaxRespondLeaks:
		return nil, fmt.Errorf("%w: %d leaks, at most %d per request", secret.ErrInvalidArgument, n, api.MaxRespondLeaks)
	}
	for i, l := range req.Leaks {
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("leaks[%d]: %w", i, err)
		}
	}
	results, err := h.svc.RespondToLeaks(ctx, req.Leaks)
	out := api.RespondResponse{Results: results}
	if err != nil {
		out.Error = &api.ErrorBody{Class: classOf(err), Message: err.Error()}
	}
	return out, nil
}

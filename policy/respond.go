package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/passman-dev/passman/secret"
)

// Respond decides how to respond to a leaked secret version (package
// passman.respond). The actions are validated, one entry per action in
// RespondActions order; an action outside RespondActions is an error
// wrapping ErrInvalidPolicy. An invalid input returns an error wrapping
// secret.ErrInvalidArgument.
func (e *Engine) Respond(ctx context.Context, in RespondInput) (Response, error) {
	return e.set.Load().respond(ctx, in)
}

func (set *policySet) respond(ctx context.Context, in RespondInput, opts ...rego.EvalOption) (Response, error) {
	if err := in.validate(); err != nil {
		return Response{}, err
	}
	if in.Finding == nil {
		in.Finding = map[string]any{}
	}
	b, err := eval(ctx, set.respondQ, DecisionRespond, in, opts...)
	if err != nil {
		return Response{}, err
	}
	objs, err := objectSet(b, DecisionRespond, "actions")
	if err != nil {
		return Response{}, err
	}
	reasons := map[string][]string{}
	for _, o := range objs {
		action, err := field(o, "action", true)
		if err != nil {
			return Response{}, fmt.Errorf("respond action: %w", err)
		}
		if !slices.Contains(RespondActions, action) {
			return Response{}, fmt.Errorf("%w: respond action %q is unknown (want one of %v)", ErrInvalidPolicy, action, RespondActions)
		}
		reason, err := field(o, "reason", true)
		if err != nil {
			return Response{}, fmt.Errorf("respond action %s: %w", action, err)
		}
		reasons[action] = append(reasons[action], reason)
	}
	r := Response{Actions: []RespondAction{}, Revision: set.revision}
	for _, a := range RespondActions {
		if rs := reasons[a]; len(rs) > 0 {
			slices.Sort(rs)
			r.Actions = append(r.Actions, RespondAction{Action: a, Reason: strings.Join(slices.Compact(rs), "; ")})
		}
	}
	return r, nil
}

// validate checks the leaked version's identity, stages and state.
func (in RespondInput) validate() error {
	s := in.Secret
	if err := secret.ValidatePath(s.Path); err != nil {
		return fmt.Errorf("respond secret: %w", err)
	}
	if s.Version < 1 {
		return fmt.Errorf("%w: respond secret %s: version %d (want 1 or more)", secret.ErrInvalidArgument, s.Path, s.Version)
	}
	for _, st := range s.Stages {
		if _, err := secret.ParseStage(st); err != nil {
			return fmt.Errorf("respond secret %s: %w", s.Path, err)
		}
	}
	// Scanners such as gitleaks put the matched text in these fields even
	// when redacting elsewhere; policy input must never carry it.
	for k := range in.Finding {
		if lk := strings.ToLower(k); lk == "secret" || lk == "match" {
			return fmt.Errorf("%w: respond finding has a %q field: pass the finding without the matched text", secret.ErrInvalidArgument, k)
		}
	}
	switch secret.VersionState(s.State) {
	case secret.StateActive, secret.StateDeleted, secret.StateDestroyed:
	default:
		return fmt.Errorf("%w: respond secret %s: state %q (want active, deleted or destroyed)", secret.ErrInvalidArgument, s.Path, s.State)
	}
	return nil
}

package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// ActionPolicyEval is the audit action of EvalPolicy.
const ActionPolicyEval = "policy.eval"

// policyEngine is an Authorizer that also evaluates passman's other
// decisions: *policy.Engine, which Open builds unless Options.Authorizer
// names another.
type policyEngine interface {
	Eval(ctx context.Context, decision string, input any, explain bool) (policy.EvalResult, error)
	Respond(ctx context.Context, in policy.RespondInput) (policy.Response, error)
}

// errNoPolicyEngine answers for a store whose authorizer evaluates nothing
// but authorization.
var errNoPolicyEngine = fmt.Errorf("%w: this store's authorizer is not a policy engine", secret.ErrPrecondition)

// EvalPolicy evaluates one decision ("authz", "lint" or "respond") of this
// store's policies on input, a JSON document of the decision's input
// schema, as `passman policy eval` does with local policy files; explain
// adds OPA's trace. It is how a server's operator sees why the server
// decided as it did, so it shows what the policies say to anyone: an
// admin action, authorized and audited. The entry names the decision
// only: the input may hold anything, so nothing of it is recorded.
func (l *Local) EvalPolicy(ctx context.Context, decision string, input json.RawMessage, explain bool) (policy.EvalResult, error) {
	o := op{action: ActionPolicyEval, perm: policy.ActionAdmin}
	if !slices.Contains(policy.Decisions, decision) {
		return policy.EvalResult{}, l.deny(ctx, o, nil, fmt.Errorf("%w: unknown decision (want one of %v)", secret.ErrInvalidArgument, policy.Decisions))
	}
	o.details = map[string]string{"decision": decision}
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return policy.EvalResult{}, err
	}
	var res policy.EvalResult
	eng, ok := l.authz.(policyEngine)
	if ok {
		res, err = eng.Eval(ctx, decision, input, explain)
	} else {
		err = errNoPolicyEngine
	}
	e := audit.Entry{Action: ActionPolicyEval, Details: o.details, Decision: dec}
	if err := l.read(ctx, e, err); err != nil {
		return policy.EvalResult{}, err
	}
	return res, nil
}

// decideLeakResponse asks this store's respond policy what to do about a
// leaked version (a rotation.Decider). It is neither authorized nor
// audited itself: a response acts only through Service calls (describe,
// read, rotate, revoke), which are, as the caller, and a rotation's
// trigger records the policy's reason.
func (l *Local) decideLeakResponse(ctx context.Context, in policy.RespondInput) (policy.Response, error) {
	eng, ok := l.authz.(policyEngine)
	if !ok {
		return policy.Response{}, errNoPolicyEngine
	}
	return eng.Respond(ctx, in)
}

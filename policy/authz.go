package policy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/passman-dev/passman/secret"
)

// Authorize decides whether in.Subject may perform in.Action on in.Path.
// The result is allow && no deny; see Decision for the reasons. An invalid
// input returns an error wrapping secret.ErrInvalidArgument. Evaluation
// errors also return a denying Decision, so a caller that only looks at
// Allow still fails closed.
func (e *Engine) Authorize(ctx context.Context, in AuthzInput) (Decision, error) {
	set := e.set.Load()
	return set.authorize(ctx, in)
}

func (set *policySet) authorize(ctx context.Context, in AuthzInput, opts ...rego.EvalOption) (Decision, error) {
	if err := in.validate(); err != nil {
		return Decision{Reasons: []string{err.Error()}, Revision: set.revision}, err
	}
	if in.Time.IsZero() {
		in.Time = time.Now().UTC()
	}
	var key string
	if set.cache != nil && len(opts) == 0 {
		if k, ok := cacheKey(in); ok {
			if d, hit := set.cache.get(k); hit {
				return d, nil
			}
			key = k
		}
	}
	fail := func(err error) (Decision, error) {
		return Decision{Reasons: []string{"policy evaluation failed: " + err.Error()}, Revision: set.revision}, err
	}
	doc, err := authzValue(in)
	if err != nil {
		return Decision{Reasons: []string{err.Error()}, Revision: set.revision}, err
	}
	b, err := eval(ctx, set.authzQ, DecisionAuthz, doc, opts...)
	if err != nil {
		return fail(err)
	}
	allow, ok := b["allow"].(bool)
	if !ok {
		return fail(fmt.Errorf("%w: data.passman.authz.allow must be a boolean, got %T %v", ErrInvalidPolicy, b["allow"], b["allow"]))
	}
	deny, err := stringSet(b, DecisionAuthz, "deny")
	if err != nil {
		return fail(err)
	}
	reasons, err := stringSet(b, DecisionAuthz, "reasons")
	if err != nil {
		return fail(err)
	}
	d := Decision{Allow: allow && len(deny) == 0, Reasons: reasons, Revision: set.revision}
	switch {
	case len(deny) > 0:
		d.Reasons = deny
	case !d.Allow && len(reasons) == 0:
		d.Reasons = []string{defaultDenyReason(in)}
	}
	if !d.Allow && set.broken != "" {
		d.Reasons = append(d.Reasons, set.broken)
	}
	slices.Sort(d.Reasons)
	if key != "" {
		set.cache.put(key, d)
	}
	return d, nil
}

// defaultDenyReason explains a deny that no rule spoke to.
func defaultDenyReason(in AuthzInput) string {
	p := in.Path
	if p == "" {
		p = "(all paths)"
	}
	return fmt.Sprintf("no policy allows %s on %s for %s %s", in.Action, p, in.Subject.Kind, in.Subject.ID)
}

// validate checks what every policy relies on: a known action and kind,
// and a subject with an identity.
func (in AuthzInput) validate() error {
	if !slices.Contains(AuthzActions, in.Action) {
		return fmt.Errorf("%w: unknown action %q (want one of %v)", secret.ErrInvalidArgument, in.Action, AuthzActions)
	}
	if !slices.Contains(SubjectKinds, in.Subject.Kind) {
		return fmt.Errorf("%w: unknown subject kind %q (want one of %v)", secret.ErrInvalidArgument, in.Subject.Kind, SubjectKinds)
	}
	if in.Subject.ID == "" {
		return fmt.Errorf("%w: subject has no id", secret.ErrInvalidArgument)
	}
	if in.Path == "" && in.Action != ActionList && in.Action != ActionAdmin {
		return fmt.Errorf("%w: action %s needs a path", secret.ErrInvalidArgument, in.Action)
	}
	return nil
}

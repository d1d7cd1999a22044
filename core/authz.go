package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// Authorizer decides whether a subject may perform an action. The policy
// engine implements it; every Service call asks it first, in local mode too.
// It must not modify its input: in.Secret may be a record the store shares
// between concurrent reads.
type Authorizer interface {
	Authorize(ctx context.Context, in policy.AuthzInput) (policy.Decision, error)
}

// op is one Service call as authorization and audit see it.
type op struct {
	action string // audit action, e.g. secret.get
	perm   string // authz action: one of policy.AuthzActions
	path   string // secret path, or the prefix of a listing
	// secret asks for the secret's metadata in the policy input, so a
	// policy can decide by owner or tags.
	secret bool
	// authorizeFirst has a mutation of a secret authorized before its
	// transaction instead of inside it (see mutate).
	authorizeFirst bool
	// request is the change a write asks for, shown to the policy.
	request *policy.Request
	// details are added to the audit entry's Details.
	details map[string]string
}

type subjectKey struct{}

// WithSubject returns a context whose calls act as s (the server sets the
// authenticated caller here). Without it, Local acts as Options.Actor, a
// local OS user.
func WithSubject(ctx context.Context, s policy.Subject) context.Context {
	return context.WithValue(ctx, subjectKey{}, s)
}

func (l *Local) subject(ctx context.Context) policy.Subject {
	if s, ok := ctx.Value(subjectKey{}).(policy.Subject); ok {
		return s
	}
	return policy.Subject{ID: l.opts.Actor, Kind: "user"}
}

// authorize asks the policy about o. A denial is audited here (outcome
// denied, with the decision's reasons and the policy revision) and returned
// as an error wrapping secret.ErrPermissionDenied. If the policy cannot
// decide, the operation is refused: authorization fails closed too.
func (l *Local) authorize(ctx context.Context, o op) (*audit.Decision, error) {
	if err := validateOp(o); err != nil {
		return nil, l.deny(ctx, o, nil, err)
	}
	l.refreshPolicies(ctx)
	var md *secret.Metadata
	if o.secret {
		if m, err := l.st.Metadata(ctx, o.path); err == nil {
			md = &m
		} else if !errors.Is(err, secret.ErrNotFound) {
			return nil, l.deny(ctx, o, nil, fmt.Errorf("authorize %s: %w", o.action, err))
		}
	}
	dec, err := l.decide(ctx, o, md)
	if err != nil {
		return dec, l.deny(ctx, o, dec, err)
	}
	return dec, nil
}

// validateOp checks o's path before anything else: a malformed path is the
// caller's mistake, not the policy's business, and is never handed to
// policy (it may be a pasted value).
func validateOp(o op) error {
	switch {
	case o.secret:
		return secret.ValidatePath(o.path)
	case o.perm == policy.ActionList:
		return secret.ValidatePrefix(o.path)
	}
	return nil
}

// decide asks the policy about o, with md (nil for a secret that does not
// exist) as input.secret. It audits nothing: an error is a denial, or a
// policy that could not decide, for the caller to pass to deny.
func (l *Local) decide(ctx context.Context, o op, md *secret.Metadata) (*audit.Decision, error) {
	in := policy.AuthzInput{
		Subject: l.subject(ctx),
		Action:  o.perm,
		Path:    o.path,
		Store:   policy.StoreInfo{CreatedBy: l.createdBy},
		Time:    l.opts.now().UTC(),
		Request: o.request,
		Secret:  md,
	}
	d, err := l.authz.Authorize(ctx, in)
	dec := &audit.Decision{Allow: d.Allow && err == nil, Reasons: d.Reasons, Revision: d.Revision}
	if err != nil {
		return dec, fmt.Errorf("%w: policy could not decide: %v", secret.ErrPermissionDenied, err)
	}
	if !d.Allow {
		return dec, fmt.Errorf("%w: %s", secret.ErrPermissionDenied, strings.Join(d.Reasons, "; "))
	}
	return dec, nil
}

// deny audits a refused operation (denied by policy, or failed before the
// policy was asked) and returns its error.
func (l *Local) deny(ctx context.Context, o op, dec *audit.Decision, err error) error {
	if aerr := l.record(ctx, denialEntry(o, dec), err); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// denialEntry is the audit entry of o refused by dec (nil: refused before
// the policy was asked). What was attempted (a token's identity, a
// decision's name) matters most on a refusal; details hold no values.
func denialEntry(o op, dec *audit.Decision) audit.Entry {
	e := audit.Entry{Action: o.action, Decision: dec, Details: maps.Clone(o.details)}
	if o.perm == policy.ActionList {
		if secret.ValidatePrefix(o.path) == nil {
			if e.Details == nil {
				e.Details = map[string]string{}
			}
			e.Details["prefix"] = o.path
		}
	} else {
		e.Path = auditPath(o.path)
	}
	return e
}

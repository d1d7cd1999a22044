package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// Authorizer decides whether a subject may perform an action. The policy
// engine implements it; every Service call asks it first, in local mode too.
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
	// A malformed path is the caller's mistake, not the policy's business:
	// fail it as such (and never hand it, possibly a pasted value, to policy).
	var perr error
	switch {
	case o.secret:
		perr = secret.ValidatePath(o.path)
	case o.perm == policy.ActionList:
		perr = secret.ValidatePrefix(o.path)
	}
	if perr != nil {
		return nil, l.deny(ctx, o, nil, perr)
	}
	in := policy.AuthzInput{
		Subject: l.subject(ctx),
		Action:  o.perm,
		Path:    o.path,
		Store:   policy.StoreInfo{CreatedBy: l.createdBy},
		Time:    l.opts.now().UTC(),
		Request: o.request,
	}
	if o.secret {
		if md, err := l.st.Metadata(ctx, o.path); err == nil {
			in.Secret = &md
		} else if !errors.Is(err, secret.ErrNotFound) {
			return nil, l.deny(ctx, o, nil, fmt.Errorf("authorize %s: %w", o.action, err))
		}
	}
	d, err := l.authz.Authorize(ctx, in)
	dec := &audit.Decision{Allow: d.Allow && err == nil, Reasons: d.Reasons, Revision: d.Revision}
	if err != nil {
		return nil, l.deny(ctx, o, dec, fmt.Errorf("%w: policy could not decide: %v", secret.ErrPermissionDenied, err))
	}
	if !d.Allow {
		return dec, l.deny(ctx, o, dec, fmt.Errorf("%w: %s", secret.ErrPermissionDenied, strings.Join(d.Reasons, "; ")))
	}
	return dec, nil
}

// deny audits a refused operation (denied by policy, or failed before the
// policy was asked) and returns its error.
func (l *Local) deny(ctx context.Context, o op, dec *audit.Decision, err error) error {
	e := audit.Entry{Action: o.action, Decision: dec}
	if o.perm == policy.ActionList {
		if secret.ValidatePrefix(o.path) == nil {
			e.Details = map[string]string{"prefix": o.path}
		}
	} else {
		e.Path = auditPath(o.path)
	}
	if aerr := l.record(ctx, e, err); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// Package rotation rotates managed secrets with a staged protocol modelled
// on AWS Secrets Manager's: create a pending version, set it on the target
// system, test it there, finish by promoting it to current (the old current
// becomes previous), and, after a grace period, revoke the previous value.
//
// Connectors apply values to target systems (PostgreSQL roles, GitHub
// Actions secrets, webhooks, commands); the Runner drives the steps, records
// each one in the secret's metadata through the audited Service, rolls back
// on failure, and resumes or rolls back a rotation a crash interrupted.
package rotation

import (
	"context"
	"fmt"
	"sort"

	"github.com/passman-dev/passman/secret"
)

// Connector applies a secret's values to one target system. Every method
// must be idempotent: after a crash the engine repeats the step it was in.
// Errors must never contain a value.
type Connector interface {
	// Set makes t.Value the credential the target accepts.
	Set(ctx context.Context, t Target) error
	// Test proves the target accepts t.Value (for example by logging in
	// with it).
	Test(ctx context.Context, t Target) error
	// Revoke makes the target stop accepting t.Value, the previous value,
	// once the grace period is over. Connectors whose Set already
	// invalidated it return nil.
	Revoke(ctx context.Context, t Target) error
}

// Composer is implemented by connectors whose stored value is more than
// the generated password: the PostgreSQL two-user strategy stores which
// role the password belongs to, and alternates roles. Compose builds the
// pending value from the current one (zero for a first rotation) and the
// generated password.
type Composer interface {
	Compose(current, generated secret.Value) (secret.Value, error)
}

// Target is what a connector step acts on.
type Target struct {
	Path    string
	Version int
	// Value is the value to set or test (the pending one), to restore
	// (the current one, on rollback) or to revoke (the previous one).
	Value secret.Value
	// Current is the value that was current when the rotation began (zero
	// on a first rotation); Set may need it to log in.
	Current secret.Value
}

// Resolver resolves a credential reference in a connection's config to a
// value: "env:NAME" reads an environment variable of the passman process,
// "secret:PATH" another managed secret's current value. References are
// resolved with the connection's authority, which only an administrator
// grants (core.Local's resolver audits each one), never with the
// authority of a secret's writer: a spec cannot hold one.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (secret.Value, error)
}

// Factory builds a connector from its config (a connection's, with the
// params of the secret's spec), validating
// it up front: an unknown key, a missing required key or a malformed value
// is an error wrapping secret.ErrInvalidArgument that names the key.
type Factory func(cfg map[string]string, r Resolver) (Connector, error)

// Registry maps connector names to their kinds.
type Registry map[string]Kind

// Names lists the registered connectors, sorted.
func (reg Registry) Names() []string {
	names := make([]string, 0, len(reg))
	for n := range reg {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckKeys validates a config's keys against the required and optional
// ones, for factories.
func CheckKeys(cfg map[string]string, required, optional []string) error {
	known := map[string]bool{}
	for _, k := range append(append([]string(nil), required...), optional...) {
		known[k] = true
	}
	for k := range cfg {
		if !known[k] {
			return fmt.Errorf("%w: unknown config key %q (known: %v)", secret.ErrInvalidArgument, k, append(append([]string(nil), required...), optional...))
		}
	}
	for _, k := range required {
		if cfg[k] == "" {
			return fmt.Errorf("%w: config key %q is required", secret.ErrInvalidArgument, k)
		}
	}
	return nil
}

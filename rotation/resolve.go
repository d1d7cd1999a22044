package rotation

import (
	"context"
	"fmt"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// StoreResolver resolves connector config references: "env:NAME" from the
// environment, "secret:PATH" from another managed secret's current value
// (a read the store authorizes and audits like any other).
type StoreResolver struct {
	Store interface {
		Get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error)
	}
	// Getenv reads the environment; nil reads nothing.
	Getenv func(string) string
}

// Resolve implements Resolver. Errors name the reference, never a value.
func (r StoreResolver) Resolve(ctx context.Context, ref string) (secret.Value, error) {
	kind, name, ok := strings.Cut(ref, ":")
	switch {
	case !ok || name == "":
		return secret.Value{}, fmt.Errorf("%w: reference %q: want env:NAME or secret:PATH", secret.ErrInvalidArgument, ref)
	case kind == "env":
		var v string
		if r.Getenv != nil {
			v = r.Getenv(name)
		}
		if v == "" {
			return secret.Value{}, fmt.Errorf("%w: environment variable %s is not set", secret.ErrInvalidArgument, name)
		}
		return secret.NewValue([]byte(v)), nil
	case kind == "secret":
		if r.Store == nil {
			return secret.Value{}, fmt.Errorf("%w: reference %s: no store", secret.ErrInvalidArgument, ref)
		}
		v, err := r.Store.Get(ctx, name, secret.Selector{})
		if err != nil {
			return secret.Value{}, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return v.Value, nil
	default:
		return secret.Value{}, fmt.Errorf("%w: reference %q: want env:NAME or secret:PATH", secret.ErrInvalidArgument, ref)
	}
}

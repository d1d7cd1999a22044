package generator

import (
	"context"
	"fmt"

	"github.com/passman-dev/passman/secret"
)

// Value generates a value to spec, the generator's defaults filled in
// (Spec.Normalize). It is how every front end and the rotation runner make
// a value passman chooses.
func Value(spec Spec) (secret.Value, error) {
	spec, err := spec.Normalize()
	if err != nil {
		return secret.Value{}, err
	}
	b, err := Generate(spec)
	if err != nil {
		return secret.Value{}, fmt.Errorf("generate: %w", err)
	}
	return secret.NewValue(b), nil
}

// Put writes a new version of path whose value is generated to spec, with
// opts (CAS 0: only if path does not exist yet), through svc (a
// passman.Service). The value never leaves this function but to svc, and
// is wiped once written: the caller gets the version, never the value.
func Put(ctx context.Context, svc interface {
	Put(ctx context.Context, path string, value secret.Value, opts secret.PutOptions) (secret.VersionInfo, error)
}, path string, spec Spec, opts secret.PutOptions) (secret.VersionInfo, error) {
	v, err := Value(spec)
	if err != nil {
		return secret.VersionInfo{}, err
	}
	defer v.Wipe()
	return svc.Put(ctx, path, v, opts)
}

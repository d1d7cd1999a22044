package provider

import (
	"context"

	"github.com/passman-dev/passman/secret"
)

// driftDiffers reports whether value_wo should be written because it
// differs from passman's current value, as on_drift decides. passman
// compares (the value goes to it, a yes or no comes back, nothing of it is
// kept). Under "auto" a secret passman has rotated is left alone, so
// configuration that seeded it never fights the rotation; that is asked of
// passman, not of the state, which a plan with -refresh=false has stale.
func driftDiffers(ctx context.Context, b Backend, cfg, state secretModel) (bool, error) {
	onDrift := cfg.OnDrift.ValueString()
	if onDrift == driftIgnore {
		return false, nil
	}
	p := state.Path.ValueString()
	v := secret.NewValue([]byte(cfg.ValueWO.ValueString()))
	defer v.Wipe()
	equal, err := b.CompareValue(ctx, p, v.Reveal())
	switch {
	case notFound(err):
		// No current value (a stub, or every version deleted): the
		// configured one is written.
		return true, nil
	case err != nil:
		return false, err
	case equal || onDrift == driftUpdate:
		return !equal, nil
	}
	s, err := b.Describe(ctx, p)
	if err != nil {
		return false, err
	}
	rotated := s.Metadata.RotationStatus != nil && !s.Metadata.RotationStatus.LastSuccess.IsZero()
	return !rotated, nil
}

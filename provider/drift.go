package provider

import (
	"context"

	"github.com/passman-dev/passman/secret"
)

// driftDiffers reports whether value_wo should be written because it
// differs from passman's current value, as on_drift decides: passman
// compares (the value goes to it, a yes/no comes back, nothing of it is
// kept); under "auto" a secret passman has rotated is not compared, so
// configuration that seeded it never fights the rotation.
func driftDiffers(ctx context.Context, b Backend, cfg, state secretModel) (bool, error) {
	switch cfg.OnDrift.ValueString() {
	case driftIgnore:
		return false, nil
	case "", driftAuto:
		if knownString(state.RotatedAt) {
			return false, nil
		}
	}
	v := secret.NewValue([]byte(cfg.ValueWO.ValueString()))
	defer v.Wipe()
	equal, err := b.CompareValue(ctx, state.Path.ValueString(), v.Reveal())
	if notFound(err) {
		// No current value (a stub, or every version deleted): the
		// configured one is written.
		return true, nil
	}
	return !equal, err
}

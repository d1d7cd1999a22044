package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/secret"
)

// tokenResource is a long-lived token whose value goes into a passman
// secret, never into Terraform state: the one place a token can be read
// back is passman, where reading it is authorized and audited. For a
// token that lives only during a run, see the ephemeral passman_token.
type tokenResource struct{ c *conn }

func newTokenResource() resource.Resource { return &tokenResource{} }

var _ resource.ResourceWithConfigure = (*tokenResource)(nil)

type tokenModel struct {
	ID         types.String `tfsdk:"id"`
	Identity   types.String `tfsdk:"identity"`
	Claims     types.Map    `tfsdk:"claims"`
	TTL        types.String `tfsdk:"ttl"`
	SecretPath types.String `tfsdk:"secret_path"`
	Accessor   types.String `tfsdk:"accessor"`
	CreatedAt  types.String `tfsdk:"created_at"`
	ExpiresAt  types.String `tfsdk:"expires_at"`
}

func (r *tokenResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_token"
}

func (r *tokenResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A passman bearer token for a CI identity or an application. The token is shown once, when it is " +
			"created; this resource writes it as a new version of the secret at `secret_path` and never puts it in Terraform " +
			"state, so state holds only the token's accessor (useless for authenticating). Read it where it is needed with the " +
			"ephemeral `passman_secret`. A token that expired or was revoked outside Terraform is planned for creation again; " +
			"destroy revokes it. Creating tokens is an admin action. For a token that lives only during a Terraform run, use " +
			"the ephemeral `passman_token`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, MarkdownDescription: "The token's accessor.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"identity": schema.StringAttribute{
				Required: true, PlanModifiers: replace,
				MarkdownDescription: "Who the token authenticates as: the policy input's `subject.id` and the audit log's actor.",
			},
			"claims": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.RequiresReplace()},
				MarkdownDescription: "Claims the policy sees as `subject.claims` (`{ role = \"ci\" }`).",
			},
			"ttl": schema.StringAttribute{
				Optional: true, PlanModifiers: replace, Validators: []validator.String{durationValidator{}},
				MarkdownDescription: "How long the token is valid (`720h`, `30d`); unset means it never expires.",
			},
			"secret_path": schema.StringAttribute{
				Required: true, PlanModifiers: replace, Validators: []validator.String{secretPathValidator{}},
				MarkdownDescription: "Secret the token is written to, as a new version.",
			},
			"accessor": schema.StringAttribute{
				Computed: true, MarkdownDescription: "Names the token in listings and the audit log, and revokes it; useless for authenticating.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"created_at": schema.StringAttribute{
				Computed: true, MarkdownDescription: "When the token was created (RFC 3339).",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"expires_at": schema.StringAttribute{
				Computed: true, MarkdownDescription: "When the token expires (RFC 3339); null if never.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *tokenResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = connFrom(req.ProviderData, &resp.Diagnostics)
}

func tokenRequest(ctx context.Context, identity types.String, claims types.Map, ttl types.String) (secret.TokenRequest, error) {
	var d diagCollector
	req := secret.TokenRequest{Identity: identity.ValueString(), Claims: stringMap(ctx, claims, &d.d)}
	if knownString(ttl) {
		dur, err := secret.ParseDuration(ttl.ValueString())
		if err != nil {
			return req, fmt.Errorf("ttl: %w", err)
		}
		req.TTL = time.Duration(dur)
	}
	return req, d.err()
}

func (r *tokenResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m tokenModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	treq, err := tokenRequest(ctx, m.Identity, m.Claims, m.TTL)
	if err != nil {
		resp.Diagnostics.AddError("Invalid token", err.Error())
		return
	}
	var info secret.TokenInfo
	err = r.c.use(ctx, func(b Backend) error {
		tok, ti, err := b.CreateToken(ctx, treq)
		if err != nil {
			return err
		}
		v := secret.NewValue([]byte(tok))
		defer v.Wipe()
		if _, err := b.Put(ctx, m.SecretPath.ValueString(), v, secret.PutOptions{}); err != nil {
			// A token nobody can read is revoked, not left behind.
			return errors.Join(fmt.Errorf("write the token to %s: %w", m.SecretPath.ValueString(), err), b.RevokeToken(ctx, ti.Accessor))
		}
		info = ti
		return nil
	})
	if err != nil {
		errorDiag(&resp.Diagnostics, "Create token for "+treq.Identity, err)
		return
	}
	m.set(info)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (m *tokenModel) set(info secret.TokenInfo) {
	m.ID = types.StringValue(info.Accessor)
	m.Accessor = types.StringValue(info.Accessor)
	m.CreatedAt = timeString(info.CreatedAt)
	m.ExpiresAt = timeString(info.ExpiresAt)
}

func (r *tokenResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m tokenModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var found *secret.TokenInfo
	err := r.c.use(ctx, func(b Backend) error {
		infos, err := b.ListTokens(ctx)
		for _, ti := range infos {
			if ti.Accessor == m.Accessor.ValueString() {
				found = &ti
			}
		}
		return err
	})
	if err != nil {
		errorDiag(&resp.Diagnostics, "Read token "+m.Accessor.ValueString(), err)
		return
	}
	if found == nil || !found.RevokedAt.IsZero() || found.Expired(time.Now()) {
		resp.State.RemoveResource(ctx)
		return
	}
	m.set(*found)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *tokenResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	// Every argument forces replacement; nothing is updated in place.
	var m tokenModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *tokenResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m tokenModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.c.use(ctx, func(b Backend) error { return b.RevokeToken(ctx, m.Accessor.ValueString()) })
	if err != nil && !notFound(err) {
		errorDiag(&resp.Diagnostics, "Revoke token "+m.Accessor.ValueString(), err)
	}
}

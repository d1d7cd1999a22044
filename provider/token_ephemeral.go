package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/secret"
)

// privateAccessor is the private-data key of an ephemeral token's
// accessor, which Close revokes.
const privateAccessor = "accessor"

// tokenEphemeral is a short-lived token made for one Terraform run and
// revoked when Terraform is done with it.
type tokenEphemeral struct{ c *conn }

func newTokenEphemeral() ephemeral.EphemeralResource { return &tokenEphemeral{} }

var (
	_ ephemeral.EphemeralResourceWithConfigure = (*tokenEphemeral)(nil)
	_ ephemeral.EphemeralResourceWithClose     = (*tokenEphemeral)(nil)
)

type tokenEphemeralModel struct {
	Identity  types.String `tfsdk:"identity"`
	Claims    types.Map    `tfsdk:"claims"`
	TTL       types.String `tfsdk:"ttl"`
	Token     types.String `tfsdk:"token"`
	Accessor  types.String `tfsdk:"accessor"`
	ExpiresAt types.String `tfsdk:"expires_at"`
}

func (e *tokenEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_token"
}

func (e *tokenEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A short-lived passman token made for this Terraform run (for example to configure another " +
			"passman provider block with narrower rights) and revoked when Terraform closes the ephemeral resource. " +
			"Never stored in state or plan. Creating tokens is an admin action.",
		Attributes: map[string]schema.Attribute{
			"identity": schema.StringAttribute{Required: true, MarkdownDescription: "Who the token authenticates as."},
			"claims":   schema.MapAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Claims the policy sees as `subject.claims`."},
			"ttl": schema.StringAttribute{Required: true, Validators: []validator.String{durationValidator{}},
				MarkdownDescription: "How long the token is valid at most (`15m`); it is revoked earlier, when Terraform is done."},
			"token":      schema.StringAttribute{Computed: true, Sensitive: true, MarkdownDescription: "The token."},
			"accessor":   schema.StringAttribute{Computed: true, MarkdownDescription: "The token's accessor (for the audit log)."},
			"expires_at": schema.StringAttribute{Computed: true, MarkdownDescription: "When the token expires (RFC 3339)."},
		},
	}
}

func (e *tokenEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.c = connFrom(req.ProviderData, &resp.Diagnostics)
}

func (e *tokenEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m tokenEphemeralModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	treq, err := tokenRequest(ctx, m.Identity, m.Claims, m.TTL)
	if err != nil {
		resp.Diagnostics.AddError("Invalid token", err.Error())
		return
	}
	var tok string
	var info secret.TokenInfo
	err = e.c.use(ctx, func(b Backend) error {
		var err error
		tok, info, err = b.CreateToken(ctx, treq)
		return err
	})
	if err != nil {
		errorDiag(&resp.Diagnostics, "Create token for "+treq.Identity, err)
		return
	}
	m.Token = types.StringValue(tok)
	m.Accessor = types.StringValue(info.Accessor)
	m.ExpiresAt = timeString(info.ExpiresAt)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateAccessor, []byte(`"`+info.Accessor+`"`))...)
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

func (e *tokenEphemeral) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	raw, diags := req.Private.GetKey(ctx, privateAccessor)
	resp.Diagnostics.Append(diags...)
	if len(raw) < 2 {
		return
	}
	accessor := string(raw[1 : len(raw)-1])
	err := e.c.use(ctx, func(b Backend) error { return b.RevokeToken(ctx, accessor) })
	if err != nil && !notFound(err) {
		errorDiag(&resp.Diagnostics, "Revoke token "+accessor, err)
	}
}

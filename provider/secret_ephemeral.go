package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/secret"
)

// secretEphemeral reads a secret's value for ephemeral contexts: provider
// configuration and write-only arguments. Terraform never stores it.
type secretEphemeral struct{ c *conn }

func newSecretEphemeral() ephemeral.EphemeralResource { return &secretEphemeral{} }

var _ ephemeral.EphemeralResourceWithConfigure = (*secretEphemeral)(nil)

type secretEphemeralModel struct {
	Path    types.String `tfsdk:"path"`
	Version types.Int64  `tfsdk:"version"`
	Stage   types.String `tfsdk:"stage"`
	Value   types.String `tfsdk:"value"`
}

func (e *secretEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_secret"
}

func (e *secretEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A secret's value, for ephemeral contexts only (Terraform 1.10 or later): another provider's " +
			"configuration, or a write-only argument such as a database resource's `password_wo` or a `passman_secret`'s " +
			"`value_wo`. Terraform never writes it to state or plan. Reading it is authorized and audited by passman as a read " +
			"by the provider's credentials. For a secret the same configuration creates, set `path` from the resource's `id` " +
			"(known once the secret exists), so Terraform opens the ephemeral resource after creating the secret.",
		Attributes: map[string]schema.Attribute{
			"path": schema.StringAttribute{Required: true, MarkdownDescription: "Path of the secret.", Validators: []validator.String{secretPathValidator{}}},
			"version": schema.Int64Attribute{Optional: true, Computed: true,
				MarkdownDescription: "Version to read; unset reads the stage (current by default). Set to the version read."},
			"stage": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Stage to read: `current` (default), `previous` or `pending`. Conflicts with `version`.",
				Validators: []validator.String{
					stringvalidator.OneOf(string(secret.StageCurrent), string(secret.StagePrevious), string(secret.StagePending)),
					stringvalidator.ConflictsWith(path.MatchRoot("version")),
				}},
			"value": schema.StringAttribute{Computed: true, Sensitive: true, MarkdownDescription: "The value."},
		},
	}
}

func (e *secretEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.c = connFrom(req.ProviderData, &resp.Diagnostics)
}

func (e *secretEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m secretEphemeralModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	sel := secret.Selector{Version: int(m.Version.ValueInt64()), Stage: secret.Stage(m.Stage.ValueString())}
	var v secret.Versioned
	err := e.c.use(ctx, func(b Backend) error {
		var err error
		v, err = b.Get(ctx, m.Path.ValueString(), sel)
		return err
	})
	if err != nil {
		errorDiag(&resp.Diagnostics, "Read secret "+m.Path.ValueString()+" ("+sel.String()+")", err)
		return
	}
	defer v.Value.Wipe()
	m.Version = types.Int64Value(int64(v.Info.Version))
	m.Value = types.StringValue(string(v.Value.Reveal()))
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/secret"
)

// secretDataSource reads a secret's metadata. Never its value: a data
// source's result is stored in state.
type secretDataSource struct{ c *conn }

func newSecretDataSource() datasource.DataSource { return &secretDataSource{} }

var _ datasource.DataSourceWithConfigure = (*secretDataSource)(nil)

type secretDataModel struct {
	ID                 types.String `tfsdk:"id"`
	Path               types.String `tfsdk:"path"`
	Owner              types.String `tfsdk:"owner"`
	Description        types.String `tfsdk:"description"`
	Tags               types.Map    `tfsdk:"tags"`
	MaxVersions        types.Int64  `tfsdk:"max_versions"`
	Version            types.Int64  `tfsdk:"version"`
	Versions           types.Int64  `tfsdk:"versions"`
	RotationPeriod     types.String `tfsdk:"rotation_period"`
	RotationConnection types.String `tfsdk:"rotation_connection"`
	CreatedAt          types.String `tfsdk:"created_at"`
	UpdatedAt          types.String `tfsdk:"updated_at"`
	RotatedAt          types.String `tfsdk:"rotated_at"`
}

func (d *secretDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_secret"
}

func (d *secretDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A secret's metadata and version numbers. **Never its value**: Terraform stores what a data source " +
			"reads in state, so a value read here would sit there in the clear. To use a value, read it with the ephemeral " +
			"resource `passman_secret` (Terraform 1.10 or later), whose result is never stored.",
		Attributes: map[string]schema.Attribute{
			"id":          computed("The secret's path."),
			"path":        schema.StringAttribute{Required: true, MarkdownDescription: "Path of the secret.", Validators: []validator.String{secretPathValidator{}}},
			"owner":       computed("Team or person who answers for the secret."),
			"description": computed("What the secret is for."),
			"tags":        schema.MapAttribute{ElementType: types.StringType, Computed: true, MarkdownDescription: "Labels of the secret."},
			"max_versions": schema.Int64Attribute{Computed: true,
				MarkdownDescription: "How many versions are kept (0: the default)."},
			"version":             schema.Int64Attribute{Computed: true, MarkdownDescription: "The current version's number (0: none yet)."},
			"versions":            schema.Int64Attribute{Computed: true, MarkdownDescription: "How many versions passman keeps."},
			"rotation_period":     computed("How often the secret is rotated; null if it is not."),
			"rotation_connection": computed("The connection rotations go through; null without a rotation spec."),
			"created_at":          computed("When the secret was created (RFC 3339)."),
			"updated_at":          computed("When its metadata last changed (RFC 3339)."),
			"rotated_at":          computed("When passman last rotated it successfully (RFC 3339)."),
		},
	}
}

func (d *secretDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = connFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *secretDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m secretDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var s secret.Secret
	err := d.c.use(ctx, func(b Backend) error {
		var err error
		s, err = b.Describe(ctx, m.Path.ValueString())
		return err
	})
	if err != nil {
		errorDiag(&resp.Diagnostics, "Read secret "+m.Path.ValueString(), err)
		return
	}
	md := s.Metadata
	m.ID = types.StringValue(s.Path)
	m.Owner, m.Description = optString(md.Owner), optString(md.Description)
	m.Tags = mapValue(md.Tags)
	m.MaxVersions = types.Int64Value(int64(md.MaxVersions))
	m.Version = types.Int64Value(int64(s.CurrentVersion))
	m.Versions = types.Int64Value(int64(len(s.Versions)))
	m.RotationPeriod = types.StringNull()
	if md.RotationPeriod != 0 {
		m.RotationPeriod = types.StringValue(md.RotationPeriod.String())
	}
	m.RotationConnection = types.StringNull()
	if md.Rotation != nil && !md.Rotation.Legacy() {
		m.RotationConnection = optString(md.Rotation.Connection)
	}
	m.CreatedAt, m.UpdatedAt = timeString(md.CreatedAt), timeString(md.UpdatedAt)
	m.RotatedAt = types.StringNull()
	if md.RotationStatus != nil {
		m.RotatedAt = timeString(md.RotationStatus.LastSuccess)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

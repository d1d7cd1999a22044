package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/secret"
)

// secretsDataSource lists the secrets under a prefix (metadata only).
type secretsDataSource struct{ c *conn }

func newSecretsDataSource() datasource.DataSource { return &secretsDataSource{} }

var _ datasource.DataSourceWithConfigure = (*secretsDataSource)(nil)

type secretsDataModel struct {
	ID      types.String `tfsdk:"id"`
	Prefix  types.String `tfsdk:"prefix"`
	Secrets types.List   `tfsdk:"secrets"`
}

var secretEntryType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"path": types.StringType, "version": types.Int64Type, "versions": types.Int64Type,
	"owner": types.StringType, "updated_at": types.StringType,
}}

func (d *secretsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_secrets"
}

func (d *secretsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The secrets under a path prefix that the provider's credentials may list, sorted by path: " +
			"metadata only, never a value (see the data source `passman_secret`).",
		Attributes: map[string]schema.Attribute{
			"id":     schema.StringAttribute{Computed: true, MarkdownDescription: "The prefix."},
			"prefix": schema.StringAttribute{Optional: true, MarkdownDescription: "A plain string prefix of the paths (`prod/` or `prod/db`); unset lists every secret."},
			"secrets": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The secrets, sorted by path.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"path":       schema.StringAttribute{Computed: true, MarkdownDescription: "Path of the secret."},
					"version":    schema.Int64Attribute{Computed: true, MarkdownDescription: "The current version's number."},
					"versions":   schema.Int64Attribute{Computed: true, MarkdownDescription: "How many versions passman keeps."},
					"owner":      schema.StringAttribute{Computed: true, MarkdownDescription: "Owner of the secret."},
					"updated_at": schema.StringAttribute{Computed: true, MarkdownDescription: "When it last changed (RFC 3339)."},
				}},
			},
		},
	}
}

func (d *secretsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = connFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *secretsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m secretsDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var entries []secret.ListEntry
	err := d.c.use(ctx, func(b Backend) error {
		opts := secret.ListOptions{Prefix: m.Prefix.ValueString(), Limit: secret.MaxListLimit}
		for {
			page, err := b.List(ctx, opts)
			if err != nil {
				return err
			}
			entries = append(entries, page.Entries...)
			if page.Next == "" {
				return nil
			}
			opts.After = page.Next
		}
	})
	if err != nil {
		errorDiag(&resp.Diagnostics, "List secrets under "+m.Prefix.ValueString(), err)
		return
	}
	elems := make([]attr.Value, len(entries))
	for i, e := range entries {
		elems[i] = types.ObjectValueMust(secretEntryType.AttrTypes, map[string]attr.Value{
			"path": types.StringValue(e.Path), "version": types.Int64Value(int64(e.CurrentVersion)),
			"versions": types.Int64Value(int64(e.Versions)), "owner": optString(e.Owner), "updated_at": timeString(e.UpdatedAt),
		})
	}
	m.ID = types.StringValue(m.Prefix.ValueString())
	m.Secrets = types.ListValueMust(secretEntryType, elems)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

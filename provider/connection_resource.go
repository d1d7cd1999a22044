package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/passman-dev/passman/secret"
)

type connectionResource struct{ c *conn }

func newConnectionResource() resource.Resource { return &connectionResource{} }

var (
	_ resource.ResourceWithConfigure   = (*connectionResource)(nil)
	_ resource.ResourceWithImportState = (*connectionResource)(nil)
)

type connectionModel struct {
	ID           types.String `tfsdk:"id"`
	Name         types.String `tfsdk:"name"`
	Connector    types.String `tfsdk:"connector"`
	Config       types.Map    `tfsdk:"config"`
	AllowedPaths types.List   `tfsdk:"allowed_paths"`
	AllowedRoles types.List   `tfsdk:"allowed_roles"`
	AllowedNames types.List   `tfsdk:"allowed_names"`
	CreatedAt    types.String `tfsdk:"created_at"`
	UpdatedAt    types.String `tfsdk:"updated_at"`
}

func (r *connectionResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_connection"
}

func (r *connectionResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A rotation connection: an administrator's named way to reach a target system (a connector and its " +
			"configuration) and the secrets allowed to use it. Secrets' `rotation` blocks name it. Credentials in `config` are " +
			"references (`env:NAME`, `secret:PATH`) that passman resolves with the connection's authority, so no credential " +
			"enters Terraform state. Managing connections is an admin action.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The connection's name.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the connection (a-z, then a-z 0-9 _ -). Changing it replaces the connection.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"connector": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The connector: `postgres`, `github`, `webhook`, `exec`.",
			},
			"config": schema.MapAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "The connector's configuration; credentials as `env:NAME` or `secret:PATH` references, never literally.",
			},
			"allowed_paths": schema.ListAttribute{
				ElementType:         types.StringType,
				Required:            true,
				MarkdownDescription: "Secret paths that may rotate through the connection: a path, or a folder prefix ending in `*` (`prod/db/*`).",
			},
			"allowed_roles": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "For postgres: the roles a secret's rotation may name (a role, or a prefix ending in `*`).",
			},
			"allowed_names": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "For github: the Actions secret names a secret's rotation may name (a name, or a prefix ending in `*`).",
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the connection was created (RFC 3339).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"updated_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the connection last changed (RFC 3339).",
			},
		},
	}
}

func (r *connectionResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = connFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *connectionResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}

func (m connectionModel) connection(ctx context.Context) (secret.Connection, error) {
	var d diagCollector
	c := secret.Connection{
		Name:         m.Name.ValueString(),
		Connector:    m.Connector.ValueString(),
		Config:       stringMap(ctx, m.Config, &d.d),
		AllowedPaths: stringList(ctx, m.AllowedPaths, &d.d),
		AllowedRoles: stringList(ctx, m.AllowedRoles, &d.d),
		AllowedNames: stringList(ctx, m.AllowedNames, &d.d),
	}
	return c, d.err()
}

func (m *connectionModel) set(c secret.Connection) {
	m.ID = types.StringValue(c.Name)
	m.Name = types.StringValue(c.Name)
	m.Connector = types.StringValue(c.Connector)
	m.Config = mapValue(c.Config)
	m.AllowedPaths = listValue(c.AllowedPaths)
	m.AllowedRoles = listValue(c.AllowedRoles)
	m.AllowedNames = listValue(c.AllowedNames)
	m.CreatedAt = timeString(c.CreatedAt)
	m.UpdatedAt = timeString(c.UpdatedAt)
}

func (r *connectionResource) put(ctx context.Context, plan tfsdkGetter, state tfsdkSetter, diags *diagsT, what string) {
	var m connectionModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	c, err := m.connection(ctx)
	if err != nil {
		diags.AddError("Invalid connection", err.Error())
		return
	}
	err = r.c.use(ctx, func(b Backend) error {
		var err error
		c, err = b.PutConnection(ctx, c)
		return err
	})
	if err != nil {
		errorDiag(diags, what+" connection "+c.Name, err)
		return
	}
	m.set(c)
	diags.Append(state.Set(ctx, &m)...)
}

func (r *connectionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.put(ctx, req.Plan, &resp.State, &resp.Diagnostics, "Create")
}

func (r *connectionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.put(ctx, req.Plan, &resp.State, &resp.Diagnostics, "Update")
}

func (r *connectionResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m connectionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var c secret.Connection
	err := r.c.use(ctx, func(b Backend) error {
		var err error
		c, err = b.GetConnection(ctx, m.Name.ValueString())
		return err
	})
	if notFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		errorDiag(&resp.Diagnostics, "Read connection "+m.Name.ValueString(), err)
		return
	}
	m.set(c)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *connectionResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m connectionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.c.use(ctx, func(b Backend) error { return b.DeleteConnection(ctx, m.Name.ValueString()) })
	if err != nil && !notFound(err) {
		errorDiag(&resp.Diagnostics, "Delete connection "+m.Name.ValueString(), err)
	}
}

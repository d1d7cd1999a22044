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

// policyResource is a Rego module the store holds: policy as code, put
// through passman's strict compile and the policy set's tests before it
// takes effect.
type policyResource struct{ c *conn }

func newPolicyResource() resource.Resource { return &policyResource{} }

var (
	_ resource.ResourceWithConfigure   = (*policyResource)(nil)
	_ resource.ResourceWithImportState = (*policyResource)(nil)
)

type policyModel struct {
	ID        types.String `tfsdk:"id"`
	Name      types.String `tfsdk:"name"`
	Source    types.String `tfsdk:"source"`
	Version   types.Int64  `tfsdk:"version"`
	SHA256    types.String `tfsdk:"sha256"`
	CreatedAt types.String `tfsdk:"created_at"`
	UpdatedAt types.String `tfsdk:"updated_at"`
}

func (r *policyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_policy"
}

func (r *policyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Rego policy module the passman store holds, added to the bundled policies on every server " +
			"that opens the store. Each change is compiled (strict Rego v1, with the bundled base and the other stored modules) " +
			"and the policy set's tests are run before it takes effect: a module that fails is refused with the compiler's " +
			"`file:line:col` or the failing test's name, and the set in force stays. A module whose name ends in `_test` holds " +
			"tests. Versioned and audited by passman; managing policies is an admin action.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, MarkdownDescription: "The module's name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true, PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				MarkdownDescription: "Name of the module (a-z, then a-z 0-9 _ -; `store:NAME.rego` in compiler messages). Changing it replaces the module.",
			},
			"source": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The module's Rego source, typically `file(\"policies/teams.rego\")`.",
			},
			"version": schema.Int64Attribute{
				Computed: true, MarkdownDescription: "The module's version in passman: one more on every change.",
			},
			"sha256": schema.StringAttribute{
				Computed: true, MarkdownDescription: "SHA-256 of the source, as the audit log records it.",
			},
			"created_at": schema.StringAttribute{
				Computed: true, MarkdownDescription: "When the module was first put (RFC 3339).",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"updated_at": schema.StringAttribute{
				Computed: true, MarkdownDescription: "When the module last changed (RFC 3339).",
			},
		},
	}
}

func (r *policyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = connFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *policyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("name"), req, resp)
}

func (m *policyModel) set(p secret.PolicyModule) {
	m.ID, m.Name = types.StringValue(p.Name), types.StringValue(p.Name)
	m.Version = types.Int64Value(int64(p.Version))
	m.SHA256 = types.StringValue(p.SHA256)
	m.CreatedAt, m.UpdatedAt = timeString(p.CreatedAt), timeString(p.UpdatedAt)
}

func (r *policyResource) put(ctx context.Context, plan tfsdkGetter, state tfsdkSetter, diags *diagsT, what string) {
	var m policyModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	var p secret.PolicyModule
	err := r.c.use(ctx, func(b Backend) error {
		var err error
		p, err = b.PutPolicy(ctx, m.Name.ValueString(), m.Source.ValueString())
		return err
	})
	if err != nil {
		// The compiler's file:line:col, or the failing tests, are in the
		// message; the policy set in force is unchanged.
		diags.AddAttributeError(path.Root("source"), what+" policy "+m.Name.ValueString()+" refused", err.Error())
		return
	}
	m.set(p)
	diags.Append(state.Set(ctx, &m)...)
}

func (r *policyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.put(ctx, req.Plan, &resp.State, &resp.Diagnostics, "Create")
}

func (r *policyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.put(ctx, req.Plan, &resp.State, &resp.Diagnostics, "Update")
}

func (r *policyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m policyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var p secret.PolicyModule
	err := r.c.use(ctx, func(b Backend) error {
		var err error
		p, err = b.GetPolicy(ctx, m.Name.ValueString())
		return err
	})
	if notFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		errorDiag(&resp.Diagnostics, "Read policy "+m.Name.ValueString(), err)
		return
	}
	m.set(p)
	// A module changed outside Terraform shows as a change of source.
	m.Source = types.StringValue(p.Source)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *policyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m policyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.c.use(ctx, func(b Backend) error { return b.DeletePolicy(ctx, m.Name.ValueString()) })
	if err != nil && !notFound(err) {
		errorDiag(&resp.Diagnostics, "Delete policy "+m.Name.ValueString(), err)
	}
}

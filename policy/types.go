package policy

import (
	"slices"
	"time"

	"github.com/passman-dev/passman/secret"
)

// Decision names, as accepted by Engine.Eval and used for the schema files
// (schema/<decision>.input.json).
const (
	DecisionAuthz   = "authz"
	DecisionLint    = "lint"
	DecisionRespond = "respond"
)

// Decisions lists the decision points in display order.
var Decisions = []string{DecisionAuthz, DecisionLint, DecisionRespond}

// Actions a subject asks to perform; AuthzInput.Action must be one of them.
const (
	ActionRead    = "read"
	ActionWrite   = "write"
	ActionList    = "list"
	ActionDelete  = "delete"
	ActionDestroy = "destroy"
	ActionRotate  = "rotate"
	// ActionConfigureRotation changes a secret's rotation settings (its
	// spec: which connection, with which params; and its period). It is
	// not write: the settings decide what a rotation does on a target
	// system, with a connection's credentials. The spec asked for is in
	// input.request.metadata.
	ActionConfigureRotation = "configure_rotation"
	ActionAdmin             = "admin"
)

// AuthzActions lists every authorization action.
var AuthzActions = []string{ActionRead, ActionWrite, ActionList, ActionDelete, ActionDestroy, ActionRotate, ActionConfigureRotation, ActionAdmin}

// Subject kinds.
const (
	KindUser       = "user"        // a local OS user
	KindToken      = "token"       // a bearer token issued by passman
	KindGitHubOIDC = "github-oidc" // a GitHub Actions OIDC identity token
	KindMTLS       = "mtls"        // a verified TLS client certificate
	// KindScheduler is the server's own scheduler (due rotations,
	// revocations, token reaping). No login yields it: only the server
	// process sets it, on the calls its scheduler makes.
	KindScheduler = "scheduler"
)

// SubjectKinds lists every subject kind.
var SubjectKinds = []string{KindUser, KindToken, KindGitHubOIDC, KindMTLS, KindScheduler}

// Subject is who asks: an identity and, for federated identities, the
// verified claims of its token.
type Subject struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Claims are verified token claims, e.g. for github-oidc: repository,
	// repository_owner, ref, environment, workflow_ref, job_workflow_ref, sub.
	Claims map[string]any `json:"claims,omitempty"`
}

// AuthzInput is the input document of the authz decision (schema/authz.input.json).
type AuthzInput struct {
	Subject Subject `json:"subject"`
	// Action is one of AuthzActions.
	Action string `json:"action"`
	// Path is the secret path, or the prefix being listed for "list".
	Path string `json:"path,omitempty"`
	// Secret is the secret's metadata when the secret exists.
	Secret *secret.Metadata `json:"secret,omitempty"`
	Store  StoreInfo        `json:"store"`
	// Time is when the request was made; zero means now.
	Time time.Time `json:"time"`
	// Request describes what a write asks to change, so a policy that
	// decides by owner or tags can also refuse a write that would change
	// them (otherwise any writer could make itself owner).
	Request *Request `json:"request,omitempty"`
}

// Request is the change a write asks for.
type Request struct {
	// Metadata is the metadata change, as sent (nil fields unchanged).
	Metadata *secret.MetadataUpdate `json:"metadata,omitempty"`
}

// StoreInfo describes the store a request is made against.
type StoreInfo struct {
	// CreatedBy is the OS user who initialised the store.
	CreatedBy string `json:"created_by"`
}

// Decision is the authz result.
type Decision struct {
	Allow bool `json:"allow"`
	// Reasons are sorted. On a deny they are never empty: the deny rules'
	// messages, else the policy's reasons, else the default-deny reason.
	Reasons []string `json:"reasons"`
	// Revision identifies the policy set that decided (see Engine.Revision).
	Revision string `json:"revision"`
}

// LintSecret is one secret as the lint policy sees it: its declaration in a
// manifest, or its metadata in the store. Never its value.
type LintSecret struct {
	Path        string            `json:"path"`
	Owner       string            `json:"owner,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Generate    *LintGenerate     `json:"generate,omitempty"`
	Static      bool              `json:"static,omitempty"`
	// ValuePresent reports that a plaintext value was written in the
	// manifest; the value itself never reaches policy input.
	ValuePresent bool          `json:"value_present,omitempty"`
	Rotation     *LintRotation `json:"rotation,omitempty"`
	// Line is the secret's line in the manifest, 0 when unknown.
	Line int `json:"line,omitempty"`
}

// LintGenerate is a generate block. Lint fills the generator's defaults
// (length 32; upper, lower, digits) for a zero length or empty class list,
// so policy judges the value that would really be generated.
type LintGenerate struct {
	Length  int      `json:"length"`
	Classes []string `json:"classes"`
}

// LintRotation is a rotation block.
type LintRotation struct {
	// Period is Go duration text; Lint also accepts days ("90d") and hands
	// policy the canonical form ("2160h0m0s").
	Period     string `json:"period,omitempty"`
	Connection string `json:"connection,omitempty"`
}

// Lint sources.
const (
	SourceManifest = "manifest"
	SourceStore    = "store"
)

// LintInput is the input document of the lint decision (schema/lint.input.json).
type LintInput struct {
	// Source is SourceManifest or SourceStore.
	Source  string       `json:"source"`
	Secrets []LintSecret `json:"secrets"`
}

// LintFinding is one deny, warn or excepted finding.
type LintFinding struct {
	Rule string `json:"rule"`
	Path string `json:"path,omitempty"`
	Msg  string `json:"msg"`
}

// LintReport is the lint result. Each slice is sorted by (path, rule, msg)
// and never nil; Excepted holds findings an exception suppressed.
type LintReport struct {
	Deny     []LintFinding `json:"deny"`
	Warn     []LintFinding `json:"warn"`
	Excepted []LintFinding `json:"excepted"`
	Revision string        `json:"revision"`
}

// Merge returns the findings of r and o together, sorted as Lint sorts
// them; the revision is r's.
func (r LintReport) Merge(o LintReport) LintReport {
	merge := func(a, b []LintFinding) []LintFinding {
		out := append(append(make([]LintFinding, 0, len(a)+len(b)), a...), b...)
		slices.SortFunc(out, compareFindings)
		return out
	}
	return LintReport{Deny: merge(r.Deny, o.Deny), Warn: merge(r.Warn, o.Warn), Excepted: merge(r.Excepted, o.Excepted), Revision: r.Revision}
}

// RespondInput is the input document of the respond decision
// (schema/respond.input.json).
type RespondInput struct {
	// Finding is the scanner's finding: rule, file, line, commit, author,
	// date. Never the secret text.
	Finding map[string]any `json:"finding"`
	Secret  RespondSecret  `json:"secret"`
}

// RespondSecret is the managed secret version whose value leaked.
type RespondSecret struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	// Stages are the leaked version's stage labels; none means an older version.
	Stages   []string         `json:"stages,omitempty"`
	State    string           `json:"state"`
	Metadata *secret.Metadata `json:"metadata,omitempty"`
}

// Respond actions, in the order a responder performs them.
const (
	RespondRotate         = "rotate"
	RespondRevokePrevious = "revoke_previous"
	RespondNotify         = "notify"
	RespondIgnore         = "ignore"
)

// RespondActions lists the respond actions in execution order.
var RespondActions = []string{RespondRotate, RespondRevokePrevious, RespondNotify, RespondIgnore}

// RespondAction is one step of a leak response.
type RespondAction struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// Response is the respond result: at most one entry per action, in
// RespondActions order; several reasons for one action are joined by "; ".
type Response struct {
	Actions  []RespondAction `json:"actions"`
	Revision string          `json:"revision"`
}

// EvalResult is what Engine.Eval returns for `passman policy eval`.
type EvalResult struct {
	// Result is the Decision, LintReport or Response.
	Result any `json:"result"`
	// Explanation is OPA's evaluation trace with locations, one line each,
	// when explain was asked for.
	Explanation []string `json:"explanation,omitempty"`
}

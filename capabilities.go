package passman

import (
	"context"
	"encoding/json"
	"io"

	"github.com/passman-dev/passman/backup"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// Capabilities: what a front end may do beyond Service. Each is defined
// once, here; the in-process core (core.Local) and the remote client
// (client.Client) implement every one, checked at compile time in their
// packages, so a front end holding either never asserts a type at run
// time. Every method is authorized and audited by the implementation, as
// Service's are.

// Connections administers rotation connections: the operator-defined,
// named ways to reach a rotation's target system (see secret.Connection).
// Every method is an admin action. The in-process core and the remote
// client implement it.
type Connections interface {
	// PutConnection creates or replaces a connection.
	PutConnection(ctx context.Context, c secret.Connection) (secret.Connection, error)
	// GetConnection returns one connection.
	GetConnection(ctx context.Context, name string) (secret.Connection, error)
	// ListConnections returns every connection, sorted by name.
	ListConnections(ctx context.Context) ([]secret.Connection, error)
	// DeleteConnection removes a connection.
	DeleteConnection(ctx context.Context, name string) error
}

// ValueComparer: whether a value equals a secret's current value,
// answered on the server, so a front end can tell drift without reading
// the value (the Terraform provider's write-only values).
type ValueComparer interface {
	// CompareValue reports whether value equals the current version's value of path.
	// Authorized as a read of path (a caller who may not read it gets exactly the
	// not-found answer a missing path gets); audited as "secret.compare" with the
	// outcome, never the value; constant-time and length-hiding.
	CompareValue(ctx context.Context, path string, value []byte) (bool, error)
}

// Policies administers the policy modules the store holds (admin
// actions): Rego modules every process opening the store, every server of
// a cluster, compiles with the bundled policies. A Put or Delete that
// breaks compilation (strict Rego v1, with the bundled base and the other
// stored modules) or a test of the policy set is refused with an error
// whose text carries the compiler's file:line:col or the failing test's
// name; the old set stays in force. A module whose name ends in "_test" is
// a unit test module.
type Policies interface {
	PutPolicy(ctx context.Context, name, source string) (secret.PolicyModule, error)
	GetPolicy(ctx context.Context, name string) (secret.PolicyModule, error)
	ListPolicies(ctx context.Context) ([]secret.PolicyModule, error) // sorted by name, Source omitted
	DeletePolicy(ctx context.Context, name string) error
}

// Tokens administers bearer tokens: admin actions. A token is returned
// once, by CreateToken; passman keeps only its hash.
type Tokens interface {
	CreateToken(ctx context.Context, req secret.TokenRequest) (string, secret.TokenInfo, error)
	RevokeToken(ctx context.Context, accessor string) error
	ListTokens(ctx context.Context) ([]secret.TokenInfo, error)
}

// PolicyEvaluator evaluates one decision (authz, lint, respond) of the
// store's policies on an input: an admin action, audited by the decision's
// name, never the input.
type PolicyEvaluator interface {
	EvalPolicy(ctx context.Context, decision string, input json.RawMessage, explain bool) (policy.EvalResult, error)
}

// Rotator runs rotations through secrets' connections (package rotation):
// every step authorized and audited as the caller, rotate checked before
// any connector is called.
type Rotator interface {
	// Rotate rotates path now; trigger is "manual" or "due".
	Rotate(ctx context.Context, path, trigger string) (rotation.Result, error)
	// RotateDue rotates every due secret under opts.Prefix and revokes
	// previous versions whose grace period is over.
	RotateDue(ctx context.Context, opts rotation.DueOptions) (rotation.DueReport, error)
	// RotationStatus lists the secrets under prefix that have a rotation
	// spec, and whether each is due.
	RotationStatus(ctx context.Context, prefix string) ([]rotation.Entry, error)
}

// LeakResponder responds to leaks of managed secrets as the store's
// respond policy decides (rotate, revoke the leaked version, notify):
// one result per leak, in order.
type LeakResponder interface {
	RespondToLeaks(ctx context.Context, leaks []rotation.LeakFinding) ([]rotation.LeakResult, error)
}

// Readier says whether the store can serve: its database and audit log
// answer and its checkpoints are recorded.
type Readier interface {
	Ready(ctx context.Context) error
}

// Fingerprints shares the managed secrets' fingerprint index with leak
// scanners: the shareable index (detection key and truncated fingerprint
// prefixes) of the secrets under prefix the caller may read, and the
// confirmation of candidate fingerprints, answered only for versions the
// caller may read.
type Fingerprints interface {
	ExportFingerprintPrefixes(ctx context.Context, prefix string, w io.Writer) (fpindex.File, error)
	fpindex.Confirmer
}

// Scheduling reports the server's scheduler: the node that leads it and
// its last runs (what rotated, was revoked or reaped, what failed). An
// admin action: the runs name secrets across the store.
type Scheduling interface {
	SchedulerStatus(ctx context.Context) (scheduler.Status, error)
}

// Backups writes a consistent backup of the store to w while it serves
// (see package backup): sealed values, wrapped data keys and the audit
// log, never a master key. An admin action, audited.
type Backups interface {
	Backup(ctx context.Context, w io.Writer, opts backup.Options) (backup.Header, error)
}

package rotation

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// Kind describes a connector: how to build it and which configuration
// keys belong to the operator's connection and which to a secret's spec.
type Kind struct {
	New Factory
	// Params are the keys a secret's rotation spec may set: per-secret
	// choices within what the connection allows (a role, a secret's name).
	// Every other key is the connection's: credentials, endpoints,
	// programs and scopes are never a secret writer's to choose. A key the
	// connection sets cannot be set again by a spec.
	Params []string
	// Roles names the param(s) that hold database roles, checked against
	// the connection's AllowedRoles. "roles" holds a comma-separated list.
	Roles []string
	// CheckParams are alternative sets of params that complete a
	// connection (each key only where the connection leaves it unset), so
	// that checking a connection builds a connector: its own keys and
	// values are then checked when it is stored, not at its first
	// rotation. It passes if one alternative builds.
	CheckParams []map[string]string
}

// ConnectorOptions choose what the built-in connectors may do on this
// machine.
type ConnectorOptions struct {
	// ExecPrograms are the programs an exec connection may run. Empty
	// disables the exec connector, as a server does unless its operator
	// lists programs.
	ExecPrograms []string
	// ExecAnyProgram lets an exec connection run any program: for the
	// local CLI, where the store's administrator runs their own programs
	// as themselves.
	ExecAnyProgram bool
}

// Connectors returns the built-in connectors by name.
func Connectors(opts ConnectorOptions) Registry {
	reg := Registry{
		"generated": {New: Generated},
		"postgres": {New: Postgres, Params: []string{pgRole, pgRoles}, Roles: []string{pgRole, pgRoles},
			CheckParams: []map[string]string{{pgRole: "passman_check"}, {}}},
		"github": {New: GitHub, Params: []string{"name", "owner", "repo", "environment", "org", "visibility"},
			CheckParams: []map[string]string{{"name": "PASSMAN_CHECK", "owner": "passman", "repo": "check"}, {"name": "PASSMAN_CHECK", "org": "passman"}}},
		"webhook": {New: Webhook},
	}
	addPlatformConnectors(reg, opts)
	return reg
}

// Bind builds the connector a secret's spec asks for over the connection
// it names, after checking that the secret may use the connection: its
// path is in the connection's allow-list, its params are ones the
// connector takes from a spec and the connection has not set, and any
// role it names is one the connection allows. r resolves the connection's
// credential references. Errors wrap secret.ErrInvalidArgument (a spec
// that cannot be bound) and never quote the connection's configuration.
func (reg Registry) Bind(conn secret.Connection, path string, spec *secret.Rotation, r Resolver) (Connector, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: no rotation configured", secret.ErrInvalidArgument)
	}
	kind, ok := reg[conn.Connector]
	if !ok {
		return nil, fmt.Errorf("%w: connection %s: connector %q is not available here (have %v)", secret.ErrInvalidArgument, conn.Name, conn.Connector, reg.Names())
	}
	if conn.Name != secret.GeneratedConnection && !conn.AllowsPath(path) {
		return nil, fmt.Errorf("%w: connection %s does not allow %s (see its allowed_paths)", secret.ErrPermissionDenied, conn.Name, path)
	}
	cfg := maps.Clone(conn.Config)
	if cfg == nil {
		cfg = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Params)) {
		switch {
		case !slices.Contains(kind.Params, k):
			return nil, fmt.Errorf("%w: rotation param %q: connector %s takes %v from a secret's spec; the rest is the connection's", secret.ErrInvalidArgument, k, conn.Connector, kind.Params)
		case cfg[k] != "":
			return nil, fmt.Errorf("%w: rotation param %q is set by connection %s", secret.ErrInvalidArgument, k, conn.Name)
		}
		cfg[k] = spec.Params[k]
	}
	for _, k := range kind.Roles {
		for role := range strings.SplitSeq(cfg[k], ",") {
			if role = strings.TrimSpace(role); role != "" && !conn.AllowsRole(role) {
				return nil, fmt.Errorf("%w: connection %s does not allow role %q (see its allowed_roles)", secret.ErrPermissionDenied, conn.Name, role)
			}
		}
	}
	c, err := kind.New(cfg, r)
	if err != nil {
		return nil, fmt.Errorf("connection %s (%s): %w", conn.Name, conn.Connector, err)
	}
	return c, nil
}

// Check validates a connection against its connector before it is
// stored: the connector exists here, and the keys the connection sets are
// connection keys. The configuration as a whole (required keys, formats)
// is checked with the params of each secret that binds to it.
func (reg Registry) Check(conn secret.Connection) error {
	if err := conn.Validate(); err != nil {
		return err
	}
	kind, ok := reg[conn.Connector]
	if !ok {
		return fmt.Errorf("%w: connector %q is not available here (have %v)", secret.ErrInvalidArgument, conn.Connector, reg.Names())
	}
	if len(conn.AllowedRoles) > 0 && len(kind.Roles) == 0 {
		return fmt.Errorf("%w: allowed_roles applies to postgres connections only", secret.ErrInvalidArgument)
	}
	alts := kind.CheckParams
	if len(alts) == 0 {
		alts = []map[string]string{{}}
	}
	var first error
	for _, params := range alts {
		cfg := maps.Clone(conn.Config)
		if cfg == nil {
			cfg = map[string]string{}
		}
		for k, v := range params {
			if cfg[k] == "" {
				cfg[k] = v
			}
		}
		_, err := kind.New(cfg, checkResolver{})
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("connection %s (%s): %w", conn.Name, conn.Connector, first)
}

// checkResolver is the resolver of a check: factories never resolve while
// building, so it is never called.
type checkResolver struct{}

func (checkResolver) Resolve(context.Context, string) (secret.Value, error) {
	return secret.Value{}, fmt.Errorf("%w: not resolved while checking", secret.ErrInvalidArgument)
}

// Generated is the built-in connection of rotations with no target.
var generatedConnection = secret.Connection{Name: secret.GeneratedConnection, Connector: "generated"}

// BuiltinConnection returns the built-in connection of that name.
func BuiltinConnection(name string) (secret.Connection, bool) {
	if name == secret.GeneratedConnection {
		return generatedConnection, true
	}
	return secret.Connection{}, false
}

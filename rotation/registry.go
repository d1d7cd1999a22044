package rotation

import (
	"context"
	"fmt"
	"maps"
	"slices"

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
	// Targets say, for params that name something on the target system,
	// which of the connection's allow-lists a value from a spec must be
	// in, and how the connector reads the param into names (exactly as its
	// factory does, so the name checked is the name acted on). A value the
	// connection itself sets is the administrator's and is not checked.
	Targets map[string]TargetParam
	// CheckParams are alternative sets of params that complete a
	// connection (each key only where the connection leaves it unset), so
	// that checking a connection builds a connector: its own keys and
	// values are then checked when it is stored, not at its first
	// rotation. It passes if one alternative builds.
	CheckParams []map[string]string
}

// TargetParam is a param naming something on the target system.
type TargetParam struct {
	// List names the connection's allow-list for it ("allowed_roles"),
	// and Allowed reads it.
	List    string
	Allowed func(secret.Connection) []string
	// Names reads the param's value into the names it designates.
	Names func(value string) []string
	// What names it in errors ("role").
	What string
}

var (
	allowedRoles  = func(c secret.Connection) []string { return c.AllowedRoles }
	allowedNames  = func(c secret.Connection) []string { return c.AllowedNames }
	oneName       = func(v string) []string { return []string{v} }
	pgRoleTarget  = TargetParam{List: "allowed_roles", Allowed: allowedRoles, Names: oneName, What: "role"}
	pgRolesTarget = TargetParam{List: "allowed_roles", Allowed: allowedRoles, Names: pgSplitRoles, What: "role"}
	ghNameTarget  = TargetParam{List: "allowed_names", Allowed: allowedNames, Names: oneName, What: "secret name"}
)

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
		"postgres": {New: Postgres, Params: []string{pgRole, pgRoles},
			Targets:     map[string]TargetParam{pgRole: pgRoleTarget, pgRoles: pgRolesTarget},
			CheckParams: []map[string]string{{pgRole: "passman_check"}, {}}},
		// The scope (owner and repo, environment, or org, and an org
		// secret's visibility) is the connection's: a spec picks only the
		// secret's name, within the connection's allowed_names.
		"github": {New: GitHub, Params: []string{"name"},
			Targets:     map[string]TargetParam{"name": ghNameTarget},
			CheckParams: []map[string]string{{"name": "PASSMAN_CHECK"}, {}}},
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
		v := spec.Params[k]
		if t, ok := kind.Targets[k]; ok {
			for _, name := range t.Names(v) {
				if !secret.MatchPattern(t.Allowed(conn), name) {
					return nil, fmt.Errorf("%w: connection %s does not allow %s %q", secret.ErrPermissionDenied, conn.Name, t.What, name)
				}
			}
		}
		cfg[k] = v
	}
	c, err := kind.New(cfg, r)
	if err != nil {
		return nil, fmt.Errorf("connection %s (%s): %w", conn.Name, conn.Connector, err)
	}
	return c, nil
}

// Check validates a connection against its connector before it is
// stored: the connector exists here, its allow-lists are ones the
// connector has, and a connector builds from the connection's config
// completed with Kind.CheckParams, so its keys and values are checked now;
// Bind checks them again with each secret's params.
func (reg Registry) Check(conn secret.Connection) error {
	if err := conn.Validate(); err != nil {
		return err
	}
	kind, ok := reg[conn.Connector]
	if !ok {
		return fmt.Errorf("%w: connector %q is not available here (have %v)", secret.ErrInvalidArgument, conn.Connector, reg.Names())
	}
	lists := map[string]bool{}
	for _, t := range kind.Targets {
		lists[t.List] = true
	}
	for list, set := range map[string]bool{"allowed_roles": len(conn.AllowedRoles) > 0, "allowed_names": len(conn.AllowedNames) > 0} {
		if set && !lists[list] {
			return fmt.Errorf("%w: %s does not apply to %s connections", secret.ErrInvalidArgument, list, conn.Connector)
		}
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

// generatedConnection is the built-in connection of rotations with no
// target.
var generatedConnection = secret.Connection{Name: secret.GeneratedConnection, Connector: "generated"}

// BuiltinConnection returns the built-in connection of that name.
func BuiltinConnection(name string) (secret.Connection, bool) {
	if name == secret.GeneratedConnection {
		return generatedConnection, true
	}
	return secret.Connection{}, false
}

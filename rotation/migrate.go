package rotation

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// Migration moves rotation specs from before connections, in which a
// secret's writer chose the connector and its whole configuration, to
// connections an administrator owns. Specs in the old form never run; a
// migration is how an administrator adopts what they describe, after
// reading the plan.
type Migration struct {
	// Connections are the connections to create, or to extend with more
	// allowed paths (and roles).
	Connections []ConnectionChange `json:"connections"`
	// Secrets are the specs to rewrite, sorted by path.
	Secrets []SpecMove `json:"secrets"`
}

// ConnectionChange is a connection the migration creates or extends.
type ConnectionChange struct {
	// Create: a new connection; otherwise an existing one with the same
	// connector and configuration gains allowed paths and roles.
	Create     bool              `json:"create"`
	Connection secret.Connection `json:"connection"`
}

// SpecMove is one secret's spec, before and after.
type SpecMove struct {
	Path string          `json:"path"`
	From secret.Rotation `json:"from"`
	To   secret.Rotation `json:"to"`
}

// migrationStore is what planning a migration reads.
type migrationStore interface {
	List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error)
	ListConnections(ctx context.Context) ([]secret.Connection, error)
}

// PlanMigration finds every secret under prefix whose rotation spec is in
// the old form and plans its move: the config keys a spec may still set
// (the connector's params) stay with the secret; the rest (credentials,
// endpoints, programs, scopes) becomes a connection, shared by the secrets
// whose connector and connection config are equal, allowing exactly those
// secrets' paths and (postgres) roles. An existing connection with the
// same connector and config is extended instead of duplicated. New
// connections are named after their connector: postgres-1, postgres-2, ...
func (reg Registry) PlanMigration(ctx context.Context, st migrationStore, prefix string) (Migration, error) {
	existing, err := st.ListConnections(ctx)
	if err != nil {
		return Migration{}, fmt.Errorf("list connections: %w", err)
	}
	taken := map[string]bool{}
	for _, c := range existing {
		taken[c.Name] = true
	}
	var m Migration
	changes := map[string]*ConnectionChange{} // by connector + config
	opts := secret.ListOptions{Prefix: prefix, Limit: secret.MaxListLimit, WithMetadata: true}
	for {
		page, err := st.List(ctx, opts)
		if err != nil {
			return Migration{}, fmt.Errorf("list secrets: %w", err)
		}
		for _, e := range page.Entries {
			if e.Metadata == nil || !e.Metadata.Rotation.Legacy() {
				continue
			}
			from := *e.Metadata.Rotation
			kind := reg[from.LegacyConnector]
			to := secret.Rotation{Length: from.Length, Classes: from.Classes, GracePeriod: from.GracePeriod}
			config := map[string]string{}
			for k, v := range from.LegacyConfig {
				if slices.Contains(kind.Params, k) {
					if to.Params == nil {
						to.Params = map[string]string{}
					}
					to.Params[k] = v
				} else {
					config[k] = v
				}
			}
			if from.LegacyConnector == "generated" && len(config) == 0 {
				to.Connection = secret.GeneratedConnection
				m.Secrets = append(m.Secrets, SpecMove{Path: e.Path, From: from, To: to})
				continue
			}
			key := migrationKey(from.LegacyConnector, config)
			ch := changes[key]
			if ch == nil {
				ch = &ConnectionChange{Create: true}
				if i := slices.IndexFunc(existing, func(c secret.Connection) bool {
					return migrationKey(c.Connector, c.Config) == key
				}); i >= 0 {
					ch.Create, ch.Connection = false, existing[i]
					ch.Connection.AllowedPaths = slices.Clone(ch.Connection.AllowedPaths)
					ch.Connection.AllowedRoles = slices.Clone(ch.Connection.AllowedRoles)
				} else {
					ch.Connection = secret.Connection{Name: freeName(from.LegacyConnector, taken), Connector: from.LegacyConnector, Config: config}
				}
				changes[key] = ch
			}
			if !ch.Connection.AllowsPath(e.Path) {
				ch.Connection.AllowedPaths = append(ch.Connection.AllowedPaths, e.Path)
			}
			for _, k := range kind.Roles {
				for role := range strings.SplitSeq(to.Params[k], ",") {
					if role = strings.TrimSpace(role); role != "" && !ch.Connection.AllowsRole(role) {
						ch.Connection.AllowedRoles = append(ch.Connection.AllowedRoles, role)
					}
				}
			}
			to.Connection = ch.Connection.Name
			m.Secrets = append(m.Secrets, SpecMove{Path: e.Path, From: from, To: to})
		}
		if page.Next == "" {
			break
		}
		opts.After = page.Next
	}
	for _, key := range slices.Sorted(maps.Keys(changes)) {
		m.Connections = append(m.Connections, *changes[key])
	}
	return m, nil
}

// ApplyMigration creates or extends the plan's connections, then rewrites
// each secret's spec. It stops at the first error: what was done stays
// done, and planning again picks up the rest.
func ApplyMigration(ctx context.Context, svc interface {
	PutConnection(ctx context.Context, c secret.Connection) (secret.Connection, error)
	UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error)
}, m Migration) error {
	for _, ch := range m.Connections {
		if _, err := svc.PutConnection(ctx, ch.Connection); err != nil {
			return fmt.Errorf("connection %s: %w", ch.Connection.Name, err)
		}
	}
	for _, s := range m.Secrets {
		to := s.To
		if _, err := svc.UpdateMetadata(ctx, s.Path, secret.MetadataUpdate{Rotation: &to}); err != nil {
			return fmt.Errorf("%s: %w", s.Path, err)
		}
	}
	return nil
}

func migrationKey(connector string, config map[string]string) string {
	var b strings.Builder
	b.WriteString(connector)
	for _, k := range slices.Sorted(maps.Keys(config)) {
		fmt.Fprintf(&b, "\x00%s\x00%s", k, config[k])
	}
	return b.String()
}

func freeName(connector string, taken map[string]bool) string {
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s-%d", connector, i)
		if !taken[name] {
			taken[name] = true
			return name
		}
	}
}

package rotation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// Migration moves rotation specs from before connections, in which a
// secret's writer chose the connector and its whole configuration, to
// connections an administrator owns. Specs in the old form never run; a
// migration is how an administrator adopts what they describe, after
// reading the plan: whoever could write a secret wrote its old spec.
type Migration struct {
	// Groups are the new connections, each with the specs that move onto
	// it; the built-in generated connection's group has no Connection.
	Groups []MigrationGroup `json:"groups"`
}

// MigrationGroup is one new connection and the secrets it serves.
type MigrationGroup struct {
	// Connection is created (never an existing one changed): it pins the
	// old spec's whole configuration, its target included (a role, a
	// repository and secret name), and allows exactly the group's paths,
	// so no secret gains a target another secret had.
	Connection *secret.Connection `json:"connection,omitempty"`
	Secrets    []SpecMove         `json:"secrets"`
}

// SpecMove is one secret's spec, before and after.
type SpecMove struct {
	Path string          `json:"path"`
	From secret.Rotation `json:"from"`
	To   secret.Rotation `json:"to"`
}

// MigrationReport is what ApplyMigration did.
type MigrationReport struct {
	Moved  []string           `json:"moved"`
	Failed []MigrationFailure `json:"failed,omitempty"`
}

// MigrationFailure is a group or a secret that was not moved.
type MigrationFailure struct {
	Connection string `json:"connection,omitempty"`
	Path       string `json:"path,omitempty"`
	Error      string `json:"error"`
}

// migrationStore is what planning a migration reads.
type migrationStore interface {
	List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error)
	ListConnections(ctx context.Context) ([]secret.Connection, error)
}

// PlanMigration finds every secret under prefix whose rotation spec is in
// the old form and plans its move onto a new connection that pins the old
// spec's whole configuration and allows exactly the paths of the secrets
// that had that same configuration (the same target). New connections are
// named after their connector (postgres-1, ...), never reusing a name.
func PlanMigration(ctx context.Context, st migrationStore, prefix string) (Migration, error) {
	existing, err := st.ListConnections(ctx)
	if err != nil {
		return Migration{}, fmt.Errorf("list connections: %w", err)
	}
	taken := map[string]bool{}
	for _, c := range existing {
		taken[c.Name] = true
	}
	var generated MigrationGroup
	groups := map[string]*MigrationGroup{} // by connector + config
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
			to := secret.Rotation{Length: from.Length, Classes: from.Classes, GracePeriod: from.GracePeriod}
			if from.LegacyConnector == "generated" && len(from.LegacyConfig) == 0 {
				to.Connection = secret.GeneratedConnection
				generated.Secrets = append(generated.Secrets, SpecMove{Path: e.Path, From: from, To: to})
				continue
			}
			key := migrationKey(from.LegacyConnector, from.LegacyConfig)
			g := groups[key]
			if g == nil {
				g = &MigrationGroup{Connection: &secret.Connection{Name: freeName(from.LegacyConnector, taken), Connector: from.LegacyConnector, Config: maps.Clone(from.LegacyConfig)}}
				groups[key] = g
			}
			g.Connection.AllowedPaths = append(g.Connection.AllowedPaths, e.Path)
			to.Connection = g.Connection.Name
			g.Secrets = append(g.Secrets, SpecMove{Path: e.Path, From: from, To: to})
		}
		if page.Next == "" {
			break
		}
		opts.After = page.Next
	}
	var m Migration
	if len(generated.Secrets) > 0 {
		m.Groups = append(m.Groups, generated)
	}
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		m.Groups = append(m.Groups, *groups[key])
	}
	return m, nil
}

// migrationTarget is what applying a migration needs.
type migrationTarget interface {
	Describe(ctx context.Context, path string) (secret.Secret, error)
	GetConnection(ctx context.Context, name string) (secret.Connection, error)
	PutConnection(ctx context.Context, c secret.Connection) (secret.Connection, error)
	UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error)
}

// ApplyMigration applies a plan an administrator read (PlanMigration's,
// possibly saved and loaded again): each group's connection is created
// (a name already taken fails the group: plan again), then each of its
// secrets whose spec is still the one planned from moves onto it. A
// failure is reported and the rest goes on, so one spec that cannot move
// (an exec program this server does not list) keeps nobody else's
// rotations off.
func ApplyMigration(ctx context.Context, st migrationTarget, m Migration) (MigrationReport, error) {
	rep := MigrationReport{Moved: []string{}}
	for _, g := range m.Groups {
		if g.Connection != nil {
			if _, err := st.GetConnection(ctx, g.Connection.Name); err == nil {
				rep.Failed = append(rep.Failed, MigrationFailure{Connection: g.Connection.Name, Error: "a connection of that name exists now; plan again"})
				continue
			} else if !errors.Is(err, secret.ErrNotFound) {
				return rep, fmt.Errorf("connection %s: %w", g.Connection.Name, err)
			}
			if _, err := st.PutConnection(ctx, *g.Connection); err != nil {
				rep.Failed = append(rep.Failed, MigrationFailure{Connection: g.Connection.Name, Error: err.Error()})
				continue
			}
		}
		for _, s := range g.Secrets {
			cur, err := st.Describe(ctx, s.Path)
			switch {
			case err != nil:
				rep.Failed = append(rep.Failed, MigrationFailure{Path: s.Path, Error: err.Error()})
				continue
			case cur.Metadata.Rotation == nil || !reflect.DeepEqual(*cur.Metadata.Rotation, s.From):
				rep.Failed = append(rep.Failed, MigrationFailure{Path: s.Path, Error: "its spec changed since the plan; plan again"})
				continue
			}
			to := s.To
			if _, err := st.UpdateMetadata(ctx, s.Path, secret.MetadataUpdate{Rotation: &to}); err != nil {
				rep.Failed = append(rep.Failed, MigrationFailure{Path: s.Path, Error: err.Error()})
				continue
			}
			rep.Moved = append(rep.Moved, s.Path)
		}
	}
	return rep, nil
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

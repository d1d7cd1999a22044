package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/internal/strictjson"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
)

// connectionAdmin is what the connection commands need: the server's
// (client.Client) or the local store's (core.Local).
type connectionAdmin interface {
	passman.Service
	passman.Connections
}

var (
	_ connectionAdmin = (*client.Client)(nil)
	_ connectionAdmin = (*core.Local)(nil)
)

func (a *app) withConnections(ctx context.Context, fn func(connectionAdmin) error) error {
	return withBackend(ctx, a, func(c *client.Client) connectionAdmin { return c },
		func(l *core.Local) connectionAdmin { return l }, fn)
}

func newConnectionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connection",
		Short: "Define the connections rotations use to reach target systems (admin)",
		Long: `A connection is an administrator's: which connector (postgres, github,
webhook, exec) reaches which target with which credentials, and which secrets
may use it. A secret's rotation spec only names a connection and the few
per-secret params its connector takes (postgres: role or roles; github: name
and, unless the connection pins it, the scope), so whoever may write a
secret cannot choose what passman runs or where it sends credentials.

Credentials in a connection's config are references, resolved with the
connection's authority at each step: env:NAME (the environment of the passman
process: the server's, or yours locally) or secret:PATH (a managed secret,
read and audited as the connection's). Every command is an admin action and
works on the server when --addr or PASSMAN_ADDR is set.`,
		Args: clibase.GroupArgs,
		RunE: clibase.GroupRun,
	}
	cmd.AddCommand(newConnectionPutCmd(a), newConnectionGetCmd(a), newConnectionListCmd(a), newConnectionDeleteCmd(a), newConnectionMigrateCmd(a))
	return cmd
}

func newConnectionPutCmd(a *app) *cobra.Command {
	var c secret.Connection
	var config []string
	cmd := &cobra.Command{
		Use:   "put NAME --connector KIND --allow-path PATTERN... [--config KEY=VALUE]... [--allow-role PATTERN]...",
		Short: "Create or replace a connection",
		Long: `Create or replace a connection. --allow-path names the secrets that may use
it: a path, or a folder followed by * (team-a/*). A postgres connection also
needs --allow-role for the roles its secrets may name (app_*); a github
connection pins its scope (owner and repo, environment, or org) and needs
--allow-name for the Actions secret names its secrets may set. The exec
connector runs only programs a server's operator lists in its configuration
(rotation.exec_programs).`,
		Example: `  passman connection put pg-team-a --connector postgres \
      --config admin_dsn=env:PG_ADMIN_DSN --allow-path 'team-a/*' --allow-role 'team_a_*'
  passman connection put gh-acme-app --connector github \
      --config token=secret:ops/github-token --config owner=acme --config repo=app \
      --allow-path 'team-a/ci/*' --allow-name 'TEAM_A_*'`,
		Args: clibase.ExactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Name = args[0]
			if c.Connector == "" {
				return clibase.UsageErrorf("--connector is required")
			}
			for _, kv := range config {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return clibase.UsageErrorf("--config wants KEY=VALUE")
				}
				if c.Config == nil {
					c.Config = map[string]string{}
				}
				c.Config[k] = v
			}
			var out secret.Connection
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				var err error
				out, err = s.PutConnection(cmd.Context(), c)
				return err
			})
			if err != nil {
				return fmt.Errorf("put connection %s: %w", c.Name, err)
			}
			return a.Out.Emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Connection %s (%s) saved.\n", out.Name, out.Connector)
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&c.Connector, "connector", "", "the connector `KIND`: postgres, github, webhook or exec (required)")
	fs.StringArrayVar(&config, "config", nil, "connector setting `KEY=VALUE`; credentials as env:NAME or secret:PATH (repeatable)")
	fs.StringArrayVar(&c.AllowedPaths, "allow-path", nil, "secret `PATTERN` that may use it: a path or a prefix ending in * (repeatable, required)")
	fs.StringArrayVar(&c.AllowedRoles, "allow-role", nil, "postgres role `PATTERN` its secrets may name: a role or a prefix ending in * (repeatable)")
	fs.StringArrayVar(&c.AllowedNames, "allow-name", nil, "github Actions secret name `PATTERN` its secrets may name (repeatable)")
	return cmd
}

func newConnectionGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a connection",
		Args:  clibase.ExactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c secret.Connection
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				var err error
				c, err = s.GetConnection(cmd.Context(), args[0])
				return err
			})
			if err != nil {
				return fmt.Errorf("get connection %s: %w", args[0], err)
			}
			return a.Out.Emit(c, func(w io.Writer) error { return connectionText(w, c) })
		},
	}
}

func connectionText(w io.Writer, c secret.Connection) error {
	t := newTable(w, "FIELD", "VALUE")
	t.row("name", c.Name)
	t.row("connector", c.Connector)
	for _, k := range slices.Sorted(maps.Keys(c.Config)) {
		t.row("config."+k, c.Config[k])
	}
	t.row("allowed_paths", strings.Join(c.AllowedPaths, " "))
	if len(c.AllowedRoles) > 0 {
		t.row("allowed_roles", strings.Join(c.AllowedRoles, " "))
	}
	if len(c.AllowedNames) > 0 {
		t.row("allowed_names", strings.Join(c.AllowedNames, " "))
	}
	if !c.UpdatedAt.IsZero() {
		t.row("updated", timeText(c.UpdatedAt)+" by "+c.UpdatedBy)
	}
	return t.flush()
}

func newConnectionListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List connections",
		Args:  clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var all []secret.Connection
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				var err error
				all, err = s.ListConnections(cmd.Context())
				return err
			})
			if err != nil {
				return fmt.Errorf("list connections: %w", err)
			}
			return a.Out.Emit(all, func(w io.Writer) error {
				t := newTable(w, "NAME", "CONNECTOR", "ALLOWED PATHS", "ALLOWED ROLES")
				for _, c := range all {
					paths := strings.Join(c.AllowedPaths, " ")
					if c.Name == secret.GeneratedConnection {
						paths = "(any: built in, no target)"
					}
					t.row(c.Name, c.Connector, paths, strings.Join(c.AllowedRoles, " "))
				}
				return t.flush()
			})
		},
	}
}

func newConnectionDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a connection (secrets naming it stop rotating)",
		Args:  clibase.ExactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := a.withConnections(cmd.Context(), func(s connectionAdmin) error {
				return s.DeleteConnection(cmd.Context(), args[0])
			})
			if err != nil {
				return fmt.Errorf("delete connection %s: %w", args[0], err)
			}
			return a.Out.Emit(map[string]string{"deleted": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Deleted connection %s.\n", args[0])
				return err
			})
		},
	}
}

// maxMigrationPlan bounds a plan file read by migrate --apply.
const maxMigrationPlan = 64 << 20

func newConnectionMigrateCmd(a *app) *cobra.Command {
	var prefix, apply string
	cmd := &cobra.Command{
		Use:   "migrate [--prefix PREFIX] | --apply PLAN",
		Short: "Move rotation specs from before connections to connections",
		Long: `Rotation specs written before connections existed named a connector and
its whole configuration (credentials, endpoints, programs) in the secret's
metadata, which anyone allowed to write the secret could change. Such specs
no longer run. migrate plans their move: each onto a new connection that pins
the old spec's whole configuration, its target included (a role, a
repository's secret), shared only by secrets whose configuration was the
same and allowing exactly their paths. No existing connection is changed.

Whoever could write a secret wrote its old spec: read the plan before you
adopt it. Save it (-o json > plan.json), read it, then apply exactly that
plan with --apply plan.json. Apply creates each connection, then moves each
of its secrets whose spec is still the one planned from; what fails (a name
taken since, a spec changed since, an exec program this server does not
list) is reported and the rest goes on.

Exit codes: 0 planned or applied, 1 something was not moved, 2 error.`,
		Example: `  passman connection migrate -o json > plan.json
  passman connection migrate --apply plan.json`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if apply != "" {
				if cmd.Flags().Changed("prefix") {
					return clibase.UsageErrorf("--prefix belongs to planning; --apply applies the plan file as it is")
				}
				m, err := readMigrationPlan(apply)
				if err != nil {
					return err
				}
				var rep rotation.MigrationReport
				err = a.withConnections(ctx, func(s connectionAdmin) error {
					rep, err = rotation.ApplyMigration(ctx, s, m)
					return err
				})
				if err != nil {
					return fmt.Errorf("apply migration: %w", err)
				}
				if err := a.Out.Emit(rep, func(w io.Writer) error { return migrationReportText(w, rep) }); err != nil {
					return err
				}
				if len(rep.Failed) > 0 {
					return &clibase.ReportedError{Code: clibase.ExitFailure, Msg: fmt.Sprintf("%d not moved", len(rep.Failed))}
				}
				return nil
			}
			var m rotation.Migration
			err := a.withConnections(ctx, func(s connectionAdmin) error {
				var err error
				m, err = rotation.PlanMigration(ctx, s, prefix)
				return err
			})
			if err != nil {
				return fmt.Errorf("plan migration: %w", err)
			}
			return a.Out.Emit(m, func(w io.Writer) error { return migrationText(w, m) })
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "plan only secrets under `PREFIX`")
	cmd.Flags().StringVar(&apply, "apply", "", "apply the plan in `FILE` (migrate -o json), as it is")
	return cmd
}

// readMigrationPlan reads a plan file strictly: it is what an
// administrator read and decided to adopt.
func readMigrationPlan(name string) (rotation.Migration, error) {
	var m rotation.Migration
	f, err := os.Open(name)
	if err != nil {
		return m, clibase.UsageErrorf("--apply: %w", err)
	}
	defer f.Close() // read-only
	b, err := io.ReadAll(io.LimitReader(f, maxMigrationPlan+1))
	if err != nil {
		return m, fmt.Errorf("read plan %s: %w", name, err)
	}
	if len(b) > maxMigrationPlan {
		return m, fmt.Errorf("%w: plan %s is over %d bytes", secret.ErrTooLarge, name, maxMigrationPlan)
	}
	if err := strictjson.Check(b, &m); err != nil {
		return m, fmt.Errorf("%w: plan %s: %v", secret.ErrInvalidArgument, name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: plan %s: not a plan of 'passman connection migrate -o json': %v", secret.ErrInvalidArgument, name, err)
	}
	return m, nil
}

func migrationText(w io.Writer, m rotation.Migration) error {
	n := 0
	for _, g := range m.Groups {
		if c := g.Connection; c != nil {
			fmt.Fprintf(w, "create connection %s (%s)\n", c.Name, c.Connector)
			for _, k := range slices.Sorted(maps.Keys(c.Config)) {
				fmt.Fprintf(w, "    config.%s = %s\n", k, c.Config[k])
			}
			fmt.Fprintf(w, "    allowed_paths: %s\n", strings.Join(c.AllowedPaths, " "))
		}
		for _, s := range g.Secrets {
			n++
			fmt.Fprintf(w, "move %s: connector %s -> connection %s\n", s.Path, s.From.LegacyConnector, s.To.Connection)
		}
	}
	if n == 0 {
		_, err := fmt.Fprintln(w, "No rotation spec predates connections.")
		return err
	}
	_, err := fmt.Fprintln(w, "Read it, save it (-o json > plan.json) and apply it with --apply plan.json.")
	return err
}

func migrationReportText(w io.Writer, rep rotation.MigrationReport) error {
	for _, p := range rep.Moved {
		fmt.Fprintf(w, "moved %s\n", p)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(w, "NOT moved %s%s: %s\n", f.Connection, f.Path, f.Error)
	}
	_, err := fmt.Fprintf(w, "%d moved, %d not moved.\n", len(rep.Moved), len(rep.Failed))
	return err
}
